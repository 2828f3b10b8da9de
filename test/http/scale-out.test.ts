/**
 * API.md: any number of server processes may share one database, and they agree on every ETag
 * and every precondition with no shared memory. Run against every driver in TEST_DRIVERS with the
 * real command, spawned: two processes on two ports over one fresh database (for SQLite, one file),
 * and one process with `--workers 2` (node:cluster, one port).
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { spawnServers, stopProcess, type ServerProcess } from '../helpers/spawn-server.js'
import { STALE_PROBLEM } from '../helpers/stale-problem.js'
import { TEST_DRIVERS, type TestDatabase } from '../helpers/test-stores.js'

// only to turn a hang into a failure, never to judge speed
const REQUEST_TIMEOUT_MS = 15_000

const RACERS = 32
const COUNTER_CLIENTS = 8
const INCREMENTS_PER_CLIENT = 20
// a client that needs more tries than this for its increments is starved: fail instead of spinning
const MAX_COUNTER_REQUESTS_PER_CLIENT = 4000

interface Answer {
  readonly status: number
  readonly headers: Headers
  readonly etag: string | null
  readonly body: unknown
}

interface PersonBody {
  readonly person_id: string
  readonly person_name: string
  readonly change_date: string
}

/** One HTTP request; a JSON body is parsed, anything else is kept as text. */
async function call(baseUrl: string, method: string, path: string, options: { headers?: Record<string, string>; body?: unknown } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers }
  if (options.body !== undefined) headers['content-type'] = 'application/json'
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  })
  const text = await response.text()
  const type = response.headers.get('content-type') ?? ''
  const body = text !== '' && /json/.test(type) ? (JSON.parse(text) as unknown) : text
  return { status: response.status, headers: response.headers, etag: response.headers.get('etag'), body }
}

function person(answer: Answer): PersonBody {
  return answer.body as PersonBody
}

function uniqueId(label: string): string {
  return `${label}-${randomBytes(4).toString('hex')}`
}

async function createPerson(baseUrl: string, id: string, name: string): Promise<string> {
  const created = await call(baseUrl, 'POST', '/persons', { body: { person_id: id, person_name: name } })
  assert.equal(created.status, 201, JSON.stringify(created.body))
  assert.ok(created.etag !== null, 'a 201 carries an ETag')
  return created.etag
}

interface Setup {
  readonly name: string
  /** Starts the processes, adding each to `started` as soon as it runs; returns the two base URLs to alternate. */
  start(database: TestDatabase, started: ServerProcess[]): Promise<readonly [string, string]>
}

const SETUPS: readonly Setup[] = [
  {
    name: 'two server processes on different ports',
    async start(database, started) {
      const [a, b] = await spawnServers(database, [[], []], started)
      assert.notEqual(a!.baseUrl, b!.baseUrl)
      return [a!.baseUrl, b!.baseUrl]
    },
  },
  {
    name: 'one server process with --workers 2',
    async start(database, started) {
      // which worker answers is not observable over HTTP; the same checks must hold whichever does
      // (--workers opens SQLite shared by itself: no SQLITE_LOCKING needed)
      const [server] = await spawnServers({ ...database, env: {} }, [['--workers', '2']], started)
      return [server!.baseUrl, server!.baseUrl]
    },
  },
]

