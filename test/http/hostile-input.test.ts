/**
 * Hostile input at the HTTP level, against the real command in a child process (so "the process
 * stays up" means what it says): fast-check builds whole requests (method, path, query, headers,
 * body; huge, deeply nested, `__proto__`-laden), more than a thousand per run, and a few
 * hand-made byte streams that are not HTTP at all. No answer is a 5xx, none shows a stack trace,
 * SQL or a file path, every one carries the security headers, failed requests change no stored
 * data, and the process is still serving at the end.
 */
import { Agent, request, type IncomingHttpHeaders } from 'node:http'
import { connect } from 'node:net'
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { assertNoLeak, decodedOrAsIs } from '../helpers/leaks.js'
import { spawnServer, type ServerProcess } from '../helpers/spawn-server.js'
import { TEST_DRIVERS, type TestDatabase } from '../helpers/test-stores.js'

/** Generated requests per driver: more than a thousand on SQLite, a second opinion on PostgreSQL. */
const RUNS: Readonly<Record<string, number>> = { sqlite: 2000, postgres: 600 }
const SEEDED = ['a', 'Wim', '1', 'x.y_z~-'] as const
const REQUEST_TIMEOUT_MS = 10_000

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
}

interface HostileRequest {
  readonly method: string
  readonly path: string
  readonly headers: Readonly<Record<string, string>>
  readonly body?: string | Buffer
}

interface Answer {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly body: string
}

let agent = new Agent({ keepAlive: true, maxSockets: 1 })

function send(baseUrl: string, req: HostileRequest, retry = true): Promise<Answer> {
  const url = new URL(baseUrl)
  const headers: Record<string, string | number> = { ...req.headers }
  if (req.body !== undefined) headers['content-length'] = Buffer.byteLength(req.body)
  return new Promise((resolve, reject) => {
    const outgoing = request({ agent, host: url.hostname, port: url.port, method: req.method, path: req.path, headers, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }))
      res.on('error', reject)
    })
    outgoing.on('timeout', () => outgoing.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)))
    outgoing.on('error', (error: NodeJS.ErrnoException) => {
      // a kept-alive socket that the server closed after its previous answer: retry once
      if (retry && outgoing.reusedSocket && error.code === 'ECONNRESET') resolve(send(baseUrl, req, false))
      else reject(error)
    })
    outgoing.end(req.body)
  })
}

function describeRequest(req: HostileRequest, res?: Answer): string {
  const body = req.body === undefined ? '' : ` body(${Buffer.byteLength(req.body)} bytes)=${JSON.stringify(String(req.body).slice(0, 100))}`
  const answer = res === undefined ? '' : ` → ${res.status} ${JSON.stringify(res.headers).slice(0, 200)} ${res.body.slice(0, 200)}`
  return `${req.method} ${req.path.slice(0, 160)} ${JSON.stringify(req.headers).slice(0, 200)}${body}${answer}`
}

/** Every answer: no 5xx, the security headers (none on a 304), a whole problem for a 4xx, and no leak anywhere. */
function assertSafeAnswer(req: HostileRequest, res: Answer): void {
  const where = describeRequest(req, res)
  assert.ok(res.status >= 100 && res.status < 500, `a 5xx: ${where}`)
  // a 304 carries the validators only (RFC 9110 §15.4.5; security-headers.ts says why)
  if (res.status !== 304) for (const [name, value] of Object.entries(SECURITY_HEADERS)) assert.equal(res.headers[name], value, `${name} missing: ${where}`)
  else for (const name of Object.keys(SECURITY_HEADERS)) assert.equal(res.headers[name], undefined, `${name} on a 304: ${where}`)
  // only a leak when the request did not carry it itself: a 404 echoes the id, and fast-check may well generate "SELECT"
  const carried = [req.method, req.path, decodedOrAsIs(req.path), ...Object.keys(req.headers), ...Object.values(req.headers), String(req.body ?? '')]
  assertNoLeak(`${JSON.stringify(res.headers)}\n${res.body}`, `the answer to ${where}`, carried, res.status >= 400 ? 'error' : 'any')
  if (res.status < 400 || req.method === 'HEAD') return
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/, `not a problem: ${where}`)
  const problem = JSON.parse(res.body) as Record<string, unknown>
  for (const member of ['type', 'title', 'detail', 'message']) assert.equal(typeof problem[member], 'string', `${member}: ${where}`)
  assert.equal(problem.status, res.status, where)
}

