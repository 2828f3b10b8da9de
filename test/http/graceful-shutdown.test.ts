/**
 * SIGTERM under load, on the real command: the server stops accepting, answers every request it
 * had started (a slow upload included), closes the store and exits 0; every write it acknowledged
 * is there after a restart. With --workers the primary passes the signal on and exits 0 too.
 */
import { request as httpRequest } from 'node:http'
import { once } from 'node:events'
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawnServer, type ServerProcess } from '../helpers/spawn-server.js'
import { TEST_DRIVERS } from '../helpers/test-stores.js'

const CLIENTS = 12
const LOAD_BEFORE_SIGNAL_MS = 700

interface Outcome {
  readonly id: string
  readonly kind: 'read' | 'create' | 'page'
  readonly personId?: string
  status?: number
  error?: string
}

/** One request on a connection of its own, so "started" and "answered" are per request. */
function send(port: number, method: string, path: string, requestId: string, body?: string): Promise<{ status: number } | { error: string }> {
  return new Promise((resolve) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent: false,
        headers: { 'x-request-id': requestId, connection: 'close', ...(body === undefined ? {} : { 'content-length': Buffer.byteLength(body) }) },
      },
      (res) => {
        res
          .resume()
          .on('end', () => resolve({ status: res.statusCode! }))
          .on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }))
      },
    )
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }))
    req.end(body)
  })
}

/** Request ids the server logged as started (LOG_REQUESTS=1 logs "incoming request"). */
function startedRequestIds(output: string): Set<string> {
  const ids = new Set<string>()
  for (const line of output.split('\n')) {
    if (!line.includes('"incoming request"')) continue
    const entry = JSON.parse(line) as { reqId: string }
    ids.add(entry.reqId)
  }
  return ids
}

