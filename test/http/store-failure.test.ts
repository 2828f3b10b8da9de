/**
 * The database going away: the service answers 503 application/problem+json with Retry-After,
 * never hangs and never crashes, and recovers by itself once the database is back. Every failure
 * is a real one: a TCP proxy cut between a server process and PostgreSQL, backends terminated by
 * PostgreSQL itself, a SQLite file locked by another process, a SQLite store closed under a server.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import Database from 'better-sqlite3'
import pg from 'pg'
import { sample } from '../helpers/prometheus.js'
import { spawnServer, stopProcess, type ServerProcess } from '../helpers/spawn-server.js'
import { startServer, type RunningServer } from '../helpers/start-server.js'
import { proxyToDatabase, throughProxy, type TcpProxy } from '../helpers/tcp-proxy.js'
import { databaseName, itReportsPostgresNotTested, PG_ADMIN_URL, TEST_DRIVERS, type TestDatabase } from '../helpers/test-stores.js'

// only to turn a hang into a failure, never to judge speed
const REQUEST_TIMEOUT_MS = 10_000
const STALLED_REQUEST_TIMEOUT_MS = 20_000
// how many tries (RETRY_PAUSE_MS apart) the service gets to recover by itself
const RECOVERY_ATTEMPTS = 40
const RETRY_PAUSE_MS = 250
// after PostgreSQL terminates every backend of an idle server, at most this many requests may fail
const MAX_503_AFTER_TERMINATE = 3
const POOL_SIZE = 4

const STORE_UNAVAILABLE = {
  type: '/problems/store-unavailable',
  title: 'Service Unavailable',
  status: 503,
  detail: 'The database is unavailable right now; retry shortly',
  message: 'The database is unavailable right now; retry shortly',
}

interface Answer {
  readonly status: number
  readonly headers: Headers
  readonly body: unknown
}

/** One HTTP request that must complete: a hang fails the test after REQUEST_TIMEOUT_MS (or `timeoutMs`). */
async function call(
  baseUrl: string,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: unknown; timeoutMs?: number } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers }
  const timeoutMs = options.timeoutMs ?? REQUEST_TIMEOUT_MS
  if (options.body !== undefined) headers['content-type'] = 'application/json'
  let response: Response
  try {
    response = await fetch(`${baseUrl}${path}`, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: AbortSignal.timeout(timeoutMs),
    })
  } catch (error) {
    throw new Error(`${method} ${path} did not complete within ${timeoutMs} ms: ${(error as Error).message}`, { cause: error })
  }
  const text = await response.text()
  const type = response.headers.get('content-type') ?? ''
  return { status: response.status, headers: response.headers, body: text !== '' && /json/.test(type) ? (JSON.parse(text) as unknown) : text }
}

function assertStoreUnavailable(answer: Answer, what: string): void {
  assert.equal(answer.status, 503, `${what}: ${JSON.stringify(answer.body)}`)
  assert.match(answer.headers.get('content-type') ?? '', /^application\/problem\+json/, what)
  // RFC 9110 §10.2.3: delay-seconds or an HTTP-date
  const retryAfter = answer.headers.get('retry-after')
  assert.ok(retryAfter !== null, `${what}: a 503 carries Retry-After`)
  assert.ok(/^\d+$/.test(retryAfter) || !Number.isNaN(Date.parse(retryAfter)), `${what}: Retry-After ${retryAfter}`)
  assert.equal(answer.headers.get('etag'), null, `${what}: a 503 carries no ETag`)
  assert.deepEqual(answer.body, STORE_UNAVAILABLE, what)
}

/** The requests of a client that keeps working while the database is away: reads, conditional reads, writes. */
function everyKindOfRequest(id: string, etag: string): { what: string; method: string; path: string; headers?: Record<string, string>; body?: unknown }[] {
  return [
    { what: 'GET a person', method: 'GET', path: `/persons/${id}` },
    { what: 'HEAD a person', method: 'HEAD', path: `/persons/${id}` },
    { what: 'GET a person with If-None-Match', method: 'GET', path: `/persons/${id}`, headers: { 'if-none-match': etag } },
    { what: 'GET the collection', method: 'GET', path: '/persons' },
    { what: 'POST a person', method: 'POST', path: '/persons', body: { person_id: `${id}-new`, person_name: 'New' } },
    { what: 'PUT with If-Match', method: 'PUT', path: `/persons/${id}`, headers: { 'if-match': etag }, body: { person_name: 'Changed' } },
    {
      what: 'PATCH with If-Match',
      method: 'PATCH',
      path: `/persons/${id}`,
      headers: { 'if-match': etag, 'content-type': 'application/merge-patch+json' },
      body: { person_name: 'Patched' },
    },
    { what: 'DELETE with If-Match', method: 'DELETE', path: `/persons/${id}`, headers: { 'if-match': etag } },
  ]
}