// RFC 9110 §5.5 field values, as node:http will send them: visible ASCII, obs-text, SP and HTAB
const fieldChar = fc
  .oneof(
    { weight: 10, arbitrary: fc.integer({ min: 0x21, max: 0x7e }) },
    { weight: 2, arbitrary: fc.integer({ min: 0x80, max: 0xff }) },
    { weight: 1, arbitrary: fc.constantFrom(0x20, 0x09) },
  )
  .map((code) => String.fromCharCode(code))
const fieldValue = (maxLength: number): fc.Arbitrary<string> => fc.string({ unit: fieldChar, maxLength }).map((value) => value.replace(/^[ \t]+|[ \t]+$/g, ''))

/** Percent-encodes the UTF-8 of `text` (a lone surrogate becomes U+FFFD, as a client would send it). */
function encodeSegment(text: string): string {
  return [...Buffer.from(text, 'utf8')]
    .map((byte) => (/[A-Za-z0-9._~-]/.test(String.fromCharCode(byte)) ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`))
    .join('')
}

const hostileText: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom(
    '__proto__',
    'constructor',
    'prototype',
    "' OR 1=1 --",
    '"; DROP TABLE persons; --',
    '../../etc/passwd',
    '%00',
    '\u0000',
    '\ud800',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a log4j-style probe, sent as the literal text
    '${jndi:ldap://x}',
    '<script>alert(1)</script>',
    '{{7*7}}',
    'NaN',
    '-0',
    '1e999',
  ),
)

const method = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE') },
  { weight: 2, arbitrary: fc.constantFrom('OPTIONS', 'TRACE', 'PROPFIND', 'MKCOL', 'SEARCH', 'QUERY', 'LINK') },
  // tokens llhttp does not know, and lower case: Node's parser refuses them before any route
  { weight: 1, arbitrary: fc.constantFrom('FOO', 'get', 'GETT', 'X-METHOD') },
)

const idSegment: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...SEEDED) },
  { weight: 3, arbitrary: hostileText.filter((s) => s.length > 0).map(encodeSegment) },
  { weight: 2, arbitrary: fc.stringMatching(/^[A-Za-z0-9._~-]{1,70}$/) },
  { weight: 1, arbitrary: fc.integer({ min: 65, max: 5000 }).map((n) => 'a'.repeat(n)) },
  { weight: 1, arbitrary: fc.constantFrom('%', '%E0%A4%A', '%ZZ', '..%2F..%2Fpackage.json', 'a%2Fb', '%2e%2e', '__proto__', 'constructor', '%00') },
)

const path: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: idSegment.map((id) => `/persons/${id}`) },
  { weight: 3, arbitrary: fc.constant('/persons') },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '/',
      '/persons/',
      '//persons',
      '/persons/a/b',
      '/PERSONS/a',
      '/persons/..',
      '/docs',
      '/docs/',
      '/docs/static/..%2F..%2Fpackage.json',
      '/docs/static/%2e%2e/%2e%2e/package.json',
      '/docs/json',
      '/openapi.json',
      '/healthz',
      '/readyz',
      '/metrics',
      '/problems/not-found',
      '/problems/__proto__',
      '/problems/constructor',
      '/%',
      '/..',
      '/*',
    ),
  },
  { weight: 1, arbitrary: hostileText.map((text) => `/${encodeSegment(text)}`) },
)

const queryPart = fc
  .tuple(
    fc.constantFrom('limit', 'after', '__proto__', 'constructor', '__proto__[person_name]', 'limit[]', 'a'),
    fc.oneof(hostileText, fc.integer({ min: -5, max: 100_000 }).map(String), fc.constantFrom('0x10', '1e2', ' 5', '1000', '1001')),
  )
  .map(([key, value]) => `${encodeSegment(key).replace(/%5B/g, '[').replace(/%5D/g, ']')}=${encodeSegment(value)}`)

const query = fc.oneof(
  { weight: 3, arbitrary: fc.constant('') },
  { weight: 2, arbitrary: fc.array(queryPart, { minLength: 1, maxLength: 4 }).map((parts) => `?${parts.join('&')}`) },
)

const headerValue = fc.oneof(
  { weight: 5, arbitrary: fieldValue(60) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '*',
      '"a"',
      'W/"a"',
      'a',
      '"a", W/"b", *',
      ',,,',
      '""',
      'W/',
      'Sun, 06 Nov 1994 08:49:37 GMT',
      'Bearer x',
      'application/json; charset=utf-8',
    ),
  },
  // far past any validator, still under Node's 16 KiB header limit
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 12_000 }).map((n) => `"${'x'.repeat(n)}"`) },
  { weight: 1, arbitrary: fc.integer({ min: 50, max: 600 }).map((n) => Array.from({ length: n }, (_, i) => `"t${i}"`).join(', ')) },
)

const headers: fc.Arbitrary<Record<string, string>> = fc.dictionary(
  fc.constantFrom(
    'if-match',
    'if-none-match',
    'if-modified-since',
    'if-unmodified-since',
    'content-type',
    'authorization',
    'x-request-id',
    'accept',
    'accept-encoding',
    'origin',
    'range',
    'expect',
    'x-forwarded-for',
    '__proto__',
    'constructor',
    'x-http-method-override',
  ),
  headerValue,
  { maxKeys: 5 },
)

const nested = fc
  .tuple(fc.integer({ min: 1, max: 20_000 }), fc.constantFrom('[', '{"a":', '{"__proto__":', '{"person_name":'))
  .map(([depth, open]) => (open === '[' ? `${'['.repeat(depth)}${']'.repeat(depth)}` : `${open.repeat(depth)}1${'}'.repeat(depth)}`))

const body: fc.Arbitrary<string | Buffer | undefined> = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value) ?? 'null') },
  {
    weight: 3,
    arbitrary: fc
      .record(
        {
          person_id: fc.oneof(fc.constantFrom(...SEEDED), hostileText, fc.stringMatching(/^[A-Za-z0-9._~-]{1,64}$/), fc.integer(), fc.constant(null)),
          person_name: fc.oneof(hostileText, fc.integer(), fc.constant(null), fc.array(fc.string(), { maxLength: 2 }), fc.constant({ toString: 'x' })),
          __proto__: fc.constant({ person_name: 'polluted', isAdmin: true }),
          constructor: fc.constant({ prototype: { polluted: true } }),
        },
        { requiredKeys: [] },
      )
      .map(
        (members) =>
          // as text, so that __proto__ is an ordinary member of the JSON, as an attacker sends it
          `{${Object.entries(members)
            .map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v) ?? 'null'}`)
            .join(',')}}`,
      ),
  },
  { weight: 1, arbitrary: nested },
  { weight: 1, arbitrary: fc.integer({ min: 60_000, max: 200_000 }).map((n) => `{"person_name":"${'y'.repeat(n)}"}`) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)) },
  { weight: 1, arbitrary: hostileText },
)