for (const driver of TEST_DRIVERS) {
  describe(`${driver.name}`, () => {
    for (const setup of SETUPS) {
      describe(`${setup.name} sharing one fresh database`, () => {
        let database: TestDatabase | undefined
        const processes: ServerProcess[] = []
        let urls: readonly [string, string] = ['', '']

        before(async () => {
          database = await driver.createDatabase({ shared: true })
          urls = await setup.start(database, processes)
        })

        after(async () => {
          await Promise.all(processes.map(stopProcess))
          await database?.cleanup()
        })

        it(`lets exactly one of ${RACERS} simultaneous PUTs with the same If-Match win, answers the others 412, and both processes then serve the winner`, async () => {
          const id = uniqueId('race')
          const etag = await createPerson(urls[0], id, 'before the race')
          const answers = await Promise.all(
            Array.from({ length: RACERS }, (_, i) =>
              call(urls[i % 2]!, 'PUT', `/persons/${id}`, { headers: { 'if-match': etag }, body: { person_name: `writer ${i}` } }),
            ),
          )

          const statuses = answers.map((a) => a.status)
          const winners = answers.filter((a) => a.status === 200)
          const losers = answers.filter((a) => a.status === 412)
          assert.equal(winners.length, 1, `statuses: ${statuses.join(' ')}`)
          assert.equal(losers.length, RACERS - 1, `statuses: ${statuses.join(' ')}`)
          for (const loser of losers) {
            assert.match(loser.headers.get('content-type') ?? '', /^application\/problem\+json/)
            assert.deepEqual(loser.body, STALE_PROBLEM)
          }

          const winner = winners[0]!
          assert.match(person(winner).person_name, /^writer \d+$/)
          assert.notEqual(winner.etag, etag)
          for (const baseUrl of urls) {
            const stored = await call(baseUrl, 'GET', `/persons/${id}`)
            assert.equal(stored.status, 200)
            assert.equal(person(stored).person_name, person(winner).person_name)
            assert.equal(stored.etag, winner.etag)
          }
        })

        it(`loses no update when ${COUNTER_CLIENTS} clients each increment one counter ${INCREMENTS_PER_CLIENT} times, alternating processes and retrying on 412`, async () => {
          const id = uniqueId('counter')
          await createPerson(urls[0], id, '0')
          // every value a 200 PUT wrote; a lost update would write some value twice
          const written: number[] = []

          const client = async (index: number): Promise<void> => {
            let requests = index
            const nextUrl = (): string => urls[requests++ % 2]!
            let done = 0
            while (done < INCREMENTS_PER_CLIENT) {
              assert.ok(requests < MAX_COUNTER_REQUESTS_PER_CLIENT, `client ${index} starved after ${requests} requests`)
              const current = await call(nextUrl(), 'GET', `/persons/${id}`)
              assert.equal(current.status, 200, JSON.stringify(current.body))
              const value = Number(person(current).person_name)
              assert.ok(Number.isInteger(value), `the counter holds ${JSON.stringify(person(current).person_name)}`)
              const put = await call(nextUrl(), 'PUT', `/persons/${id}`, {
                headers: { 'if-match': current.etag! },
                body: { person_name: String(value + 1) },
              })
              if (put.status === 200) {
                assert.equal(person(put).person_name, String(value + 1))
                written.push(value + 1)
                done++
              } else {
                assert.equal(put.status, 412, JSON.stringify(put.body))
                assert.deepEqual(put.body, STALE_PROBLEM)
              }
            }
          }
          await Promise.all(Array.from({ length: COUNTER_CLIENTS }, (_, i) => client(i)))

          const total = COUNTER_CLIENTS * INCREMENTS_PER_CLIENT
          assert.equal(written.length, total, 'number of 200 PUTs')
          assert.deepEqual(
            [...written].sort((a, b) => a - b),
            Array.from({ length: total }, (_, i) => i + 1),
          )
          for (const baseUrl of urls) {
            const final = await call(baseUrl, 'GET', `/persons/${id}`)
            assert.equal(person(final).person_name, String(total))
          }
        })

        it("accepts an ETag handed out by one process on the other, and fails the other's old ETag after a write on the first", async () => {
          const [a, b] = urls
          const id = uniqueId('shared')
          const fromA = await createPerson(a, id, 'Wim')

          const revalidated = await call(b, 'GET', `/persons/${id}`, { headers: { 'if-none-match': fromA } })
          assert.equal(revalidated.status, 304)
          assert.equal(revalidated.etag, fromA)

          const updatedOnB = await call(b, 'PUT', `/persons/${id}`, { headers: { 'if-match': fromA }, body: { person_name: 'Wim B' } })
          assert.equal(updatedOnB.status, 200, JSON.stringify(updatedOnB.body))
          assert.notEqual(updatedOnB.etag, fromA)

          const readOnB = await call(b, 'GET', `/persons/${id}`)
          assert.equal(readOnB.etag, updatedOnB.etag)
          const writeOnA = await call(a, 'PUT', `/persons/${id}`, { headers: { 'if-match': readOnB.etag! }, body: { person_name: 'Wim A' } })
          assert.equal(writeOnA.status, 200, JSON.stringify(writeOnA.body))

          const staleOnB = await call(b, 'PUT', `/persons/${id}`, { headers: { 'if-match': readOnB.etag! }, body: { person_name: 'lost update' } })
          assert.equal(staleOnB.status, 412)
          assert.deepEqual(staleOnB.body, STALE_PROBLEM)
          const notCachedOnB = await call(b, 'GET', `/persons/${id}`, { headers: { 'if-none-match': readOnB.etag! } })
          assert.equal(notCachedOnB.status, 200)
          assert.equal(person(notCachedOnB).person_name, 'Wim A')
          assert.equal(notCachedOnB.etag, writeOnA.etag)
        })

        it('agrees on the ETag of a collection page, and a write on one process changes it on the other', async () => {
          const [a, b] = urls
          const pageOnA = await call(a, 'GET', '/persons?limit=5')
          assert.equal(pageOnA.status, 200)
          const revalidatedOnB = await call(b, 'GET', '/persons?limit=5', { headers: { 'if-none-match': pageOnA.etag! } })
          assert.equal(revalidatedOnB.status, 304)
          assert.equal(revalidatedOnB.etag, pageOnA.etag)

          await createPerson(a, uniqueId('page'), 'Page Turner')
          const changedOnB = await call(b, 'GET', '/persons?limit=5', { headers: { 'if-none-match': pageOnA.etag! } })
          assert.equal(changedOnB.status, 200)
          assert.notEqual(changedOnB.etag, pageOnA.etag)
        })

        it('never hands out the same ETag twice when one id is deleted and re-created across processes', async () => {
          const id = uniqueId('reborn')
          const seen: string[] = []
          for (let round = 0; round < 6; round++) {
            const creator = urls[round % 2]!
            const other = urls[(round + 1) % 2]!
            // the same name every time: a body hash (or a clock tick) would repeat the ETag
            const created =
              round % 3 === 0
                ? await call(creator, 'POST', '/persons', { body: { person_id: id, person_name: 'Same Name' } })
                : await call(creator, 'PUT', `/persons/${id}`, { headers: { 'if-none-match': '*' }, body: { person_name: 'Same Name' } })
            assert.equal(created.status, 201, JSON.stringify(created.body))
            const etag = created.etag!
            assert.ok(!seen.includes(etag), `round ${round} reused ${etag} (seen: ${seen.join(' ')})`)

            const previous = seen.at(-1)
            if (previous !== undefined) {
              const stale = await call(other, 'PUT', `/persons/${id}`, { headers: { 'if-match': previous }, body: { person_name: 'stale' } })
              assert.equal(stale.status, 412, `the ETag of a deleted incarnation must not match the new one`)
              const notCached = await call(other, 'GET', `/persons/${id}`, { headers: { 'if-none-match': previous } })
              assert.equal(notCached.status, 200)
            }
            seen.push(etag)

            const readOnOther = await call(other, 'GET', `/persons/${id}`)
            assert.equal(readOnOther.etag, etag)
            const deleted = await call(other, 'DELETE', `/persons/${id}`, { headers: { 'if-match': etag } })
            assert.equal(deleted.status, 204, JSON.stringify(deleted.body))
            const gone = await call(creator, 'GET', `/persons/${id}`)
            assert.equal(gone.status, 404)
          }
          assert.equal(new Set(seen).size, seen.length)
        })
      })
    }
  })
}
