/**
 * The read fast path (src/http/read-fast-path.ts): a GET or HEAD whose answer is a 304, or a 200
 * already cached under the current ETag, is answered on the raw node:http request before Fastify
 * routes it. It is an optimisation and nothing else, so every answer it gives must be the one the
 * framework gives, byte for byte (Date aside), and everything it declines must still reach Fastify
 * and be answered as before. A root onRequest hook counts the requests that reach Fastify: that is
 * how these tests tell which path answered. On both drivers: SQLite's validator reads are
 * immediate, PostgreSQL's are awaited before the fast path answers or hands the request over.
 */
import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { buildApp, type AppOptions } from '../../src/http/app.js'
import { FAST_PATH_ALLOWED, fastPathAllowed } from '../../src/http/read-fast-path.js'
import type { PersonStore, StoredPerson } from '../../src/store/person-store.js'
import { sample } from '../helpers/prometheus.js'
import { NOT_MODIFIED_FIELD_NAMES, createPerson, fieldNamesBesideConnection } from '../helpers/http-answers.js'
import { rawRequest, withoutDate, type RawResponse } from '../helpers/raw-request.js'
import { TEST_DRIVERS, type TestDatabase, type TestDriver } from '../helpers/test-stores.js'

const DAY_MS = 86_400_000
const TOKEN = 'fast-path.t0ken'
const ORIGIN = 'https://a.example'
// a few of the security headers every answer carries (security-headers.ts has them all)
const SECURITY = { 'x-content-type-options': 'nosniff', 'x-frame-options': 'DENY', 'referrer-policy': 'no-referrer' }

/** An app listening on an ephemeral port, and how many requests have reached Fastify so far. */
interface Served {
  readonly baseUrl: string
  readonly app: FastifyInstance
  reached(): number
}

/**
 * Builds and starts an app. Its root onRequest hook, added after buildApp and before listen, sees
 * every request Fastify routes (404s too) and none the fast path answers.
 */