async function createPerson(baseUrl: string, id: string, name: string): Promise<string> {
  const created = await call(baseUrl, 'POST', '/persons', { body: { person_id: id, person_name: name } })
  assert.equal(created.status, 201, JSON.stringify(created.body))
  return created.headers.get('etag')!
}

/** Asks until the answer is not a 503 (each 503 must be a proper one); returns it and how many 503s came first. */
async function untilAvailable(baseUrl: string, path: string): Promise<{ answer: Answer; unavailable: number }> {
  let unavailable = 0
  for (let attempt = 0; attempt < RECOVERY_ATTEMPTS; attempt++) {
    const answer = await call(baseUrl, 'GET', path)
    if (answer.status !== 503) return { answer, unavailable }
    assertStoreUnavailable(answer, `attempt ${attempt + 1}`)
    unavailable++
    await new Promise((resolve) => setTimeout(resolve, RETRY_PAUSE_MS))
  }
  assert.fail(`still 503 after ${RECOVERY_ATTEMPTS} attempts`)
}

function assertAlive(server: ServerProcess): void {
  assert.equal(server.child.exitCode, null, `the server process exited:\n${server.output()}`)
  assert.equal(server.child.signalCode, null, `the server process was killed:\n${server.output()}`)
}

const postgres = TEST_DRIVERS.find((d) => d.name === 'postgres')
const sqlite = TEST_DRIVERS.find((d) => d.name === 'sqlite')