const hostileRequest: fc.Arbitrary<HostileRequest> = fc
  .record({ method, path, query, headers, body })
  .map(({ method: m, path: p, query: q, headers: h, body: b }) => ({ method: m, path: `${p}${q}`, headers: h, ...(b === undefined ? {} : { body: b }) }))

/** Byte streams that are not valid HTTP/1.1, or abuse its framing. */
const MALFORMED_STREAMS: readonly string[] = [
  'GARBAGE\r\n\r\n',
  '\x00\x01\x02\xff\r\n\r\n',
  'GET /persons HTTP/1.1\r\nHost: x\r\nNo-Colon-Here\r\n\r\n',
  'GET /persons HTTP/9.9\r\nHost: x\r\n\r\n',
  `GET /${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
  'POST /persons HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n',
  'POST /persons HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
  'POST /persons HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n',
  'POST /persons HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
  'GET /persons HTTP/1.1\r\nHost: x\r\nX-Bad: a\rb\r\n\r\n',
  'GET /persons\r\n\r\n',
  'GET /persons HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n',
]

/** Writes raw bytes on a fresh connection and collects whatever comes back until it closes. */
function sendRaw(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let received = ''
    socket.setEncoding('latin1')
    socket.setTimeout(REQUEST_TIMEOUT_MS, () => socket.destroy(new Error('no answer')))
    socket.on('data', (chunk: string) => {
      received += chunk
    })
    socket.on('close', () => resolve(received))
    socket.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' ? resolve(received) : reject(error)))
    socket.end(Buffer.from(bytes, 'latin1'))
  })
}

for (const driver of TEST_DRIVERS) {
  describe(`${driver.name}: hostile requests to a running ifmatch process`, () => {
    let database: TestDatabase
    let server: ServerProcess
    let baseline: string

    /** Everything stored, with its validators: the collection page and each seeded person. */
    async function snapshot(): Promise<string> {
      const page = await send(server.baseUrl, { method: 'GET', path: '/persons?limit=1000', headers: {} })
      assert.equal(page.status, 200, page.body)
      return JSON.stringify([page.headers.etag, page.headers['last-modified'], page.body])
    }

    before(async () => {
      agent = new Agent({ keepAlive: true, maxSockets: 1 })
      database = await driver.createDatabase()
      server = await spawnServer(database.url)
      for (const id of SEEDED) {
        const created = await send(server.baseUrl, {
          method: 'POST',
          path: '/persons',
          headers: {},
          body: JSON.stringify({ person_id: id, person_name: `Seed ${id}` }),
        })
        assert.equal(created.status, 201, created.body)
      }
      baseline = await snapshot()
    })

    after(async () => {
      agent.destroy()
      await server.stop()
      await database.cleanup()
    })

    it(`answers ${RUNS[driver.name]} generated requests safely, and failed ones change nothing`, async () => {
      await fc.assert(
        fc.asyncProperty(hostileRequest, async (req) => {
          let res: Answer
          try {
            res = await send(server.baseUrl, req)
          } catch (error) {
            assert.fail(`no answer (${(error as Error).message}) to ${describeRequest(req)}`)
          }
          assertSafeAnswer(req, res)
          const now = await snapshot()
          // only a successful write may change what is stored
          const wrote = ['POST', 'PUT', 'PATCH', 'DELETE'].includes(req.method) && res.status >= 200 && res.status < 300
          if (!wrote) assert.equal(now, baseline, `stored data changed after ${describeRequest(req, res)}`)
          baseline = now
        }),
        { numRuns: RUNS[driver.name] ?? 400, includeErrorInReport: true },
      )
    })

    it('answers byte streams that are not valid HTTP/1.1 with no 5xx, and with its security headers', async () => {
      const port = Number(new URL(server.baseUrl).port)
      for (const stream of MALFORMED_STREAMS) {
        const answer = await sendRaw(port, stream)
        const where = `${JSON.stringify(stream.slice(0, 80))} → ${JSON.stringify(answer.slice(0, 300))}`
        // closing without a word is an answer too; anything said is said properly
        if (answer === '') continue
        assert.match(answer, /^HTTP\/1\.1 [1-4]\d\d /, where)
        assert.match(answer, /\r\nx-content-type-options: nosniff\r\n/i, where)
        assertNoLeak(answer, where)
      }
      assert.equal(await snapshot(), baseline)
    })

    it('is still up and serving, and logged no bug', async () => {
      assert.equal(server.child.exitCode, null)
      assert.equal(server.child.signalCode, null)
      const health = await send(server.baseUrl, { method: 'GET', path: '/healthz', headers: {} })
      assert.equal(health.status, 200)
      for (const id of SEEDED) {
        const res = await send(server.baseUrl, { method: 'GET', path: `/persons/${encodeURIComponent(id)}`, headers: {} })
        assert.ok(res.status === 200 || res.status === 404, `${id}: ${res.status}`)
      }
      // "unhandled error" is what the error handler logs for a bug (answered as a 500)
      assert.doesNotMatch(server.output(), /unhandled error|"level":50|"level":60/)
    })
  })
}