async function serve(options: AppOptions, beforeListen?: (app: FastifyInstance) => void): Promise<Served> {
  const app = buildApp(options)
  let reached = 0
  app.addHook('onRequest', (_request, _reply, done) => {
    reached++
    done()
  })
  beforeListen?.(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('the app has no TCP address')
  return { baseUrl: `http://127.0.0.1:${address.port}`, app, reached: () => reached }
}

/** Serves `options` for the length of `body`, then closes the app. */
async function withServed(options: AppOptions, body: (served: Served) => Promise<void>): Promise<void> {
  const served = await serve(options)
  try {
    await body(served)
  } finally {
    await served.app.close()
  }
}

/** A fresh database, a store on it, and a fast-path app on that store holding `ids`. */
async function startFresh(driver: TestDriver, ids: readonly string[]): Promise<{ database: TestDatabase; store: PersonStore; fast: Served }> {
  const database = await driver.createDatabase()
  const store = await database.openStore()
  const fast = await serve({ store })
  for (const id of ids) await createPerson(fast.baseUrl, id, `Name of ${id}`)
  return { database, store, fast }
}

/** Undoes startFresh. */
async function stopFresh(database: TestDatabase, store: PersonStore, fast: Served): Promise<void> {
  await fast.app.close()
  await store.close()
  await database.cleanup()
}

interface Counted {
  readonly answer: RawResponse
  /** True when Fastify answered, false when the fast path did. */
  readonly reachedFastify: boolean
}

/** One request on a connection of its own, read to the last byte, and which path answered it. */
async function send(served: Served, method: string, path: string, headers: Record<string, string> = {}, chunkedBody?: string): Promise<Counted> {
  const before = served.reached()
  const answer = await rawRequest(served.baseUrl, method, path, headers, chunkedBody)
  const reached = served.reached() - before
  assert.ok(reached <= 1, `${method} ${path} reached Fastify ${reached} times`)
  return { answer, reachedFastify: reached === 1 }
}

/** Asserts that two answers are the same: status, every field but Date (names and values), body bytes. */
function assertSameAnswer(fast: RawResponse, framework: RawResponse, what: string): void {
  assert.equal(fast.status, framework.status, `${what}: status`)
  assert.deepEqual(withoutDate(fast.headers), withoutDate(framework.headers), `${what}: header fields`)
  assert.ok(fast.body.equals(framework.body), `${what}: body\n${fast.body.toString()}\n${framework.body.toString()}`)
}

function assertSecurityHeaders(answer: RawResponse, what: string): void {
  for (const [name, value] of Object.entries(SECURITY)) assert.equal(answer.headers.get(name), value, `${what}: ${name}`)
  assert.match(answer.headers.get('content-security-policy') ?? '', /default-src 'self'/, `${what}: content-security-policy`)
}

/** The validators and body of what a plain GET answers now. */
interface Current {
  readonly etag: string
  readonly lastModified: string
  readonly body: Buffer
}

async function current(served: Served, path: string): Promise<Current> {
  const { answer } = await send(served, 'GET', path)
  assert.equal(answer.status, 200, `GET ${path}`)
  return { etag: answer.headers.get('etag')!, lastModified: answer.headers.get('last-modified')!, body: answer.body }
}

function shifted(httpDate: string, ms: number): string {
  return new Date(Date.parse(httpDate) + ms).toUTCString()
}

function mustBeOk<T extends { ok: boolean }>(result: T): Extract<T, { ok: true }> {
  assert.ok(result.ok, JSON.stringify(result))
  return result as Extract<T, { ok: true }>
}

/** A precondition of the table, given the current validators of the resource it is sent for. */
interface Precondition {
  readonly name: string
  readonly headers: (current: Current) => Record<string, string>
  /** What API.md (RFC 9110 §13.2.2) answers a GET or HEAD with it. */
  readonly status: 200 | 304 | 412
}

const PRECONDITIONS: readonly Precondition[] = [
  { name: 'no precondition', headers: () => ({}), status: 200 },
  { name: 'If-None-Match with the current ETag', headers: (c) => ({ 'if-none-match': c.etag }), status: 304 },
  { name: 'If-None-Match with another ETag', headers: () => ({ 'if-none-match': '"not-this-one"' }), status: 200 },
  { name: 'If-None-Match: *', headers: () => ({ 'if-none-match': '*' }), status: 304 },
  { name: 'If-None-Match with the weak form of the current ETag', headers: (c) => ({ 'if-none-match': `W/${c.etag}` }), status: 304 },
  { name: 'If-None-Match with a list holding the current ETag', headers: (c) => ({ 'if-none-match': `"not-this", W/"nor-this" ,${c.etag}` }), status: 304 },
  { name: 'If-None-Match with the current ETag unquoted, as the seed sends it', headers: (c) => ({ 'if-none-match': c.etag.slice(1, -1) }), status: 304 },
  { name: 'a malformed If-None-Match (the current ETag unterminated)', headers: (c) => ({ 'if-none-match': `${c.etag.slice(0, -1)} x` }), status: 200 },
  { name: 'a malformed If-None-Match list whose other member is the current ETag', headers: (c) => ({ 'if-none-match': `${c.etag}, "broken` }), status: 304 },
  { name: 'If-Modified-Since equal to Last-Modified', headers: (c) => ({ 'if-modified-since': c.lastModified }), status: 304 },
  { name: 'If-Modified-Since a day before Last-Modified', headers: (c) => ({ 'if-modified-since': shifted(c.lastModified, -DAY_MS) }), status: 200 },
  { name: 'If-Modified-Since a day after Last-Modified', headers: (c) => ({ 'if-modified-since': shifted(c.lastModified, DAY_MS) }), status: 304 },
  { name: 'an If-Modified-Since that is no HTTP-date', headers: () => ({ 'if-modified-since': 'yesterday, about noon' }), status: 200 },
  {
    name: 'another ETag in If-None-Match beside a matching If-Modified-Since (If-None-Match decides)',
    headers: (c) => ({ 'if-none-match': '"not-this-one"', 'if-modified-since': c.lastModified }),
    status: 200,
  },
  { name: 'If-Match with the current ETag', headers: (c) => ({ 'if-match': c.etag }), status: 200 },
  { name: 'If-Match: *', headers: () => ({ 'if-match': '*' }), status: 200 },
  { name: 'If-Match and If-None-Match both with the current ETag', headers: (c) => ({ 'if-match': c.etag, 'if-none-match': c.etag }), status: 304 },
  { name: 'If-Match with another ETag', headers: () => ({ 'if-match': '"not-this-one"' }), status: 412 },
  { name: 'If-Match with the weak form of the current ETag', headers: (c) => ({ 'if-match': `W/${c.etag}` }), status: 412 },
  { name: 'a malformed If-Match list holding the current ETag', headers: (c) => ({ 'if-match': `${c.etag}, "broken` }), status: 412 },
  { name: 'If-Unmodified-Since a day before Last-Modified', headers: (c) => ({ 'if-unmodified-since': shifted(c.lastModified, -DAY_MS) }), status: 412 },
  { name: 'If-Unmodified-Since equal to Last-Modified', headers: (c) => ({ 'if-unmodified-since': c.lastModified }), status: 200 },
]

// p1…p5 and abc: a page of 2 has a Link to the next one, so does the page after p2
const SEEDED = ['abc', 'p1', 'p2', 'p3', 'p4', 'p5']
const TARGETS = [
  { name: 'a person', path: '/persons/p3' },
  { name: 'the first page, default limit', path: '/persons' },
  { name: 'a page of 2, with a Link', path: '/persons?limit=2' },
  { name: 'a page of 2 written ?limit=0002', path: '/persons?limit=0002' },
  { name: 'the page of 2 after p2', path: '/persons?limit=2&after=p2' },
]

/** A request the fast path must leave to Fastify, though its cache is warm. */
interface Declined {
  readonly name: string
  readonly method?: 'GET' | 'HEAD'
  readonly path: string
  /** Given the current validators of `validatorsOf` (a path), if set. */
  readonly headers?: (current: Current | undefined) => Record<string, string>
  readonly validatorsOf?: string
  readonly chunkedBody?: string
  readonly status: number
}

const DECLINED: readonly Declined[] = [
  { name: 'an absent person, even with If-None-Match: * (404)', path: '/persons/nobody', headers: () => ({ 'if-none-match': '*' }), status: 404 },
  { name: 'HEAD of an absent person', method: 'HEAD', path: '/persons/nobody', status: 404 },
  { name: 'an id longer than 64 characters (404)', path: `/persons/${'x'.repeat(65)}`, status: 404 },
  { name: 'an id with an escape (/persons/a%62c is abc)', path: '/persons/a%62c', status: 200 },
  {
    name: 'an id with an escape, with the current ETag of abc',
    path: '/persons/a%62c',
    validatorsOf: '/persons/abc',
    headers: (c) => ({ 'if-none-match': c!.etag }),
    status: 304,
  },
  { name: 'an id followed by a query', path: '/persons/p3?x=1', status: 200 },
  { name: '?limit=0 (400)', path: '/persons?limit=0', status: 400 },
  { name: '?limit=1001 (400)', path: '/persons?limit=1001', status: 400 },
  { name: 'a repeated limit', path: '/persons?limit=2&limit=2', status: 400 },
  { name: 'an unknown query parameter', path: '/persons?limit=2&x=1', status: 200 },
  {
    name: 'the query parameters in the other order',
    path: '/persons?after=p2&limit=2',
    validatorsOf: '/persons?limit=2&after=p2',
    headers: (c) => ({ 'if-none-match': c!.etag }),
    status: 304,
  },
  { name: 'an escaped after', path: '/persons?limit=2&after=p%32', status: 200 },
  { name: 'an empty query', path: '/persons?', status: 200 },
  { name: 'an empty after', path: '/persons?limit=2&after=', status: 400 },
  {
    name: 'a request with X-Request-Id (echoed)',
    path: '/persons/p3',
    validatorsOf: '/persons/p3',
    headers: (c) => ({ 'if-none-match': c!.etag, 'x-request-id': 'trace-fast.1' }),
    status: 304,
  },
  { name: 'a cached 200 with X-Request-Id', path: '/persons/p3', headers: () => ({ 'x-request-id': 'trace-fast.2' }), status: 200 },
  { name: 'a HEAD with X-Request-Id', method: 'HEAD', path: '/persons?limit=2', headers: () => ({ 'x-request-id': 'trace-fast.3' }), status: 200 },
  {
    name: 'a GET with Content-Length: 0',
    path: '/persons/p3',
    validatorsOf: '/persons/p3',
    headers: (c) => ({ 'if-none-match': c!.etag, 'content-length': '0' }),
    status: 304,
  },
  {
    name: 'a GET with a chunked body',
    path: '/persons?limit=2',
    chunkedBody: '{"x":1}',
    validatorsOf: '/persons?limit=2',
    headers: (c) => ({ 'if-none-match': c!.etag }),
    status: 304,
  },
]

for (const driver of TEST_DRIVERS) {
  describe(`the read fast path on ${driver.name}`, () => {
    describe('answers exactly what Fastify answers', () => {
      let database: TestDatabase
      let store: PersonStore
      let fast: Served
      let framework: Served
      const validators = new Map<string, Current>()

      before(async () => {
        ;({ database, store, fast } = await startFresh(driver, SEEDED))
        // two apps on the same store object: the same data, the same epoch, each its own cache
        framework = await serve({ store, readFastPath: false })
        // warm both caches with every representation the table asks for
        for (const path of [...TARGETS.map((t) => t.path), '/persons/abc', '/persons?limit=2&after=p2']) {
          const seen = await current(fast, path)
          assert.deepEqual(await current(framework, path), seen)
          validators.set(path, seen)
        }
      })

      after(async () => {
        await framework.app.close()
        await stopFresh(database, store, fast)
      })

      for (const target of TARGETS) {
        describe(`for ${target.name} (${target.path})`, () => {
          for (const precondition of PRECONDITIONS) {
            it(`with ${precondition.name}: ${precondition.status}`, async () => {
              const now = validators.get(target.path)!
              const headers = precondition.headers(now)
              for (const method of ['GET', 'HEAD']) {
                const what = `${method} ${target.path} ${JSON.stringify(headers)}`
                const answered = await send(fast, method, target.path, headers)
                const reference = await send(framework, method, target.path, headers)
                assert.equal(reference.reachedFastify, true, `${what}: readFastPath: false must route every request`)
                assert.equal(answered.answer.status, precondition.status, what)
                assertSameAnswer(answered.answer, reference.answer, what)
                // a 304, and a 200 whose bytes are cached, never reach Fastify; a 412 is its problem
                assert.equal(answered.reachedFastify, precondition.status === 412, `${what}: reached Fastify`)
                const { answer } = answered
                if (answer.status === 304) {
                  // RFC 9110 §15.4.5: the validators, no content, and nothing that describes content
                  // (nor the security fields: security-headers.ts says why)
                  assert.deepEqual(fieldNamesBesideConnection(answer.headers), NOT_MODIFIED_FIELD_NAMES, `${what}: the 304's fields`)
                  assert.equal(answer.headers.get('etag'), now.etag, what)
                  assert.equal(answer.headers.get('last-modified'), now.lastModified, what)
                  assert.equal(answer.headers.get('cache-control'), 'no-cache', what)
                  assert.equal(answer.headers.has('content-type'), false, `${what}: Content-Type on a 304`)
                  assert.equal(answer.headers.has('content-length'), false, `${what}: Content-Length on a 304`)
                  assert.equal(answer.body.length, 0, `${what}: a body on a 304`)
                } else {
                  assertSecurityHeaders(answer, what)
                }
                if (answer.status === 200) {
                  assert.equal(answer.headers.get('etag'), now.etag, what)
                  // HEAD: no content, and the Content-Length of the GET's
                  assert.equal(answer.headers.get('content-length'), String(now.body.length), what)
                  assert.ok(answer.body.equals(method === 'HEAD' ? Buffer.alloc(0) : now.body), `${what}: body`)
                }
              }
            })
          }
        })
      }

      it('sends the Link to the next page on the fast path too', async () => {
        const first = await send(fast, 'GET', '/persons?limit=2')
        assert.equal(first.reachedFastify, false)
        assert.match(first.answer.headers.get('link') ?? '', /^<\/persons\?limit=2&after=p1>; rel="next", <\/persons\?since=[^>]+>; rel="changes"$/)
        const later = await send(fast, 'HEAD', '/persons?limit=0002&after=p2')
        assert.equal(later.reachedFastify, false)
        assert.match(later.answer.headers.get('link') ?? '', /^<\/persons\?limit=2&after=p4>; rel="next", <\/persons\?since=[^>]+>; rel="changes"$/)
      })

      it('answers pipelined requests in order, fast answers behind routed ones included', async () => {
        const p3 = validators.get('/persons/p3')!
        const page = validators.get('/persons?limit=2')!
        const requests: readonly [string, string, Record<string, string>][] = [
          ['GET', '/persons/nobody', {}],
          ['GET', '/persons/p3', { 'if-none-match': p3.etag }],
          ['GET', '/persons?limit=0', {}],
          ['GET', '/persons?limit=2', {}],
          ['GET', '/persons/p3', { 'if-match': '"stale"' }],
          ['HEAD', '/persons?limit=2', { 'if-none-match': '"stale"' }],
          ['GET', '/persons/p3', {}],
          ['GET', '/persons?limit=2', { 'if-none-match': page.etag }],
        ]
        const connection = await KeepAliveConnection.open(fast.baseUrl)
        try {
          // all written at once: Node parses the later requests while the earlier ones are in Fastify
          for (const [method, path, headers] of requests) connection.write(method, path, headers)
          for (const [method, path, headers] of requests) {
            const answer = await connection.read(method)
            const { answer: expected } = await send(framework, method, path, headers)
            const what = `${method} ${path} ${JSON.stringify(headers)}`
            assert.equal(answer.status, expected.status, what)
            assert.equal(answer.headers.get('etag'), expected.headers.get('etag'), what)
            assert.ok(answer.body.equals(expected.body), what)
          }
        } finally {
          connection.destroy()
        }
      })

      describe('leaves to Fastify, and Fastify answers as before,', () => {
        for (const declined of DECLINED) {
          it(`${declined.name}`, async () => {
            const method = declined.method ?? 'GET'
            const now = declined.validatorsOf === undefined ? undefined : validators.get(declined.validatorsOf)
            const headers = declined.headers?.(now) ?? {}
            const what = `${method} ${declined.path} ${JSON.stringify(headers)}`
            const answered = await send(fast, method, declined.path, headers, declined.chunkedBody)
            const reference = await send(framework, method, declined.path, headers, declined.chunkedBody)
            assert.equal(answered.reachedFastify, true, `${what}: reached Fastify`)
            assert.equal(answered.answer.status, declined.status, `${what}\n${answered.answer.body.toString()}`)
            assertSameAnswer(answered.answer, reference.answer, what)
            if (answered.answer.status === 304) {
              const fields = fieldNamesBesideConnection(answered.answer.headers).filter((name) => name !== 'x-request-id')
              assert.deepEqual(fields, NOT_MODIFIED_FIELD_NAMES, `${what}: the 304's fields`)
            } else {
              assertSecurityHeaders(answered.answer, what)
            }
            if (headers['x-request-id'] !== undefined) assert.equal(answered.answer.headers.get('x-request-id'), headers['x-request-id'])
            if (answered.answer.status === 404) {
              assert.match(answered.answer.headers.get('content-type') ?? '', /^application\/problem\+json/)
            }
          })
        }
      })
    })

    describe('a cold cache', () => {
      let database: TestDatabase
      let store: PersonStore
      let fast: Served

      before(async () => {
        ;({ database, store, fast } = await startFresh(driver, ['c1', 'c2', 'c3']))
      })

      after(async () => stopFresh(database, store, fast))

      it('sends the first GET of a page of a new revision to Fastify, and serves the next one itself', async () => {
        const warm = await current(fast, '/persons?limit=2')
        assert.equal((await send(fast, 'GET', '/persons?limit=2')).reachedFastify, false, 'a warm page')
        const response = await fetch(`${fast.baseUrl}/persons/c3`, {
          method: 'PUT',
          headers: { 'if-match': (await current(fast, '/persons/c3')).etag },
          body: '{"person_name":"Renamed"}',
        })
        await response.arrayBuffer()
        assert.equal(response.status, 200)
        // the write's own answer warmed the cache with the person's new version: that GET is served
        const person = await send(fast, 'GET', '/persons/c3')
        assert.equal(person.reachedFastify, false, 'the written person, cached by the write answer')
        assert.equal(person.answer.headers.get('etag'), response.headers.get('etag'))
        // but no page of the new revision has been read yet
        const cold = await send(fast, 'GET', '/persons?limit=2')
        assert.equal(cold.reachedFastify, true, 'the first GET of the page of the new revision')
        assert.equal(cold.answer.status, 200)
        assert.notEqual(cold.answer.headers.get('etag'), warm.etag)
        const again = await send(fast, 'GET', '/persons?limit=2')
        assert.equal(again.reachedFastify, false, 'the second GET of that page')
        assert.equal(again.answer.headers.get('etag'), cold.answer.headers.get('etag'))
        assert.ok(again.answer.body.equals(cold.answer.body))
      })

      it('sends the first GET of a version written through the store object to Fastify', async () => {
        const before = await current(fast, '/persons/c1')
        const version = (await store.readValidator('c1'))!.version
        const written = mustBeOk(await store.update('c1', 'Written beside HTTP', version)).person
        const cold = await send(fast, 'GET', '/persons/c1')
        assert.equal(cold.reachedFastify, true)
        assert.equal(cold.answer.status, 200)
        assert.notEqual(cold.answer.headers.get('etag'), before.etag)
        assert.equal((JSON.parse(cold.answer.body.toString()) as { person_name: string }).person_name, written.name)
        const again = await send(fast, 'GET', '/persons/c1')
        assert.equal(again.reachedFastify, false)
        assert.ok(again.answer.body.equals(cold.answer.body))
      })

      it('answers a 304 for a version nobody has read a body of yet without Fastify', async () => {
        // a 304 needs the validator only, never the body: a cold cache does not matter to it
        const version = (await store.readValidator('c2'))!.version
        const written = mustBeOk(await store.update('c2', 'Also beside HTTP', version)).person
        const etag = `"${store.epoch}.${written.version.toString(36)}"`
        const revalidated = await send(fast, 'GET', '/persons/c2', { 'if-none-match': etag })
        assert.equal(revalidated.answer.status, 304)
        assert.equal(revalidated.reachedFastify, false)
        assert.equal(revalidated.answer.headers.get('etag'), etag)
      })
    })

    describe('never answers with what a write has replaced', () => {
      let database: TestDatabase
      let store: PersonStore
      let fast: Served

      before(async () => {
        ;({ database, store, fast } = await startFresh(driver, ['f-put', 'f-patch', 'f-delete', 'f-store', 'f-store-delete']))
      })

      after(async () => stopFresh(database, store, fast))

      /** The person's ETag and the page's, each with a 304 proving the fast path holds them. */
      async function warm(id: string): Promise<{ person: string; page: string }> {
        const person = (await current(fast, `/persons/${id}`)).etag
        const page = (await current(fast, '/persons?limit=2')).etag
        for (const [path, etag] of [
          [`/persons/${id}`, person],
          ['/persons?limit=2', page],
        ] as const) {
          const check = await send(fast, 'GET', path, { 'if-none-match': etag })
          assert.equal(check.answer.status, 304)
          assert.equal(check.reachedFastify, false)
        }
        return { person, page }
      }

      /** The page's 304 check with its old ETag is a 200 of a new revision, whose own ETag then answers 304. */
      async function assertPageMoved(oldEtag: string, without?: string): Promise<void> {
        const check = await send(fast, 'GET', '/persons?limit=2', { 'if-none-match': oldEtag })
        assert.equal(check.answer.status, 200)
        const etag = check.answer.headers.get('etag')!
        assert.notEqual(etag, oldEtag)
        if (without !== undefined) {
          const ids = (JSON.parse(check.answer.body.toString()) as { person_id: string }[]).map((p) => p.person_id)
          assert.ok(!ids.includes(without), `${without} is still listed: ${ids.join(', ')}`)
        }
        const revalidated = await send(fast, 'GET', '/persons?limit=2', { 'if-none-match': etag })
        assert.equal(revalidated.answer.status, 304)
        assert.equal(revalidated.reachedFastify, false)
      }

      /** The old ETag's 304 check is a 200 with `etag` and `name`. */
      async function assertPersonMoved(id: string, oldEtag: string, etag: string, name: string): Promise<void> {
        for (const method of ['GET', 'HEAD']) {
          const check = await send(fast, method, `/persons/${id}`, { 'if-none-match': oldEtag })
          assert.equal(check.answer.status, 200, method)
          assert.equal(check.answer.headers.get('etag'), etag, method)
          if (method === 'GET') assert.equal((JSON.parse(check.answer.body.toString()) as { person_name: string }).person_name, name)
        }
      }

      async function write(method: string, id: string, etag: string, body?: string): Promise<Response> {
        const response = await fetch(`${fast.baseUrl}/persons/${id}`, {
          method,
          headers: { 'if-match': etag, 'content-type': method === 'PATCH' ? 'application/merge-patch+json' : 'application/json' },
          body,
        })
        await response.arrayBuffer()
        return response
      }

      it('after a PUT: the old ETag gets a 200 with the new one, and the page a new revision', async () => {
        const old = await warm('f-put')
        const response = await write('PUT', 'f-put', old.person, '{"person_name":"Put"}')
        assert.equal(response.status, 200)
        const etag = response.headers.get('etag')!
        assert.notEqual(etag, old.person)
        await assertPersonMoved('f-put', old.person, etag, 'Put')
        await assertPageMoved(old.page)
      })

      it('after a PATCH: the old ETag gets a 200 with the new one, and the page a new revision', async () => {
        const old = await warm('f-patch')
        const response = await write('PATCH', 'f-patch', old.person, '{"person_name":"Patched"}')
        assert.equal(response.status, 200)
        await assertPersonMoved('f-patch', old.person, response.headers.get('etag')!, 'Patched')
        await assertPageMoved(old.page)
      })

      it('after a DELETE: the old ETag gets a 404, and the page a new revision without the person', async () => {
        const old = await warm('f-delete')
        const response = await write('DELETE', 'f-delete', old.person)
        assert.equal(response.status, 204)
        for (const method of ['GET', 'HEAD']) {
          const check = await send(fast, method, '/persons/f-delete', { 'if-none-match': old.person })
          assert.equal(check.answer.status, 404, method)
        }
        await assertPageMoved(old.page, 'f-delete')
      })

      it('after an update through the store object, not HTTP', async () => {
        const old = await warm('f-store')
        const version = (await store.readValidator('f-store'))!.version
        const written = mustBeOk(await store.update('f-store', 'Stored directly', version)).person
        await assertPersonMoved('f-store', old.person, `"${store.epoch}.${written.version.toString(36)}"`, 'Stored directly')
        await assertPageMoved(old.page)
      })

      it('after a delete through the store object, not HTTP', async () => {
        const old = await warm('f-store-delete')
        const version = (await store.readValidator('f-store-delete'))!.version
        assert.deepEqual(await store.delete('f-store-delete', version), { ok: true })
        const check = await send(fast, 'GET', '/persons/f-store-delete', { 'if-none-match': old.person })
        assert.equal(check.answer.status, 404)
        await assertPageMoved(old.page, 'f-store-delete')
      })
    })

    describe('on a database another store writes to (a shared SQLite file, or PostgreSQL)', () => {
      it("sees the other store's writes on the next 304 check", async () => {
        const database = await driver.createDatabase({ shared: true })
        const mine = await database.openStore()
        const other = await database.openStore()
        const fast = await serve({ store: mine })
        try {
          await createPerson(fast.baseUrl, 's1', 'Mine')
          const person = await current(fast, '/persons/s1')
          const page = await current(fast, '/persons')
          assert.equal((await send(fast, 'GET', '/persons/s1', { 'if-none-match': person.etag })).reachedFastify, false)
          const written: StoredPerson = mustBeOk(await other.update('s1', 'Theirs', (await other.readValidator('s1'))!.version)).person
          const check = await send(fast, 'GET', '/persons/s1', { 'if-none-match': person.etag })
          assert.equal(check.answer.status, 200)
          assert.equal(check.answer.headers.get('etag'), `"${mine.epoch}.${written.version.toString(36)}"`)
          assert.equal((JSON.parse(check.answer.body.toString()) as { person_name: string }).person_name, 'Theirs')
          const pageCheck = await send(fast, 'GET', '/persons', { 'if-none-match': page.etag })
          assert.equal(pageCheck.answer.status, 200)
          assert.notEqual(pageCheck.answer.headers.get('etag'), page.etag)
          // and a person the other store deletes is gone on the next 304 check
          assert.deepEqual(await other.delete('s1', written.version), { ok: true })
          assert.equal((await send(fast, 'GET', '/persons/s1', { 'if-none-match': check.answer.headers.get('etag')! })).answer.status, 404)
        } finally {
          await fast.app.close()
          await mine.close()
          await other.close()
          await database.cleanup()
        }
      })
    })

    describe('is off', () => {
      let database: TestDatabase
      let store: PersonStore

      before(async () => {
        database = await driver.createDatabase()
        store = await database.openStore()
        mustBeOk(await store.create('o1', 'Off'))
      })

      after(async () => {
        await store.close()
        await database.cleanup()
      })

      /**
       * Warms the app's cache, then sends a 304 check, a cached GET and a HEAD of a person and a
       * page with `headers`: every one must reach Fastify. Returns the answers of the person.
       */
      async function assertEveryReadRouted(served: Served, headers: Record<string, string> = {}): Promise<RawResponse[]> {
        const answers: RawResponse[] = []
        for (const path of ['/persons/o1', '/persons?limit=1']) {
          const first = await send(served, 'GET', path, headers)
          assert.equal(first.answer.status, 200, path)
          assert.equal(first.reachedFastify, true)
          const etag = first.answer.headers.get('etag')!
          for (const [method, extra, status] of [
            ['GET', { 'if-none-match': etag }, 304],
            ['GET', {}, 200],
            ['HEAD', {}, 200],
          ] as const) {
            const answered = await send(served, method, path, { ...headers, ...extra })
            assert.equal(answered.answer.status, status, `${method} ${path} ${JSON.stringify(extra)}`)
            assert.equal(answered.reachedFastify, true, `${method} ${path} ${JSON.stringify(extra)} reached Fastify`)
            if (path === '/persons/o1') answers.push(answered.answer)
          }
        }
        return answers
      }

      it('with readFastPath: false', async () => {
        await withServed({ store, readFastPath: false }, async (served) => {
          await assertEveryReadRouted(served)
        })
      })

      it('with logRequests: true, so that every request is logged', async () => {
        await withServed({ store, logRequests: true }, async (served) => {
          await assertEveryReadRouted(served)
        })
      })

      it('with corsOrigins set: every answer carries Vary: Origin, and the allowed origin its CORS fields', async () => {
        await withServed({ store, corsOrigins: [ORIGIN] }, async (served) => {
          for (const answer of await assertEveryReadRouted(served, { origin: ORIGIN })) {
            assert.equal(answer.headers.get('access-control-allow-origin'), ORIGIN)
            assert.match(answer.headers.get('vary') ?? '', /\bOrigin\b/)
            assert.match(answer.headers.get('access-control-expose-headers') ?? '', /\bETag\b/)
          }
          // no Origin: no CORS fields, but still Vary: Origin, which a fast-path answer would lack
          for (const answer of await assertEveryReadRouted(served)) {
            assert.equal(answer.headers.has('access-control-allow-origin'), false)
            assert.match(answer.headers.get('vary') ?? '', /\bOrigin\b/)
          }
        })
      })

      it('with an API token on reads: 401 without it, and with it every read reaches Fastify', async () => {
        await withServed({ store, apiToken: TOKEN, protectReads: true }, async (served) => {
          const denied = await send(served, 'GET', '/persons/o1')
          assert.equal(denied.answer.status, 401)
          assert.equal(denied.answer.headers.get('www-authenticate'), 'Bearer realm="ifmatch"')
          await assertEveryReadRouted(served, { authorization: `Bearer ${TOKEN}` })
          // a 304 check without the token learns nothing either, not even that the ETag is current
          const etag = (await send(served, 'GET', '/persons/o1', { authorization: `Bearer ${TOKEN}` })).answer.headers.get('etag')!
          const probe = await send(served, 'GET', '/persons/o1', { 'if-none-match': etag })
          assert.equal(probe.answer.status, 401)
        })
      })

      it('but not with an API token on writes only: reads stay open, and fast', async () => {
        await withServed({ store, apiToken: TOKEN }, async (served) => {
          const first = await send(served, 'GET', '/persons/o1')
          const check = await send(served, 'GET', '/persons/o1', { 'if-none-match': first.answer.headers.get('etag')! })
          assert.equal(check.answer.status, 304)
          assert.equal(check.reachedFastify, false)
        })
      })
    })

    describe('when the store has gone away', () => {
      it('leaves reads to Fastify, which answers 503, and the process stays up', async () => {
        const database = await driver.createDatabase()
        const store = await database.openStore()
        const fast = await serve({ store })
        try {
          const etag = await createPerson(fast.baseUrl, 'gone', 'Soon unreachable')
          const page = await current(fast, '/persons')
          // a real failure: the database connection is closed under the running app; what the
          // store remembered of the validators is no answer any more
          await store.close()
          for (const [method, path, headers] of [
            ['GET', '/persons/gone', { 'if-none-match': etag }],
            ['GET', '/persons/gone', {}],
            ['HEAD', '/persons/gone', {}],
            ['GET', '/persons', { 'if-none-match': page.etag }],
            ['GET', '/persons', {}],
          ] as const) {
            const answered = await send(fast, method, path, headers)
            const what = `${method} ${path} ${JSON.stringify(headers)}`
            assert.equal(answered.answer.status, 503, what)
            assert.equal(answered.reachedFastify, true, what)
            assert.equal(answered.answer.headers.get('retry-after'), '1', what)
            assertSecurityHeaders(answered.answer, what)
          }
          const health = await send(fast, 'GET', '/healthz')
          assert.equal(health.answer.status, 200)
        } finally {
          await fast.app.close()
          await database.cleanup()
        }
      })
    })

    describe('is counted in /metrics as Fastify counts', () => {
      /**
       * The same requests for both apps: a person and a page read, revalidated and re-read, by GET
       * and HEAD. Returns the body sizes of the person and of the page.
       */
      async function scenario(served: Served): Promise<{ person: number; page: number }> {
        const etag = await createPerson(served.baseUrl, 'm1', 'Counted')
        await createPerson(served.baseUrl, 'm2', 'Also counted')
        const person = await send(served, 'GET', '/persons/m1')
        assert.equal(person.answer.headers.get('etag'), etag)
        for (let i = 0; i < 3; i++) assert.equal((await send(served, 'GET', '/persons/m1', { 'if-none-match': etag })).answer.status, 304)
        assert.equal((await send(served, 'HEAD', '/persons/m1', { 'if-none-match': etag })).answer.status, 304)
        assert.equal((await send(served, 'GET', '/persons/m1', { 'if-none-match': '"other"' })).answer.status, 200)
        assert.equal((await send(served, 'HEAD', '/persons/m1')).answer.status, 200)
        const page = await send(served, 'GET', '/persons?limit=1')
        const pageEtag = page.answer.headers.get('etag')!
        for (let i = 0; i < 2; i++) assert.equal((await send(served, 'GET', '/persons?limit=1', { 'if-none-match': pageEtag })).answer.status, 304)
        assert.equal((await send(served, 'HEAD', '/persons?limit=1', { 'if-modified-since': page.answer.headers.get('last-modified')! })).answer.status, 304)
        return { person: person.answer.body.length, page: page.answer.body.length }
      }

      const COUNTED: readonly [string, Record<string, string>][] = [
        ['ifmatch_http_requests_total', { route: '/persons/:id', method: 'GET', status: '304' }],
        ['ifmatch_http_requests_total', { route: '/persons/:id', method: 'GET', status: '200' }],
        ['ifmatch_http_requests_total', { route: '/persons/:id', method: 'HEAD', status: '304' }],
        ['ifmatch_http_requests_total', { route: '/persons/:id', method: 'HEAD', status: '200' }],
        ['ifmatch_http_requests_total', { route: '/persons', method: 'GET', status: '200' }],
        ['ifmatch_http_requests_total', { route: '/persons', method: 'GET', status: '304' }],
        ['ifmatch_http_requests_total', { route: '/persons', method: 'HEAD', status: '304' }],
        ['ifmatch_http_requests_total', { route: '/persons', method: 'POST', status: '201' }],
        ['ifmatch_conditional_get_requests_total', { outcome: 'not_modified' }],
        ['ifmatch_conditional_get_requests_total', { outcome: 'full' }],
        ['ifmatch_conditional_get_requests_total', { outcome: 'other' }],
        ['ifmatch_conditional_get_not_modified_ratio', {}],
        ['ifmatch_not_modified_bytes_saved_total', {}],
        ['ifmatch_not_modified_unknown_size_total', {}],
      ]

      let metrics: string
      let reference: string
      let sizes: { person: number; page: number }
      let fastReached: number

      before(async () => {
        const databases = [await driver.createDatabase(), await driver.createDatabase()]
        const stores = [await databases[0]!.openStore(), await databases[1]!.openStore()]
        const fast = await serve({ store: stores[0]! })
        const framework = await serve({ store: stores[1]!, readFastPath: false })
        try {
          sizes = await scenario(fast)
          fastReached = fast.reached()
          assert.deepEqual(await scenario(framework), sizes)
          metrics = await (await fetch(`${fast.baseUrl}/metrics`)).text()
          reference = await (await fetch(`${framework.baseUrl}/metrics`)).text()
        } finally {
          await fast.app.close()
          await framework.app.close()
          for (const store of stores) await store.close()
          for (const database of databases) await database.cleanup()
        }
      })

      it('answered all but the writes and the first page read on the fast path', () => {
        // two POSTs and the first GET of the page (the POSTs' answers cached the person)
        assert.equal(fastReached, 3)
      })

      it('counts requests by route pattern, method and status', () => {
        const count = (labels: Record<string, string>): number | undefined => sample(metrics, 'ifmatch_http_requests_total', labels)
        assert.equal(count({ route: '/persons/:id', method: 'GET', status: '304' }), 3)
        assert.equal(count({ route: '/persons/:id', method: 'GET', status: '200' }), 2)
        assert.equal(count({ route: '/persons/:id', method: 'HEAD', status: '304' }), 1)
        assert.equal(count({ route: '/persons/:id', method: 'HEAD', status: '200' }), 1)
        assert.equal(count({ route: '/persons', method: 'GET', status: '200' }), 1)
        assert.equal(count({ route: '/persons', method: 'GET', status: '304' }), 2)
        assert.equal(count({ route: '/persons', method: 'HEAD', status: '304' }), 1)
      })

      it('counts the conditional GETs by outcome, and the share answered 304', () => {
        assert.equal(sample(metrics, 'ifmatch_conditional_get_requests_total', { outcome: 'not_modified' }), 7)
        assert.equal(sample(metrics, 'ifmatch_conditional_get_requests_total', { outcome: 'full' }), 1)
        assert.equal(sample(metrics, 'ifmatch_conditional_get_requests_total', { outcome: 'other' }), 0)
        assert.equal(sample(metrics, 'ifmatch_conditional_get_not_modified_ratio'), 7 / 8)
      })

      it('adds the body size to the bytes saved for every 304 to a GET', () => {
        assert.equal(sample(metrics, 'ifmatch_not_modified_bytes_saved_total'), 3 * sizes.person + 2 * sizes.page)
        assert.equal(sample(metrics, 'ifmatch_not_modified_unknown_size_total'), 0)
      })

      it("gives every one of these samples the value Fastify's path gives it", () => {
        for (const [name, labels] of COUNTED) {
          const value = sample(metrics, name, labels)
          assert.notEqual(value, undefined, `${name} ${JSON.stringify(labels)} is exported`)
          assert.equal(value, sample(reference, name, labels), `${name} ${JSON.stringify(labels)}`)
        }
      })
    })

    describe('while the app is closing', () => {
      it('leaves a request on an open keep-alive connection to Fastify, which answers it with Connection: close', async () => {
        const database = await driver.createDatabase()
        const store = await database.openStore()
        let duringClose: (() => Promise<void>) | undefined
        // preClose hooks run in order: the app's own (which marks it closing) first, then this one,
        // and only after both does Fastify close idle connections: the one below is still open
        const fast = await serve({ store }, (app) =>
          app.addHook('preClose', async () => {
            await duringClose?.()
          }),
        )
        let connection: KeepAliveConnection | undefined
        let closed = false
        try {
          const etag = await createPerson(fast.baseUrl, 'k1', 'Kept alive')
          connection = await KeepAliveConnection.open(fast.baseUrl)
          const before = fast.reached()
          const open = await connection.request('GET', '/persons/k1', { 'if-none-match': etag })
          assert.equal(open.status, 304)
          assert.equal(fast.reached(), before, "a 304 before closing is the fast path's")
          assert.equal(open.headers.get('connection'), 'keep-alive')
          let closing: Answer | undefined
          let reachedWhileClosing = 0
          duringClose = async () => {
            const count = fast.reached()
            closing = await connection!.request('GET', '/persons/k1', { 'if-none-match': etag })
            reachedWhileClosing = fast.reached() - count
          }
          closed = true
          await fast.app.close()
          assert.ok(closing !== undefined, 'the request during close was answered')
          assert.equal(closing.status, 304)
          assert.equal(closing.headers.get('etag'), etag)
          assert.equal(reachedWhileClosing, 1, 'the request during close reached Fastify')
          assert.equal(closing.headers.get('connection'), 'close')
        } finally {
          connection?.destroy()
          if (!closed) await fast.app.close()
          await store.close()
          await database.cleanup()
        }
      })
    })
  })
}

/** An answer read off a keep-alive connection. */
interface Answer {
  readonly status: number
  readonly headers: ReadonlyMap<string, string>
  readonly body: Buffer
}

/** One keep-alive connection, for what arrives on a connection opened earlier, or pipelined. */
class KeepAliveConnection {
  private buffered = Buffer.alloc(0)
  private closed = false
  private wake: (() => void) | undefined

  private constructor(
    private readonly socket: Socket,
    private readonly host: string,
  ) {
    socket.on('data', (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk])
      this.wake?.()
    })
    socket.on('close', () => {
      this.closed = true
      this.wake?.()
    })
  }

  static async open(baseUrl: string): Promise<KeepAliveConnection> {
    const url = new URL(baseUrl)
    const socket = connect(Number(url.port), url.hostname)
    await once(socket, 'connect')
    return new KeepAliveConnection(socket, url.host)
  }

  /** Sends a bodiless request and reads its answer. */
  async request(method: string, path: string, headers: Record<string, string>): Promise<Answer> {
    this.write(method, path, headers)
    return this.read(method)
  }

  /** Sends a bodiless request without waiting for any answer (pipelining). */
  write(method: string, path: string, headers: Record<string, string>): void {
    const lines = [`${method} ${path} HTTP/1.1`, `Host: ${this.host}`, ...Object.entries(headers).map(([n, v]) => `${n}: ${v}`)]
    this.socket.write(`${lines.join('\r\n')}\r\n\r\n`)
  }

  /** Reads the next answer, to a request of `method`: its body, if any, by Content-Length. */
  async read(method: string): Promise<Answer> {
    for (;;) {
      const end = this.buffered.indexOf('\r\n\r\n')
      if (end !== -1) {
        const [statusLine = '', ...fieldLines] = this.buffered.subarray(0, end).toString('latin1').split('\r\n')
        const fields = new Map(
          fieldLines.map((line) => {
            const colon = line.indexOf(':')
            return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()] as const
          }),
        )
        const status = Number(statusLine.split(' ')[1])
        const length = method === 'HEAD' || status === 304 ? 0 : Number(fields.get('content-length') ?? 0)
        if (this.buffered.length >= end + 4 + length) {
          const body = this.buffered.subarray(end + 4, end + 4 + length)
          this.buffered = this.buffered.subarray(end + 4 + length)
          return { status, headers: fields, body }
        }
      }
      if (this.closed) throw new Error('the connection closed before the answer was complete')
      await new Promise<void>((resolve) => {
        this.wake = resolve
      })
    }
  }

  destroy(): void {
    this.socket.destroy()
  }
}

