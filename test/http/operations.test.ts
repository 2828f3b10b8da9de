/**
 * What an operator's tooling sees: liveness and readiness, Prometheus metrics, security headers on
 * every kind of response, request ids, access logs, and the optional API_TOKEN write protection.
 */
import { request as httpRequest } from 'node:http'
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { buildApp } from '../../src/http/app.js'
import { NOT_MODIFIED_FIELD_NAMES, fieldNamesBesideConnection } from '../helpers/http-answers.js'
import { sample } from '../helpers/prometheus.js'
import { spawnServer, type ServerProcess } from '../helpers/spawn-server.js'
import { startServer, type RunningServer } from '../helpers/start-server.js'
import { TEST_DRIVERS } from '../helpers/test-stores.js'

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
}
const PROBLEM_JSON = /^application\/problem\+json/

async function create(baseUrl: string, id: string, name = 'Wim', headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${baseUrl}/persons`, { method: 'POST', headers, body: JSON.stringify({ person_id: id, person_name: name }) })
}

/** One request over a raw node:http connection, so a malformed or huge request can be sent. */
function rawRequest(
  port: number,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      let body = ''
      res
        .setEncoding('utf8')
        .on('data', (chunk: string) => {
          body += chunk
        })
        .on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

for (const driver of TEST_DRIVERS) {
  describe(`${driver.name}: /healthz and /readyz`, () => {
    let server: RunningServer
    before(async () => {
      server = await startServer({ driver })
    })
    after(async () => server.close())

    it('/healthz answers 200 while the process is up', async () => {
      const response = await fetch(`${server.baseUrl}/healthz`)
      assert.equal(response.status, 200)
      assert.deepEqual(await response.json(), { status: 'ok' })
      assert.equal(response.headers.get('cache-control'), 'no-store')
    })

    it('/readyz answers 200 while the store answers', async () => {
      const response = await fetch(`${server.baseUrl}/readyz`)
      assert.equal(response.status, 200)
      assert.deepEqual(await response.json(), { status: 'ready' })
    })
  })

  describe(`${driver.name}: /readyz when the store is gone`, () => {
    it('answers 503 with a problem, and /healthz still answers 200', async () => {
      const database = await driver.createDatabase()
      const store = await database.openStore()
      const app = buildApp({ store })
      await app.listen({ port: 0, host: '127.0.0.1' })
      const address = app.server.address()
      if (address === null || typeof address === 'string') throw new Error('no TCP address')
      const baseUrl = `http://127.0.0.1:${address.port}`
      try {
        // a real failure: the database connection is closed under the running server
        await store.close()
        const ready = await fetch(`${baseUrl}/readyz`)
        assert.equal(ready.status, 503)
        assert.match(ready.headers.get('content-type') ?? '', PROBLEM_JSON)
        assert.equal(ready.headers.get('retry-after'), '1')
        const body = (await ready.json()) as Record<string, unknown>
        assert.equal(body.type, '/problems/store-unavailable')
        assert.equal(body.status, 503)
        const health = await fetch(`${baseUrl}/healthz`)
        await health.arrayBuffer()
        assert.equal(health.status, 200)
      } finally {
        await app.close()
        await database.cleanup()
      }
    })
  })

  describe(`${driver.name}: /metrics`, () => {
    let server: RunningServer
    let metrics: string
    let bodyBytes: number

    before(async () => {
      server = await startServer({ driver })
      const { baseUrl } = server
      const created = await create(baseUrl, 'm1')
      await created.arrayBuffer()
      const etag = created.headers.get('etag')!
      const first = await fetch(`${baseUrl}/persons/m1`)
      bodyBytes = Buffer.byteLength(await first.text())
      for (let i = 0; i < 3; i++) {
        const revalidated = await fetch(`${baseUrl}/persons/m1`, { headers: { 'if-none-match': etag } })
        await revalidated.arrayBuffer()
        assert.equal(revalidated.status, 304)
      }
      const changed = await fetch(`${baseUrl}/persons/m1`, { headers: { 'if-none-match': '"not-the-current-one"' } })
      await changed.arrayBuffer()
      assert.equal(changed.status, 200)
      const blind = await fetch(`${baseUrl}/persons/m1`, { method: 'PUT', body: '{"person_name":"Ann"}' })
      await blind.arrayBuffer()
      assert.equal(blind.status, 428)
      const stale = await fetch(`${baseUrl}/persons/m1`, { method: 'PUT', body: '{"person_name":"Ann"}', headers: { 'if-match': '"stale"' } })
      await stale.arrayBuffer()
      assert.equal(stale.status, 412)
      const unknown = await fetch(`${baseUrl}/no/such/thing`)
      await unknown.arrayBuffer()
      const response = await fetch(`${baseUrl}/metrics`)
      assert.equal(response.status, 200)
      assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
      metrics = await response.text()
    })
    after(async () => server.close())

    it('counts requests by route pattern, method and status', () => {
      assert.equal(sample(metrics, 'ifmatch_http_requests_total', { route: '/persons', method: 'POST', status: '201' }), 1)
      assert.equal(sample(metrics, 'ifmatch_http_requests_total', { route: '/persons/:id', method: 'GET', status: '304' }), 3)
      assert.equal(sample(metrics, 'ifmatch_http_requests_total', { route: '/persons/:id', method: 'GET', status: '200' }), 2)
    })

    it('keeps unknown paths out of its labels', () => {
      assert.equal(sample(metrics, 'ifmatch_http_requests_total', { route: 'unmatched', method: 'GET', status: '404' }), 1)
      assert.doesNotMatch(metrics, /no\/such\/thing/)
    })

    it('counts conditional GETs by outcome, and the share answered 304', () => {
      assert.equal(sample(metrics, 'ifmatch_conditional_get_requests_total', { outcome: 'not_modified' }), 3)
      assert.equal(sample(metrics, 'ifmatch_conditional_get_requests_total', { outcome: 'full' }), 1)
      assert.equal(sample(metrics, 'ifmatch_conditional_get_not_modified_ratio'), 0.75)
    })

    it('counts the body bytes the 304s did not send', () => {
      assert.equal(sample(metrics, 'ifmatch_not_modified_bytes_saved_total'), 3 * bodyBytes)
      assert.equal(sample(metrics, 'ifmatch_not_modified_unknown_size_total'), 0)
    })

    it('counts 412 and 428 answers', () => {
      assert.equal(sample(metrics, 'ifmatch_precondition_failed_total', { route: '/persons/:id', method: 'PUT' }), 1)
      assert.equal(sample(metrics, 'ifmatch_precondition_required_total', { route: '/persons/:id', method: 'PUT' }), 1)
    })

    it('has a histogram of store latency by operation', () => {
      const reads = sample(metrics, 'ifmatch_store_operation_duration_seconds_count', { operation: 'readValidator', outcome: 'ok' })
      // at least the two reads made on the framework's path. On SQLite the GETs were answered on the read fast path, whose
      // ~1 µs immediate reads are not timed (two clock reads and an observation would cost half as
      // much again); on PostgreSQL every validator statement is timed, the GETs' included (one
      // request at a time here: a statement each)
      assert.ok(reads !== undefined && reads >= (driver.name === 'postgres' ? 7 : 2), `readValidator calls: ${reads}`)
      assert.equal(sample(metrics, 'ifmatch_store_operation_duration_seconds_count', { operation: 'create', outcome: 'ok' }), 1)
      const sum = sample(metrics, 'ifmatch_store_operation_duration_seconds_sum', { operation: 'readValidator', outcome: 'ok' })
      assert.ok(sum !== undefined && sum > 0 && sum < 10)
    })
  })
}