/** Resolves once the server has logged that it started the request with this id. */
async function serverStarted(server: ServerProcess, requestId: string): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!server.output().includes(`"reqId":"${requestId}"`)) {
    if (Date.now() > deadline) throw new Error(`the server never started request ${requestId}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/**
 * Starts a POST whose body arrives in two halves: the first now, the second after `delayMs`.
 * Resolves with the status the server finally answers.
 */
function slowUpload(server: ServerProcess, personId: string, delayMs: number): { started: Promise<void>; answered: Promise<number> } {
  const port = Number(new URL(server.baseUrl).port)
  const body = JSON.stringify({ person_id: personId, person_name: 'Slow upload' })
  const req = httpRequest({
    host: '127.0.0.1',
    port,
    method: 'POST',
    path: '/persons',
    agent: false,
    headers: { 'content-length': Buffer.byteLength(body), connection: 'close', 'x-request-id': `slow-${personId}` },
  })
  const answered = new Promise<number>((resolve, reject) => {
    req.on('response', (res) => res.resume().on('end', () => resolve(res.statusCode!)))
    req.on('error', reject)
  })
  // started means the server has read its headers and is waiting for the rest of the body
  const started = new Promise<void>((resolve) => req.write(body.slice(0, 10), () => resolve())).then(() => serverStarted(server, `slow-${personId}`))
  void started.then(() => setTimeout(() => req.end(body.slice(10)), delayMs))
  return { started, answered }
}

/** Runs CLIENTS loops of mixed reads and creates until each sees the server gone, or `untilMs`. */
async function load(port: number, prefix: string, untilMs: number): Promise<Outcome[]> {
  const outcomes: Outcome[] = []
  const deadline = Date.now() + untilMs
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, client) => {
      for (let n = 0; Date.now() < deadline; n++) {
        const id = `${prefix}-c${client}-${n}`
        const kind = (['read', 'create', 'page'] as const)[n % 3]!
        const outcome: Outcome = kind === 'create' ? { id, kind, personId: id } : { id, kind }
        outcomes.push(outcome)
        const result =
          kind === 'read'
            ? await send(port, 'GET', '/persons/seed', id)
            : kind === 'page'
              ? await send(port, 'GET', '/persons?limit=5', id)
              : await send(port, 'POST', '/persons', id, JSON.stringify({ person_id: id, person_name: `Person ${id}` }))
        if ('status' in result) outcome.status = result.status
        else outcome.error = result.error
        // the listening socket is closed: this client is done
        if (outcome.error === 'ECONNREFUSED') return
      }
    }),
  )
  return outcomes
}

async function exitOf(server: ServerProcess): Promise<number | null> {
  if (server.child.exitCode !== null) return server.child.exitCode
  const [code] = (await once(server.child, 'exit')) as [number | null]
  return code
}

async function checkAcknowledgedCreatesExist(databaseUrl: string, outcomes: readonly Outcome[], extra: readonly string[]): Promise<void> {
  const restarted = await spawnServer(databaseUrl)
  try {
    const acknowledged = [...outcomes.filter((o) => o.kind === 'create' && o.status === 201).map((o) => o.personId!), ...extra]
    assert.ok(acknowledged.length > 0)
    for (const id of acknowledged) {
      const response = await fetch(`${restarted.baseUrl}/persons/${id}`)
      await response.arrayBuffer()
      assert.equal(response.status, 200, `acknowledged create of ${id} is there after the restart`)
    }
  } finally {
    await restarted.stop()
  }
}

for (const driver of TEST_DRIVERS) {
  describe(`${driver.name}: SIGTERM under load`, () => {
    it('answers every request the server started, finishes a slow upload, exits 0, and keeps every acknowledged write', async (t) => {
      const database = await driver.createDatabase()
      try {
        const server = await spawnServer(database.url, [], 20_000, { LOG_REQUESTS: '1' })
        const port = Number(new URL(server.baseUrl).port)
        const seeded = await send(port, 'POST', '/persons', 'seed', '{"person_id":"seed","person_name":"Wim"}')
        assert.deepEqual(seeded, { status: 201 })

        const running = load(port, 'term', 15_000)
        await new Promise((resolve) => setTimeout(resolve, LOAD_BEFORE_SIGNAL_MS))
        const slow = slowUpload(server, 'slow-one', 400)
        await slow.started
        server.child.kill('SIGTERM')
        const [outcomes, code, slowStatus] = await Promise.all([running, exitOf(server), slow.answered])

        assert.equal(code, 0, `exit code; output:\n${server.output().slice(-2000)}`)
        assert.equal(slowStatus, 201, 'the upload in flight at SIGTERM was finished and answered')
        const started = startedRequestIds(server.output())
        const answered = new Map(outcomes.map((o) => [o.id, o]))
        let startedByLoad = 0
        for (const id of started) {
          const outcome = answered.get(id)
          if (outcome === undefined) continue
          startedByLoad++
          assert.ok(outcome.status !== undefined, `request ${id} was started by the server but not answered (${outcome.error})`)
          assert.ok(outcome.status < 500, `request ${id} answered ${outcome.status}`)
        }
        assert.ok(startedByLoad > 20, `the load ran (${startedByLoad} requests started)`)
        const refused = outcomes.filter((o) => o.error !== undefined).length
        t.diagnostic(
          `${outcomes.length} requests sent, ${startedByLoad} started by the server and all answered, ${refused} got no answer and were never started by it`,
        )
        // every client ended because the server stopped listening, not because time ran out
        assert.ok(outcomes.some((o) => o.error === 'ECONNREFUSED'))
        await checkAcknowledgedCreatesExist(database.url, outcomes, ['slow-one'])
      } finally {
        await database.cleanup()
      }
    })
  })
}

describe('SIGTERM with --workers 2', () => {
  it('passes the signal to every worker, finishes a slow upload, and exits 0', async () => {
    const driver = TEST_DRIVERS[0]!
    const database = await driver.createDatabase()
    try {
      const server = await spawnServer(database.url, ['--workers', '2'], 20_000, { LOG_REQUESTS: '1' })
      const port = Number(new URL(server.baseUrl).port)
      const running = load(port, 'workers', 15_000)
      await new Promise((resolve) => setTimeout(resolve, LOAD_BEFORE_SIGNAL_MS))
      const slow = slowUpload(server, 'slow-two', 400)
      await slow.started
      server.child.kill('SIGTERM')
      const [outcomes, code, slowStatus] = await Promise.all([running, exitOf(server), slow.answered])
      assert.equal(code, 0, `exit code; output:\n${server.output().slice(-2000)}`)
      assert.equal(slowStatus, 201)
      for (const o of outcomes) if (o.status !== undefined) assert.ok(o.status < 500, `${o.id} answered ${o.status}`)
      await checkAcknowledgedCreatesExist(database.url, outcomes, ['slow-two'])
    } finally {
      await database.cleanup()
    }
  })
})

describe('SIGTERM with a request that never finishes', () => {
  it('gives up after SHUTDOWN_TIMEOUT_MS, closes the connection, and exits 1', async () => {
    const database = await TEST_DRIVERS[0]!.createDatabase()
    try {
      const server = await spawnServer(database.url, [], 20_000, { SHUTDOWN_TIMEOUT_MS: '500' })
      const port = Number(new URL(server.baseUrl).port)
      // a body that is announced and never sent
      const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/persons', agent: false, headers: { 'content-length': '100' } })
      req.on('error', () => {})
      await new Promise<void>((resolve) => req.write('{"person_id"', () => resolve()))
      const signalled = Date.now()
      server.child.kill('SIGTERM')
      const code = await exitOf(server)
      assert.equal(code, 1)
      assert.ok(Date.now() - signalled < 5000, 'it did not wait for the stalled client')
      assert.match(server.output(), /shutdown timeout/)
    } finally {
      await database.cleanup()
    }
  })
})
