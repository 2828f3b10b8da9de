/**
 * API.md: "Nothing is ever skipped or reordered: a client that follows `next` from any token ends
 * with exactly the stored state, even while many writers commit at once in many server processes."
 * Eight writers create, replace, merge-patch and delete over thirty ids through two spawned server
 * processes on one database (SQLite in shared locking mode, or PostgreSQL), following every 412 by
 * reading again, while a reader follows the feed by long polling through a third process. When
 * the writers stop, the reader's copy must be the stored collection exactly.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import {
  applyChanges,
  assertCopyEquals,
  changesSince,
  isTombstone,
  request,
  seededRandom,
  storedCollection,
  type FeedItem,
  type LiveItem,
} from '../helpers/changes-feed.js'
import { spawnServer, stopProcess, type ServerProcess } from '../helpers/spawn-server.js'
import { TEST_DRIVERS, type TestDatabase } from '../helpers/test-stores.js'

const WRITERS = 8
const OPERATIONS = 60
const IDS = 30
// a writer that needs more tries than this for one operation is starved: fail instead of spinning
const MAX_TRIES = 200
const SEED = Number(process.env.FEED_TEST_SEED ?? Date.now() % 1_000_000)

/** One acknowledged write: the ETag it was made on (none for a create) and what it left. */
interface Acknowledged {
  readonly id: string
  readonly on: string | undefined
  readonly left: string | 'deleted'
}

/** Runs one writer: OPERATIONS random operations, each retried after a 412 or a lost race until it lands. */
async function runWriter(urls: readonly string[], random: () => number, log: Acknowledged[]): Promise<void> {
  for (let op = 0; op < OPERATIONS; op++) {
    const id = `s${Math.floor(random() * IDS)}`
    const roll = random()
    for (let tries = 0; ; tries++) {
      assert.ok(tries < MAX_TRIES, `operation ${op} on ${id} still not done after ${MAX_TRIES} tries`)
      const base = urls[Math.floor(random() * urls.length)]!
      const read = await request(base, `/persons/${id}`)
      if (read.status === 404) {
        const created = await request(base, '/persons', { method: 'POST', body: JSON.stringify({ person_id: id, person_name: `created ${op}` }) })
        if (created.status === 409) continue
        assert.equal(created.status, 201, created.text)
        log.push({ id, on: undefined, left: created.etag! })
        break
      }
      assert.equal(read.status, 200, read.text)
      const etag = read.etag!
      const answer =
        roll < 0.4
          ? await request(base, `/persons/${id}`, { method: 'PUT', headers: { 'if-match': etag }, body: JSON.stringify({ person_name: `put ${op}` }) })
          : roll < 0.75
            ? await request(base, `/persons/${id}`, {
                method: 'PATCH',
                headers: { 'if-match': etag, 'content-type': 'application/merge-patch+json' },
                body: JSON.stringify({ person_name: `patch ${op}` }),
              })
            : await request(base, `/persons/${id}`, { method: 'DELETE', headers: { 'if-match': etag } })
      // someone else wrote or deleted it since our read: read again
      if (answer.status === 412 || answer.status === 404) continue
      assert.ok(answer.status === 200 || answer.status === 204, `${answer.status} ${answer.text}`)
      log.push({ id, on: etag, left: answer.status === 204 ? 'deleted' : answer.etag! })
      break
    }
  }
}

for (const driver of TEST_DRIVERS) {
  describe(driver.name, () => {
    describe('two writer processes and a reader process on one database', () => {
      let database: TestDatabase | undefined
      const processes: ServerProcess[] = []

      before(async () => {
        database = await driver.createDatabase({ shared: true })
        // one at a time: the first creates the schema
        for (let i = 0; i < 3; i++) processes.push(await spawnServer(database.url, [], undefined, database.env))
      })
      after(async () => {
        await Promise.all(processes.map(stopProcess))
        await database?.cleanup()
      })

      it(`leaves a long-polling reader with exactly the stored collection after ${WRITERS} writers x ${OPERATIONS} operations over ${IDS} ids`, async (t) => {
        t.diagnostic(`seed ${SEED}`)
        const [a, b, readerProcess] = processes.map((p) => p.baseUrl) as [string, string, string]
        const logs: Acknowledged[][] = Array.from({ length: WRITERS }, () => [])
        let stopped = false
        const delivered: FeedItem[] = []
        const copy = new Map<string, LiveItem>()
        let answers = 0

        const reader = (async () => {
          let token = '0'
          const random = seededRandom(SEED + 99)
          for (;;) {
            const stoppedBefore = stopped
            // while writers write, hold the request; once they have stopped, do not wait for nothing
            const limit = 1 + Math.floor(random() * 10)
            const body = await changesSince(readerProcess, stoppedBefore ? { since: token, limit } : { since: token, limit, wait: 5 })
            answers++
            const ids = body.changes.map((c) => c.person_id)
            assert.equal(new Set(ids).size, ids.length, `an id twice in one answer: ${ids.join(' ')}`)
            delivered.push(...body.changes)
            applyChanges(copy, body.changes)
            if (body.changes.length === 0) assert.equal(body.next, token, 'nothing new, so next is the token sent')
            token = body.next
            if (stoppedBefore && body.complete && body.changes.length === 0) return
          }
        })()

        const writers = await Promise.allSettled(logs.map((log, w) => runWriter([a, b], seededRandom(SEED + w), log)))
        stopped = true
        await reader
        for (const writer of writers) if (writer.status === 'rejected') throw writer.reason

        const acknowledged = logs.flat()
        t.diagnostic(`${acknowledged.length} writes acknowledged, ${delivered.length} items delivered in ${answers} answers`)
        assert.equal(acknowledged.length, WRITERS * OPERATIONS)

        const stored = (await storedCollection(a)).persons
        assertCopyEquals(copy, stored)
        assert.deepEqual(stored, (await storedCollection(b)).persons, 'both writer processes serve the same collection')

        // each state delivered once, and along each id's chain of If-Match writes, never backwards
        const written = new Map<string, Acknowledged>()
        for (const write of acknowledged) if (write.left !== 'deleted') written.set(write.left, write)
        const position = (etag: string): { root: string; rank: number } => {
          let rank = 0
          let at = etag
          for (let on = written.get(at)?.on; on !== undefined; on = written.get(at)?.on) {
            at = on
            rank++
          }
          return { root: at, rank }
        }
        const seen = new Set<string>()
        const lastById = new Map<string, { root: string; rank: number }>()
        for (const item of delivered) {
          if (isTombstone(item)) continue
          assert.ok(written.has(item.etag), `delivered ${item.person_id} ${item.etag}, which no writer was answered`)
          assert.ok(!seen.has(item.etag), `delivered ${item.person_id} ${item.etag} twice`)
          seen.add(item.etag)
          const here = position(item.etag)
          const before = lastById.get(item.person_id)
          if (before !== undefined && before.root === here.root) {
            assert.ok(here.rank > before.rank, `${item.person_id}: delivered a state older than one delivered before it`)
          }
          lastById.set(item.person_id, here)
        }
        // every acknowledged delete of an id that is absent now was heard of, if the reader had the id
        for (const id of new Set(acknowledged.map((w) => w.id))) {
          if (!stored.has(id)) assert.ok(!copy.has(id), `${id} was deleted but the reader still has it`)
        }
        // the final answer says nothing is left to follow
        assert.equal((await changesSince(readerProcess, { since: '0', limit: 1000 })).changes.length, stored.size)
      })
    })
  })
}