describe('PostgreSQL going away', () => {
  if (postgres === undefined) {
    itReportsPostgresNotTested('the PostgreSQL failure tests')
    return
  }

  describe('when the network path to the database is cut and restored', () => {
    let database: TestDatabase | undefined
    let proxy: TcpProxy | undefined
    let server: ServerProcess | undefined
    const id = 'wim'
    let etag = ''

    before(async () => {
      database = await postgres.createDatabase()
      proxy = await proxyToDatabase(database.url)
      server = await spawnServer(throughProxy(database.url, proxy), ['--pool-size', String(POOL_SIZE)])
    })

    after(async () => {
      await stopProcess(server)
      await proxy?.close()
      await database?.cleanup()
    })

    it('answers 200 while the path is up', async () => {
      etag = await createPerson(server!.baseUrl, id, 'Wim')
      // several at once, so that the pool holds several connections when the path is cut
      const reads = await Promise.all(Array.from({ length: POOL_SIZE * 2 }, () => call(server!.baseUrl, 'GET', `/persons/${id}`)))
      for (const read of reads) assert.equal(read.status, 200)
      assert.ok(proxy!.connections >= 1, 'the server reaches PostgreSQL through the proxy')
    })

    it('answers every kind of request 503 problem+json with Retry-After, without hanging, and stays up, while the path is cut', async () => {
      await proxy!.close()
      for (const request of everyKindOfRequest(id, etag)) {
        const answer = await call(server!.baseUrl, request.method, request.path, request)
        if (request.method === 'HEAD') {
          assert.equal(answer.status, 503, request.what)
          assert.ok(answer.headers.get('retry-after') !== null, `${request.what}: Retry-After`)
          assert.equal(answer.body, '', `${request.what}: no body`)
        } else {
          assertStoreUnavailable(answer, request.what)
        }
      }
      // a burst at once, too: every one completes with a 503
      const burst = await Promise.all(Array.from({ length: 10 }, () => call(server!.baseUrl, 'GET', `/persons/${id}`)))
      for (const [i, answer] of burst.entries()) assertStoreUnavailable(answer, `burst request ${i}`)
      assertAlive(server!)
    })

    it('answers 200 again by itself once the path is back, with the data and ETag it had', async () => {
      await proxy!.open()
      const { answer } = await untilAvailable(server!.baseUrl, `/persons/${id}`)
      assert.equal(answer.status, 200, JSON.stringify(answer.body))
      assert.equal(answer.headers.get('etag'), etag, 'no write went through while the path was cut')
      assert.deepEqual((answer.body as Record<string, unknown>).person_name, 'Wim')
      const revalidated = await call(server!.baseUrl, 'GET', `/persons/${id}`, { headers: { 'if-none-match': etag } })
      assert.equal(revalidated.status, 304)
      const written = await call(server!.baseUrl, 'PUT', `/persons/${id}`, { headers: { 'if-match': etag }, body: { person_name: 'Wim again' } })
      assert.equal(written.status, 200, JSON.stringify(written.body))
      assertAlive(server!)
    })
  })

  describe('when the network path to the database stalls (a partition: connections stay open, nothing gets through)', () => {
    let database: TestDatabase | undefined
    let proxy: TcpProxy | undefined
    let server: ServerProcess | undefined
    let etag = ''

    before(async () => {
      database = await postgres.createDatabase()
      proxy = await proxyToDatabase(database.url)
      server = await spawnServer(throughProxy(database.url, proxy), ['--pool-size', String(POOL_SIZE)])
      etag = await createPerson(server.baseUrl, 'eve', 'Eve')
    })

    after(async () => {
      await stopProcess(server)
      await proxy?.close()
      await database?.cleanup()
    })

    it('answers 503 with Retry-After instead of hanging, after waiting out one read, not two', async () => {
      const failedReads = async (): Promise<number> => {
        const metrics = await (await fetch(`${server!.baseUrl}/metrics`)).text()
        return sample(metrics, 'ifmatch_store_operation_duration_seconds_count', { operation: 'readValidator', outcome: 'error' }) ?? 0
      }
      const before = await failedReads()
      proxy!.stall()
      // the driver's own statement timeout is 10 s; a request still open after twice that hangs
      const answer = await call(server!.baseUrl, 'GET', '/persons/eve', { timeoutMs: STALLED_REQUEST_TIMEOUT_MS })
      assertStoreUnavailable(answer, 'GET while the path stalls')
      // the read fast path's failed read is the answer: Fastify does not read (and wait) again
      assert.equal((await failedReads()) - before, 1)
      assertAlive(server!)
    })

    it('answers 200 again by itself once the path flows again', async () => {
      proxy!.flow()
      const { answer } = await untilAvailable(server!.baseUrl, '/persons/eve')
      assert.equal(answer.status, 200, JSON.stringify(answer.body))
      assert.equal(answer.headers.get('etag'), etag)
      assertAlive(server!)
    })

    it('answers 503 to a request whose query is in flight when the stalled path is then cut, and recovers when it is back', async () => {
      proxy!.stall()
      const pending = call(server!.baseUrl, 'GET', '/persons/eve', { timeoutMs: STALLED_REQUEST_TIMEOUT_MS })
      // give the request time to reach the database; had it not, it would meet a refused connection: a 503 too
      await new Promise((resolve) => setTimeout(resolve, 500))
      await proxy!.close()
      assertStoreUnavailable(await pending, 'GET cut in flight')
      assertAlive(server!)

      await proxy!.open()
      proxy!.flow()
      const { answer } = await untilAvailable(server!.baseUrl, '/persons/eve')
      assert.equal(answer.status, 200, JSON.stringify(answer.body))
      assert.equal(answer.headers.get('etag'), etag)
    })
  })

  describe('when PostgreSQL terminates every backend of an idle server', () => {
    let database: TestDatabase | undefined
    let admin: pg.Client | undefined
    let server: ServerProcess | undefined

    before(async () => {
      database = await postgres.createDatabase()
      admin = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 3000 })
      await admin.connect()
      server = await spawnServer(database.url, ['--pool-size', String(POOL_SIZE)])
    })

    after(async () => {
      await stopProcess(server)
      await admin?.end().catch(() => {})
      await database?.cleanup()
    })

    it('answers the next requests 200 (at most the first few 503) and stays up', async () => {
      const baseUrl = server!.baseUrl
      const etag = await createPerson(baseUrl, 'ann', 'Ann')
      const warm = await Promise.all(Array.from({ length: POOL_SIZE * 2 }, () => call(baseUrl, 'GET', '/persons/ann')))
      for (const answer of warm) assert.equal(answer.status, 200)

      const name = databaseName(database!.url)
      const terminated = await admin!.query<{ ok: boolean }>(
        'SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
        [name],
      )
      assert.ok(
        terminated.rows.some((r) => r.ok),
        'the server had connections to terminate',
      )
      // wait (bounded) until PostgreSQL has really ended them, so the server meets only dead connections
      for (let i = 0; i < RECOVERY_ATTEMPTS; i++) {
        const left = await admin!.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name])
        if (left.rows[0]!.n === 0) break
        await new Promise((resolve) => setTimeout(resolve, RETRY_PAUSE_MS / 5))
      }

      const { answer, unavailable } = await untilAvailable(baseUrl, '/persons/ann')
      assert.equal(answer.status, 200, JSON.stringify(answer.body))
      assert.ok(unavailable <= MAX_503_AFTER_TERMINATE, `${unavailable} requests answered 503 before the first 200`)
      assert.equal(answer.headers.get('etag'), etag)
      // once recovered, it stays recovered: reads, a burst and a write all succeed
      const burst = await Promise.all(Array.from({ length: POOL_SIZE * 2 }, () => call(baseUrl, 'GET', '/persons/ann')))
      for (const [i, read] of burst.entries()) assert.equal(read.status, 200, `burst request ${i}: ${JSON.stringify(read.body)}`)
      const written = await call(baseUrl, 'PUT', '/persons/ann', { headers: { 'if-match': etag }, body: { person_name: 'Ann again' } })
      assert.equal(written.status, 200, JSON.stringify(written.body))
      assertAlive(server!)
    })
  })
})

