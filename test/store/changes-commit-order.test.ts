/**
 * docs/changes-feed.md, "Why nothing is skipped or reordered", on PostgreSQL, where a number taken
 * when a write starts is not commit order: while a write is still open (holding the store-wide
 * write lock, its revision taken but not committed), a later write queues behind it, and no feed
 * reader is ever handed a `next` past the open write; once it commits, the feed delivers both, in
 * commit order. The open write is made two ways: by hand in a raw transaction that calls the
 * store's own write function, and by a trigger that makes one person's write through HTTP slow.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import pg from 'pg'
import { changesSince, changesToken, followChanges, getPerson, request, Writer, type FeedItem } from '../helpers/changes-feed.js'
import { startServer, type RunningServer } from '../helpers/start-server.js'
import { TEST_DRIVERS, type TestDatabase } from '../helpers/test-stores.js'

// only to turn a hang into a failure
const LOCK_WAIT_TIMEOUT_MS = 8_000

const postgres = TEST_DRIVERS.find((d) => d.name === 'postgres')

/** Resolves once some backend of this database waits for `event` (a wait_event_type or wait_event of pg_stat_activity). */
async function waitForBackend(client: pg.Client, event: 'Lock' | 'PgSleep', what: string): Promise<void> {
  const deadline = performance.now() + LOCK_WAIT_TIMEOUT_MS
  for (;;) {
    const result = await client.query(
      'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND (wait_event_type = $1 OR wait_event = $1)',
      [event],
    )
    if ((result.rows[0] as { n: number }).n > 0) return
    assert.ok(performance.now() < deadline, `${what}: not seen within ${LOCK_WAIT_TIMEOUT_MS} ms`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** A request still in flight, and whether it has been answered. */
function inFlight<T>(promise: Promise<T>): { promise: Promise<T>; done: () => boolean } {
  let done = false
  void promise.then(
    () => {
      done = true
    },
    () => {
      done = true
    },
  )
  return { promise, done: () => done }
}

if (postgres !== undefined) {
  describe('postgres', () => {
    describe('a write held open in a transaction', () => {
      let database: TestDatabase
      let server: RunningServer
      let writer: Writer
      let raw: pg.Client
      let observer: pg.Client

      before(async () => {
        database = await postgres.createDatabase()
        server = await startServer({ driver: postgres, database })
        writer = new Writer(server.baseUrl)
        for (const id of ['held', 'queued', 'slow', 'fast']) await writer.create(id)
        raw = new pg.Client({ connectionString: database.url })
        observer = new pg.Client({ connectionString: database.url })
        await raw.connect()
        await observer.connect()
      })
      after(async () => {
        await raw.query('ROLLBACK').catch(() => undefined)
        await raw.end()
        await observer.end()
        await server.stop()
        await database.cleanup()
      })

      it("keeps every reader's next below it while it is open, queues a later write behind it, then delivers both in commit order", async () => {
        const t0 = (await followChanges(server.baseUrl, '0')).next
        const { rows } = await raw.query('SELECT version FROM persons WHERE person_id = $1', ['held'])
        const version = (rows[0] as { version: string }).version
        await raw.query('BEGIN')
        // the store's own write function: it takes the meta row lock and bumps the revision
        const written = await raw.query('SELECT ifmatch_update($1, $2, $3, $4) AS v', ['held', 'written in the open transaction', version, Date.now()])
        assert.ok(Number((written.rows[0] as { v: string }).v) > 0, 'the held write succeeded inside its transaction')

        const queued = inFlight(
          request(server.baseUrl, '/persons/queued', {
            method: 'PUT',
            headers: { 'if-match': writer.current.get('queued')!.etag },
            body: JSON.stringify({ person_name: 'queued behind the lock' }),
          }),
        )
        await waitForBackend(observer, 'Lock', 'the later write queued behind the lock')

        // while it is open: every way of reading the feed stays at t0
        for (let n = 0; n < 20; n++) {
          assert.deepEqual(await changesSince(server.baseUrl, { since: t0 }), { changes: [], next: t0, complete: true }, `read ${n}`)
          assert.equal((await followChanges(server.baseUrl, '0', 1)).next, t0, `read ${n} from since=0`)
          assert.equal(changesToken(await request(server.baseUrl, '/persons?limit=1')), t0, `read ${n} of a collection page`)
        }
        const poll = await changesSince(server.baseUrl, { since: t0, wait: 1 })
        assert.deepEqual(poll, { changes: [], next: t0, complete: true }, 'a long poll is not woken by an uncommitted write')
        assert.equal(queued.done(), false, 'the later write waits for the lock')

        await raw.query('COMMIT')
        const answer = await queued.promise
        assert.equal(answer.status, 200, answer.text)

        const held = await getPerson(server.baseUrl, 'held')
        const expected: FeedItem[] = [
          { ...held.body!, etag: held.etag! },
          { ...(answer.json as { person_id: string; person_name: string; change_date: string }), etag: answer.etag! },
        ]
        assert.equal(held.body!.person_name, 'written in the open transaction')
        assert.deepEqual((await changesSince(server.baseUrl, { since: t0 })).changes, expected)
        assert.deepEqual((await followChanges(server.baseUrl, t0, 1)).items, expected)
      })

      it('has readers that follow the feed during a slow write (a trigger sleeps in it) and a quicker later one get both, slow first', async (t) => {
        // tell the writer what the previous test did behind its back
        for (const id of ['held', 'queued']) {
          const stored = await getPerson(server.baseUrl, id)
          writer.current.set(id, { ...stored.body!, etag: stored.etag! })
        }
        await raw.query(`
          CREATE FUNCTION test_slow_write() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN PERFORM pg_sleep(1.5); RETURN NEW; END $$;
          CREATE TRIGGER test_slow_write AFTER UPDATE ON persons FOR EACH ROW
            WHEN (NEW.person_id = 'slow') EXECUTE FUNCTION test_slow_write();`)
        try {
          const t0 = (await followChanges(server.baseUrl, '0')).next
          const mark = writer.mark()
          const acks: string[] = []
          const slow = writer.update('slow', 'the slow write').then((item) => {
            acks.push('slow')
            return item
          })
          // the slow write sleeps holding the lock: the fast one queues behind it
          await waitForBackend(observer, 'PgSleep', 'the slow write sleeping in its trigger')
          const fast = inFlight(
            writer.update('fast', 'the quick write').then((item) => {
              acks.push('fast')
              return item
            }),
          )
          await waitForBackend(observer, 'Lock', 'the quick write queued behind the slow one')

          // a reader that follows the feed all the while, as a client keeping a copy does
          let token = t0
          const delivered: FeedItem[] = []
          let reads = 0
          let heldAtT0 = 0
          for (;;) {
            const finished = fast.done()
            const body = await changesSince(server.baseUrl, { since: token, limit: 1 })
            reads++
            if (delivered.length === 0 && body.changes.length === 0) {
              assert.equal(body.next, t0, 'while the slow write is open, next stays at t0')
              heldAtT0++
            }
            delivered.push(...body.changes)
            token = body.next
            if (finished && body.complete && body.changes.length === 0) break
          }
          await slow
          await fast.promise
          t.diagnostic(`${reads} reads, ${heldAtT0} of them while the slow write was open`)
          assert.deepEqual(acks, ['slow', 'fast'], 'the later write committed after the slow one')
          assert.deepEqual(delivered, writer.expectedSince(mark))
          assert.deepEqual(
            delivered.map((item) => item.person_id),
            ['slow', 'fast'],
          )
          assert.ok(heldAtT0 > 0, 'some reads happened while the slow write was open')
        } finally {
          await raw.query('DROP TRIGGER IF EXISTS test_slow_write ON persons; DROP FUNCTION IF EXISTS test_slow_write()')
        }
      })
    })
  })
}