describe('security headers', () => {
  let server: RunningServer
  let etag: string
  before(async () => {
    server = await startServer()
    const created = await create(server.baseUrl, 's1')
    await created.arrayBuffer()
    etag = created.headers.get('etag')!
  })
  after(async () => server.close())

  const cases: { name: string; path: string; init?: RequestInit; status: number }[] = [
    { name: 'a 200', path: '/persons/s1', status: 200 },
    { name: 'a 201', path: '/persons', init: { method: 'POST', body: '{"person_id":"s2","person_name":"A"}' }, status: 201 },
    { name: 'a 204', path: '/persons/s2', init: { method: 'DELETE', headers: { 'if-match': '*' } }, status: 204 },
    { name: 'a HEAD', path: '/persons/s1', init: { method: 'HEAD' }, status: 200 },
    { name: 'a 400', path: '/persons', init: { method: 'POST', body: '{' }, status: 400 },
    { name: 'a 404', path: '/persons/nobody', status: 404 },
    { name: 'a 404 for an unknown path', path: '/nowhere', status: 404 },
    { name: 'a 405', path: '/persons', init: { method: 'DELETE' }, status: 405 },
    { name: 'a 412', path: '/persons/s1', init: { method: 'PUT', body: '{"person_name":"B"}', headers: { 'if-match': '"x"' } }, status: 412 },
    { name: 'a 413', path: '/persons', init: { method: 'POST', body: 'x'.repeat(70_000) }, status: 413 },
    { name: 'a 428', path: '/persons/s1', init: { method: 'PATCH', body: '{}' }, status: 428 },
    { name: 'a 400 for a malformed URL', path: '/persons/%E0%A4%A', status: 400 },
    { name: 'the metrics', path: '/metrics', status: 200 },
    { name: 'the OpenAPI document', path: '/openapi.json', status: 200 },
  ]
  for (const c of cases) {
    it(`are on ${c.name}`, async () => {
      const response = await fetch(`${server.baseUrl}${c.path}`, c.init)
      await response.arrayBuffer()
      assert.equal(response.status, c.status)
      for (const [name, value] of Object.entries(SECURITY_HEADERS)) assert.equal(response.headers.get(name), value, name)
      assert.match(response.headers.get('content-security-policy') ?? '', /default-src 'self'.*frame-ancestors 'none'/)
    })
  }

  it('are not on a 304, which carries the validators only (RFC 9110 §15.4.5): the stored 200 keeps them', async () => {
    const response = await fetch(`${server.baseUrl}/persons/s1`, { headers: { 'if-none-match': etag } })
    assert.equal(response.status, 304)
    assert.equal(response.headers.get('etag'), etag)
    assert.deepEqual(fieldNamesBesideConnection(response.headers), NOT_MODIFIED_FIELD_NAMES)
    // what the 304 refreshes: the 200 a client or cache stored, which has them all
    const stored = await fetch(`${server.baseUrl}/persons/s1`)
    await stored.arrayBuffer()
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) assert.equal(stored.headers.get(name), value, name)
  })

  it("are on the 400 Node's parser answers to a header section over 16 KiB", async () => {
    const port = Number(new URL(server.baseUrl).port)
    const response = await rawRequest(port, '/persons/s1', { 'if-none-match': `"${'a'.repeat(20_000)}"` })
    assert.equal(response.status, 400)
    assert.match(String(response.headers['content-type']), PROBLEM_JSON)
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) assert.equal(response.headers[name], value, name)
  })

  it('allow a same-origin page with external scripts and styles, and nothing inline', async () => {
    const response = await fetch(`${server.baseUrl}/persons/s1`)
    await response.arrayBuffer()
    const csp = response.headers.get('content-security-policy') ?? ''
    assert.match(csp, /default-src 'self'/)
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/)
  })
})