describe('SQLite going away', () => {
  if (sqlite === undefined) return

  describe('when the store of a running server is closed', () => {
    let server: RunningServer | undefined

    before(async () => {
      server = await startServer({ driver: sqlite })
    })

    after(async () => {
      await server?.close()
    })

    it('answers every kind of request 503 problem+json with Retry-After, not 500 and not a hang', async () => {
      const baseUrl = server!.baseUrl
      const etag = await createPerson(baseUrl, 'wim', 'Wim')
      await server!.store.close()
      for (const request of everyKindOfRequest('wim', etag)) {
        const answer = await call(baseUrl, request.method, request.path, request)
        if (request.method === 'HEAD') {
          assert.equal(answer.status, 503, request.what)
          assert.ok(answer.headers.get('retry-after') !== null, `${request.what}: Retry-After`)
        } else {
          assertStoreUnavailable(answer, request.what)
        }
      }
      // the server itself is still there: what needs no store still answers
      const unknown = await call(baseUrl, 'GET', '/no-such-path')
      assert.equal(unknown.status, 404)
    })
  })

  describe('when another process holds the write lock of the SQLite file', () => {
    let database: TestDatabase | undefined
    let server: ServerProcess | undefined
    let locker: Database.Database | undefined

    before(async () => {
      // shared: the locker below is another process on the same file
      database = await sqlite.createDatabase({ shared: true })
      server = await spawnServer(database.url, [], undefined, database.env)
    })

    after(async () => {
      if (locker?.open === true) locker.close()
      await stopProcess(server)
      await database?.cleanup()
    })

    it('answers a write 503 with Retry-After once its busy timeout passes, serves reads meanwhile, and writes again when the lock is released', async () => {
      const baseUrl = server!.baseUrl
      const etag = await createPerson(baseUrl, 'ann', 'Ann')
      locker = new Database(database!.url.slice('sqlite:'.length))
      locker.exec('BEGIN EXCLUSIVE')

      const write = await call(baseUrl, 'PUT', '/persons/ann', { headers: { 'if-match': etag }, body: { person_name: 'Ann locked out' } })
      assertStoreUnavailable(write, 'PUT while the file is locked')
      // WAL: readers are not blocked by a writer
      const read = await call(baseUrl, 'GET', '/persons/ann')
      assert.equal(read.status, 200)
      assert.equal(read.headers.get('etag'), etag)
      assertAlive(server!)

      locker.exec('COMMIT')
      locker.close()
      const written = await call(baseUrl, 'PUT', '/persons/ann', { headers: { 'if-match': etag }, body: { person_name: 'Ann again' } })
      assert.equal(written.status, 200, JSON.stringify(written.body))
    })
  })
})