describe('which app options leave the read fast path on', () => {
  // a store whose validator reads are immediate, as far as the classification looks
  const immediate = { immediate: {} } as unknown as PersonStore
  const neutral: Omit<AppOptions, 'store'> = {
    apiToken: 'token',
    cacheBytes: 1024,
    logger: false,
    processMetrics: true,
    tombstoneRetentionMs: 1000,
    changesHeartbeatMs: 500,
  }

  it('classifies every option (the mapped type makes a new option fail to compile until it is)', () => {
    assert.deepEqual(Object.keys(FAST_PATH_ALLOWED).sort(), [
      'apiToken',
      'cacheBytes',
      'changesHeartbeatMs',
      'corsOrigins',
      'logRequests',
      'logger',
      'processMetrics',
      'protectReads',
      'readFastPath',
      'store',
      'tombstoneRetentionMs',
    ])
  })

  it('stays on for options that change no read', () => {
    assert.equal(fastPathAllowed({ store: immediate }), true)
    assert.equal(fastPathAllowed({ store: immediate, ...neutral }), true)
    assert.equal(fastPathAllowed({ store: immediate, apiToken: 'token', protectReads: false }), true)
  })

  for (const [what, options] of [
    ['readFastPath: false', { readFastPath: false }],
    ['logRequests', { logRequests: true }],
    ['a token on reads', { apiToken: 'token', protectReads: true }],
    ['CORS', { corsOrigins: ['https://a.example'] }],
  ] as const) {
    it(`goes off with ${what}`, () => {
      assert.equal(fastPathAllowed({ store: immediate, ...neutral, ...options }), false)
    })
  }

  it('stays on for a store whose validator reads wait on I/O (PostgreSQL): it awaits them', () => {
    assert.equal(fastPathAllowed({ store: {} as unknown as PersonStore }), true)
  })
})