describe('X-Request-Id', () => {
  let server: RunningServer
  before(async () => {
    server = await startServer()
  })
  after(async () => server.close())

  it('is echoed when the client sends a well-formed one', async () => {
    const response = await fetch(`${server.baseUrl}/healthz`, { headers: { 'x-request-id': 'trace-42.a:b' } })
    await response.arrayBuffer()
    assert.equal(response.headers.get('x-request-id'), 'trace-42.a:b')
  })

  it('is replaced by a generated one when it is not (too long, or unsafe in a log line)', async () => {
    for (const sent of ['a'.repeat(200), 'has spaces', '"quoted"']) {
      const response = await fetch(`${server.baseUrl}/healthz`, { headers: { 'x-request-id': sent } })
      await response.arrayBuffer()
      const given = response.headers.get('x-request-id')
      assert.ok(given !== null && given !== sent && /^[0-9a-f]{6}-[0-9a-z]+$/.test(given), `${given}`)
    }
  })

  it('is not added to responses of clients that did not send one', async () => {
    const response = await fetch(`${server.baseUrl}/healthz`)
    await response.arrayBuffer()
    assert.equal(response.headers.get('x-request-id'), null)
  })
})

describe('API_TOKEN write protection', () => {
  const TOKEN = 'c0rrect-h0rse_battery.staple~42+/='

  describe('when set', () => {
    let server: RunningServer
    before(async () => {
      server = await startServer({ app: { apiToken: TOKEN } })
      const created = await create(server.baseUrl, 'kept', 'Wim', { authorization: `Bearer ${TOKEN}` })
      await created.arrayBuffer()
      assert.equal(created.status, 201)
    })
    after(async () => server.close())

    it('answers a write without Authorization 401 with WWW-Authenticate, and stores nothing', async () => {
      const response = await create(server.baseUrl, 'intruder')
      assert.equal(response.status, 401)
      assert.equal(response.headers.get('www-authenticate'), 'Bearer realm="ifmatch"')
      assert.match(response.headers.get('content-type') ?? '', PROBLEM_JSON)
      const body = (await response.json()) as Record<string, unknown>
      assert.deepEqual(Object.keys(body).sort(), ['detail', 'message', 'status', 'title', 'type'])
      assert.equal(body.type, '/problems/unauthorized')
      assert.equal(body.status, 401)
      const check = await fetch(`${server.baseUrl}/persons/intruder`)
      await check.arrayBuffer()
      assert.equal(check.status, 404)
    })

    it('answers a wrong token 401 with error="invalid_token", whatever its length', async () => {
      for (const token of ['x', TOKEN.slice(0, -1), `${TOKEN}!`, 'y'.repeat(5000), TOKEN.toUpperCase()]) {
        const response = await create(server.baseUrl, 'intruder', 'A', { authorization: `Bearer ${token}` })
        await response.arrayBuffer()
        assert.equal(response.status, 401, token)
        assert.equal(response.headers.get('www-authenticate'), 'Bearer realm="ifmatch", error="invalid_token"')
      }
    })

    it('answers another scheme, or a malformed header, 401', async () => {
      for (const authorization of [`Basic ${Buffer.from(`u:${TOKEN}`).toString('base64')}`, TOKEN, 'Bearer', `Bearer  ${TOKEN} extra`]) {
        const response = await create(server.baseUrl, 'intruder', 'A', { authorization })
        await response.arrayBuffer()
        assert.equal(response.status, 401, authorization)
      }
    })

    it('answers 401 before 404, so an unauthenticated writer learns nothing about what exists', async () => {
      for (const id of ['kept', 'absent']) {
        for (const method of ['PUT', 'PATCH', 'DELETE']) {
          const response = await fetch(`${server.baseUrl}/persons/${id}`, {
            method,
            body: method === 'DELETE' ? undefined : '{"person_name":"X"}',
            headers: { 'if-match': '*' },
          })
          await response.arrayBuffer()
          assert.equal(response.status, 401, `${method} ${id}`)
        }
      }
    })

    it('accepts the token, with the scheme in any case', async () => {
      const response = await fetch(`${server.baseUrl}/persons/kept`, {
        method: 'PATCH',
        body: '{"person_name":"Ann"}',
        headers: { 'if-match': '*', authorization: `bEaReR ${TOKEN}` },
      })
      assert.equal(response.status, 200)
      assert.equal(((await response.json()) as { person_name: string }).person_name, 'Ann')
    })

    it('leaves reads open', async () => {
      const response = await fetch(`${server.baseUrl}/persons/kept`)
      await response.arrayBuffer()
      assert.equal(response.status, 200)
      const page = await fetch(`${server.baseUrl}/persons`)
      await page.arrayBuffer()
      assert.equal(page.status, 200)
    })
  })

  describe('when it is not a valid bearer token', () => {
    it('keeps the command from starting, and says why', async () => {
      const database = await TEST_DRIVERS[0]!.createDatabase()
      try {
        await assert.rejects(spawnServer(database.url, [], 20_000, { API_TOKEN: 'has spaces in it' }), /exited \(2\)[\s\S]*API_TOKEN must be a bearer token/)
      } finally {
        await database.cleanup()
      }
    })
  })

  describe('when set with reads protected too', () => {
    let server: RunningServer
    before(async () => {
      server = await startServer({ app: { apiToken: TOKEN, protectReads: true } })
    })
    after(async () => server.close())

    it('answers a read without the token 401, and with it as usual', async () => {
      const denied = await fetch(`${server.baseUrl}/persons`)
      await denied.arrayBuffer()
      assert.equal(denied.status, 401)
      const allowed = await fetch(`${server.baseUrl}/persons`, { headers: { authorization: `Bearer ${TOKEN}` } })
      await allowed.arrayBuffer()
      assert.equal(allowed.status, 200)
    })

    it('keeps health and metrics open for probes', async () => {
      for (const path of ['/healthz', '/readyz', '/metrics']) {
        const response = await fetch(`${server.baseUrl}${path}`)
        await response.arrayBuffer()
        assert.equal(response.status, 200, path)
      }
    })
  })
})

