/**
 * API.md, Writes and mid-air collisions: the precondition check and the write are one atomic
 * step. Of N concurrent writers holding the same ETag exactly one succeeds, and no acknowledged
 * write is ever lost: with one server, and with two servers (two stores) on one database.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createPerson, send, type Answer } from '../helpers/http-answers.js'
import { startServer, type RunningServer } from '../helpers/start-server.js'
import { STALE_PROBLEM } from '../helpers/stale-problem.js'
import { TEST_DRIVERS, type TestDatabase } from '../helpers/test-stores.js'

const WRITERS = 32
const CLIENTS = 8
const INCREMENTS = 25

function countStatuses(answers: readonly Answer[]): Record<number, number> {
  const counts: Record<number, number> = {}
  for (const a of answers) counts[a.status] = (counts[a.status] ?? 0) + 1
  return counts
}

function assertProblem(answer: Answer, expected: Record<string, unknown>): void {
  assert.match(answer.contentType ?? '', /^application\/problem\+json/)
  assert.deepEqual(JSON.parse(answer.body), expected)
}

/**
 * The race and counter checks, against one or more base URLs on one database; request i goes to
 * base URL i mod n, so with two servers consecutive requests alternate between them.
 */
function collisionSuite(baseUrls: () => readonly string[]): void {
  const at = (i: number): string => {
    const urls = baseUrls()
    return urls[i % urls.length]!
  }

  async function readPerson(id: string, i = 0): Promise<Answer> {
    return send(`${at(i)}/persons/${id}`)
  }

  describe(`${WRITERS} simultaneous PUTs with the same If-Match`, () => {
    it(`answer exactly one 200 and ${WRITERS - 1} × 412 with the seed's message, and the winner's name is stored`, async () => {
      const etag = await createPerson(at(0), 'race-put', 'start')
      const answers = await Promise.all(
        Array.from({ length: WRITERS }, (_, i) =>
          send(`${at(i)}/persons/race-put`, {
            method: 'PUT',
            headers: { 'content-type': 'application/json', 'if-match': etag },
            body: JSON.stringify({ person_name: `writer ${i}` }),
          }),
        ),
      )
      assert.deepEqual(countStatuses(answers), { 200: 1, 412: WRITERS - 1 })
      for (const loser of answers.filter((a) => a.status === 412)) assertProblem(loser, STALE_PROBLEM)
      const winner = answers.find((a) => a.status === 200)!
      const stored = await readPerson('race-put', 1)
      assert.equal(stored.status, 200)
      assert.equal(JSON.parse(stored.body).person_name, JSON.parse(winner.body).person_name)
      assert.equal(stored.etag, winner.etag)
    })
  })

  describe(`${WRITERS} simultaneous PATCHes with the same If-Match`, () => {
    it(`answer exactly one 200 and ${WRITERS - 1} × 412 with the seed's message, and the winner's name is stored`, async () => {
      const etag = await createPerson(at(0), 'race-patch', 'start')
      const answers = await Promise.all(
        Array.from({ length: WRITERS }, (_, i) =>
          send(`${at(i)}/persons/race-patch`, {
            method: 'PATCH',
            headers: { 'content-type': 'application/merge-patch+json', 'if-match': etag },
            body: JSON.stringify({ person_name: `patcher ${i}` }),
          }),
        ),
      )
      assert.deepEqual(countStatuses(answers), { 200: 1, 412: WRITERS - 1 })
      for (const loser of answers.filter((a) => a.status === 412)) assertProblem(loser, STALE_PROBLEM)
      const winner = answers.find((a) => a.status === 200)!
      const stored = await readPerson('race-patch', 1)
      assert.equal(JSON.parse(stored.body).person_name, JSON.parse(winner.body).person_name)
      assert.equal(stored.etag, winner.etag)
    })
  })

  describe(`${WRITERS} simultaneous DELETEs with the same If-Match`, () => {
    // Chosen from API.md: step 0 of the preconditions answers 404 for an absent person "whatever
    // the preconditions" (RFC 9110 §13.2.1). The one winning delete is ordered before every loser,
    // so each loser finds the person gone: 404, never a second 204. No loser can see a newer
    // version (nothing else writes), so a 412 would mean the check ran against a stale read.
    it(`answer exactly one 204 and ${WRITERS - 1} × 404, and the person is gone`, async () => {
      const etag = await createPerson(at(0), 'race-delete', 'doomed')
      const answers = await Promise.all(
        Array.from({ length: WRITERS }, (_, i) =>
          send(`${at(i)}/persons/race-delete`, {
            method: 'DELETE',
            headers: { 'if-match': etag },
          }),
        ),
      )
      assert.deepEqual(countStatuses(answers), { 204: 1, 404: WRITERS - 1 })
      for (const loser of answers.filter((a) => a.status === 404)) {
        assertProblem(loser, {
          type: '/problems/not-found',
          title: 'Not Found',
          status: 404,
          detail: 'Person with ID race-delete not found',
          message: 'Person with ID race-delete not found',
        })
      }
      assert.equal((await readPerson('race-delete', 1)).status, 404)
    })
  })

  describe(`${WRITERS} simultaneous PUTs with If-None-Match: * on a new id`, () => {
    it(`answer exactly one 201 and ${WRITERS - 1} × 412, and the creator's name is stored`, async () => {
      const answers = await Promise.all(
        Array.from({ length: WRITERS }, (_, i) =>
          send(`${at(i)}/persons/race-create`, {
            method: 'PUT',
            headers: { 'content-type': 'application/json', 'if-none-match': '*' },
            body: JSON.stringify({ person_name: `creator ${i}` }),
          }),
        ),
      )
      assert.deepEqual(countStatuses(answers), { 201: 1, 412: WRITERS - 1 })
      for (const loser of answers.filter((a) => a.status === 412)) {
        assert.match(loser.contentType ?? '', /^application\/problem\+json/)
        const problem = JSON.parse(loser.body)
        assert.equal(problem.status, 412)
        assert.equal(problem.type, '/problems/precondition-failed')
        assert.equal(typeof problem.detail, 'string')
        assert.equal(typeof problem.message, 'string')
      }
      const winner = answers.find((a) => a.status === 201)!
      const stored = await readPerson('race-create', 1)
      assert.equal(JSON.parse(stored.body).person_name, JSON.parse(winner.body).person_name)
      assert.equal(stored.etag, winner.etag)
    })
  })

  describe(`${CLIENTS} clients each incrementing a counter ${INCREMENTS} times with If-Match and retry on 412`, () => {
    it(`end with the counter at exactly ${CLIENTS * INCREMENTS} and exactly ${CLIENTS * INCREMENTS} × 200`, async () => {
      await createPerson(at(0), 'counter', 'counter 0')
      let ok = 0
      const written: number[] = []
      // a bound on the total, so a livelock fails the test instead of hanging it
      const maxAttempts = CLIENTS * INCREMENTS * 200
      let attempts = 0
      const client = async (c: number): Promise<void> => {
        let turn = c
        for (let done = 0; done < INCREMENTS; ) {
          assert.ok(++attempts <= maxAttempts, 'too many attempts: the clients never get through')
          const read = await readPerson('counter', turn++)
          assert.equal(read.status, 200, read.body)
          const match = /^counter (\d+)$/.exec(JSON.parse(read.body).person_name)
          assert.ok(match !== null, read.body)
          const next = Number(match[1]) + 1
          const write = await send(`${at(turn++)}/persons/counter`, {
            method: 'PUT',
            headers: { 'content-type': 'application/json', 'if-match': read.etag! },
            body: JSON.stringify({ person_name: `counter ${next}` }),
          })
          if (write.status === 200) {
            ok++
            done++
            written.push(next)
            assert.equal(JSON.parse(write.body).person_name, `counter ${next}`)
          } else {
            assert.equal(write.status, 412, write.body)
            assertProblem(write, STALE_PROBLEM)
          }
        }
      }
      await Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c)))
      assert.equal(ok, CLIENTS * INCREMENTS)
      const final = await readPerson('counter')
      assert.equal(JSON.parse(final.body).person_name, `counter ${CLIENTS * INCREMENTS}`)
      // each acknowledged write wrote a different value, 1 to 200: two 200s for one value would be a lost update
      assert.deepEqual(
        [...written].sort((x, y) => x - y),
        Array.from({ length: CLIENTS * INCREMENTS }, (_, i) => i + 1),
      )
    })
  })
}

for (const driver of TEST_DRIVERS) {
  describe(driver.name, () => {
    describe('one server', () => {
      let server: RunningServer

      before(async () => {
        server = await startServer({ driver })
      })

      after(async () => {
        await server.close()
      })

      collisionSuite(() => [server.baseUrl])
    })

    describe('two servers, each with its own store, on one database, requests alternating', () => {
      let database: TestDatabase
      let servers: RunningServer[] = []

      before(async () => {
        database = await driver.createDatabase({ shared: true })
        servers = [await startServer({ database }), await startServer({ database })]
      })

      after(async () => {
        for (const server of servers) await server.stop()
        await database.cleanup()
      })

      it('serve the same epoch: an ETag from one is valid on the other', async () => {
        const [one, two] = servers as [RunningServer, RunningServer]
        const created = await send(`${one.baseUrl}/persons`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{"person_id":"shared","person_name":"x"}',
        })
        assert.equal(created.status, 201)
        const revalidated = await send(`${two.baseUrl}/persons/shared`, { headers: { 'if-none-match': created.etag! } })
        assert.equal(revalidated.status, 304)
        assert.equal(revalidated.etag, created.etag)
      })

      collisionSuite(() => servers.map((s) => s.baseUrl))
    })
  })
}