describe('logs of the ifmatch command', () => {
  let quiet: ServerProcess
  let verbose: ServerProcess
  let database: Awaited<ReturnType<(typeof TEST_DRIVERS)[number]['createDatabase']>>

  before(async () => {
    database = await TEST_DRIVERS[0]!.createDatabase({ shared: true })
    quiet = await spawnServer(database.url, [], 20_000, database.env)
    verbose = await spawnServer(database.url, [], 20_000, { ...database.env, LOG_REQUESTS: '1' })
    for (const server of [quiet, verbose]) {
      const response = await fetch(`${server.baseUrl}/persons/nobody`, { headers: { 'x-request-id': 'log-test-1' } })
      await response.arrayBuffer()
    }
  })
  after(async () => {
    await quiet.stop()
    await verbose.stop()
    await database.cleanup()
  })

  it('are JSON lines', () => {
    for (const line of quiet
      .output()
      .split('\n')
      .filter((l) => l.trim() !== ''))
      assert.doesNotThrow(() => JSON.parse(line), line)
  })

  it('log no line per request by default', () => {
    assert.doesNotMatch(quiet.output(), /log-test-1/)
  })

  it('with LOG_REQUESTS=1, log each request and its answer under its request id', async () => {
    // pino writes asynchronously: give the lines a moment
    await new Promise((resolve) => setTimeout(resolve, 200))
    const lines = verbose
      .output()
      .split('\n')
      .filter((l) => l.includes('"reqId":"log-test-1"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    assert.deepEqual(
      lines.map((l) => l.msg),
      ['incoming request', 'request completed'],
    )
    assert.equal((lines[1]!.res as { statusCode: number }).statusCode, 404)
  })
})
