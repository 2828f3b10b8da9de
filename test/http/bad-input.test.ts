/**
 * API.md, Errors: bad input never crashes the process and never changes stored data, and every
 * error is an `application/problem+json` that exposes no stack trace, SQL or file path.
 * Property-based: fast-check throws arbitrary bodies, header values, ids and methods at a real
 * server, and after every failed request the seeded persons must be byte-for-byte unchanged.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { Agent, request, type IncomingHttpHeaders } from 'node:http'
import fc from 'fast-check'
import { assertNoLeak, decodedOrAsIs } from '../helpers/leaks.js'
import { startServer, type RunningServer } from '../helpers/start-server.js'
import { TEST_DRIVERS } from '../helpers/test-stores.js'

const NUM_RUNS = 200
const BODY_LIMIT = 64 * 1024
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const
const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])
const CONDITIONAL_HEADERS = ['if-match', 'if-none-match', 'if-modified-since', 'if-unmodified-since'] as const

const SEEDED = [
  { id: 'seed-1', name: 'Wim' },
  { id: 'Seed_2', name: 'Zoë 🙂 ﷽' },
  { id: 'z~.-3', name: 'x'.repeat(200) },
] as const

interface RawRequest {
  readonly method: string
  readonly path: string
  readonly headers?: Readonly<Record<string, string>>
  readonly body?: string | Buffer
}

interface RawResponse {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly body: string
}

// node:http, not fetch: fetch cannot send a body with GET or HEAD, nor obs-text in a header value
let agent = new Agent({ keepAlive: true, maxSockets: 4 })

function send(baseUrl: string, req: RawRequest, retry = true): Promise<RawResponse> {
  const url = new URL(baseUrl)
  const headers: Record<string, string | number> = { ...req.headers }
  // an explicit length: without one Node sends a GET/DELETE/OPTIONS body unframed
  if (req.body !== undefined) headers['content-length'] = Buffer.byteLength(req.body)
  return new Promise((resolve, reject) => {
    const outgoing = request({ agent, host: url.hostname, port: url.port, method: req.method, path: req.path, headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }))
      res.on('error', reject)
    })
    outgoing.on('error', (error: NodeJS.ErrnoException) => {
      // a kept-alive socket the server closed meanwhile: retry once on a new one, as Node's docs advise
      if (retry && outgoing.reusedSocket && error.code === 'ECONNRESET') resolve(send(baseUrl, req, false))
      else reject(error)
    })
    outgoing.end(req.body)
  })
}

function describeRequest(req: RawRequest, res?: RawResponse): string {
  const body = req.body === undefined ? '' : ` body(${Buffer.byteLength(req.body)} bytes)=${JSON.stringify(String(req.body).slice(0, 120))}`
  const answer = res === undefined ? '' : ` → ${res.status} ${res.headers['content-type'] ?? ''} ${res.body.slice(0, 300)}`
  return `${req.method} ${req.path.slice(0, 200)} ${JSON.stringify(req.headers ?? {}).slice(0, 300)}${body}${answer}`
}

/**
 * The checks every answer to bad input must pass: never a 5xx; a 4xx is a problem with all its
 * members and nothing about the server's insides.
 */
function assertWellFormedAnswer(req: RawRequest, res: RawResponse): void {
  const where = describeRequest(req, res)
  assert.ok(res.status >= 200 && res.status < 500, `a 5xx (or no status) for ${where}`)
  if (res.status === 304 || req.method === 'HEAD') assert.equal(res.body, '', `a body on a 304 or HEAD: ${where}`)
  if (res.status < 400) return
  assert.match(String(res.headers['content-type']), /^application\/problem\+json(;|$)/, `not a problem: ${where}`)
  if (req.method === 'HEAD') return
  let problem: unknown
  assert.doesNotThrow(() => {
    problem = JSON.parse(res.body)
  }, `problem body is not JSON: ${where}`)
  assert.ok(typeof problem === 'object' && problem !== null && !Array.isArray(problem), `problem is not an object: ${where}`)
  const members = problem as Record<string, unknown>
  for (const name of ['type', 'title', 'detail', 'message']) {
    assert.equal(typeof members[name], 'string', `problem member ${name} missing: ${where}`)
    assert.notEqual(members[name], '', `problem member ${name} empty: ${where}`)
  }
  assert.equal(members.status, res.status, `problem status differs from the response's: ${where}`)
  assert.ok(!('stack' in members), `problem carries a stack: ${where}`)
  // only a leak when the request did not carry it itself (an id or a URL is echoed in a 404 detail)
  const carried = [req.path, decodedOrAsIs(req.path), ...Object.values(req.headers ?? {}), String(req.body ?? '')]
  assertNoLeak(res.body, `the problem for ${where}`, carried)
}

function assertPrototypeClean(): void {
  // the server runs in this process: a __proto__ body that reached Object.prototype shows here
  const probe = {} as Record<string, unknown>
  for (const key of ['person_id', 'person_name', 'polluted', 'change_date']) {
    assert.equal(probe[key], undefined, `Object.prototype.${key} was polluted`)
  }
}

// RFC 9110 §5.5: field-value = *field-content; field-vchar = VCHAR / obs-text, with SP and HTAB
// allowed inside (not at the ends, where they are optional white space)
const fieldChar = fc
  .oneof(
    { weight: 8, arbitrary: fc.integer({ min: 0x21, max: 0x7e }) },
    { weight: 2, arbitrary: fc.integer({ min: 0x80, max: 0xff }) },
    { weight: 2, arbitrary: fc.constantFrom(0x20, 0x09) },
  )
  .map((code) => String.fromCharCode(code))
const legalFieldValue = (maxLength = 60): fc.Arbitrary<string> =>
  fc.string({ unit: fieldChar, maxLength }).map((value) => value.replace(/^[ \t]+|[ \t]+$/g, ''))

const httpDate = fc.date({ min: new Date(0), max: new Date(Date.UTC(2200, 0, 1)), noInvalidDate: true }).map((date) => date.toUTCString())

/** A validator header value: raw bytes, or built from a seeded person's current ETag at run time. */
type ValidatorValue =
  | { readonly kind: 'raw'; readonly value: string }
  | { readonly kind: 'current'; readonly seed: number; readonly form: 'quoted' | 'weak' | 'unquoted' | 'listed' }

const validatorValue: fc.Arbitrary<ValidatorValue> = fc.oneof(
  { weight: 4, arbitrary: legalFieldValue().map((value) => ({ kind: 'raw' as const, value })) },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom('*', '""', 'W/""', 'W/', '"', ',', '*, *', '"a", *', 'W/"x", "y"', ' , ,', '"a"b"')
      .map((value) => ({ kind: 'raw' as const, value })),
  },
  { weight: 1, arbitrary: httpDate.map((value) => ({ kind: 'raw' as const, value })) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('current' as const),
      seed: fc.nat({ max: SEEDED.length - 1 }),
      form: fc.constantFrom('quoted' as const, 'weak' as const, 'unquoted' as const, 'listed' as const),
    }),
  },
)

/** A body that is not a valid person, in many shapes, plus now and then a valid one. */
const arbitraryBody: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.string({ unit: 'grapheme-ascii', maxLength: 200 }),
  fc.jsonValue({ maxDepth: 4 }).map((value) => JSON.stringify(value) ?? 'null'),
  // keys that poison careless merges and lookups; built as text so __proto__ is a plain member
  fc
    .array(
      fc.tuple(
        fc.constantFrom('__proto__', 'constructor', 'prototype', 'person_id', 'person_name', 'change_date', 'toString', 'hasOwnProperty', 'valueOf'),
        fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constant({ person_name: 'polluted', polluted: true }), fc.string({ maxLength: 10 })),
      ),
      { maxLength: 6 },
    )
    .map((members) => `{${members.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v) ?? 'null'}`).join(',')}}`),
  // deeply nested arrays and objects, up to and past the body limit
  fc
    .tuple(fc.integer({ min: 1, max: 8_000 }), fc.constantFrom('[', '{"person_name":', '{"__proto__":'))
    .map(([depth, open]) => (open === '[' ? `${'['.repeat(depth)}${']'.repeat(depth)}` : `${open.repeat(depth)}"x"${'}'.repeat(depth)}`)),
  // strings near and over 64 KiB, in 1-, 2- and 4-byte characters
  fc
    .tuple(fc.integer({ min: BODY_LIMIT - 64, max: BODY_LIMIT + 64 }), fc.constantFrom('x', 'é', '🙂', ' '))
    .map(([bytes, unit]) => `{"person_name":"${unit.repeat(Math.ceil(bytes / Buffer.byteLength(unit)))}"}`),
  fc
    .record(
      {
        person_id: fc.oneof(fc.string({ maxLength: 70 }), fc.stringMatching(/^[A-Za-z0-9._~-]{1,64}$/), fc.integer(), fc.constant(null)),
        person_name: fc.oneof(fc.string({ unit: 'binary', maxLength: 210 }), fc.integer(), fc.boolean(), fc.constant(null), fc.constant('  \t ')),
      },
      { requiredKeys: [] },
    )
    .map((value) => JSON.stringify(value)),
  fc.constantFrom(
    '',
    ' ',
    '\n',
    'null',
    '[]',
    '{}',
    '"{}"',
    '{"person_name":""}',
    '{"person_name":"\\u0000"}',
    '{"person_name":"\\ud800"}',
    '{"person_name":"a","person_name":"b"}',
    '\ufeff{"person_name":"bom"}',
  ),
)

/**
 * True when a simply-split list names `etag` (quoted or, as API.md allows, unquoted); a W/ member
 * counts only when `weakToo`. A deliberately plain reading, used only as a test oracle.
 */
function listsTag(list: string, etag: string, weakToo: boolean): boolean {
  const opaque = etag.slice(1, -1)
  return list
    .split(',')
    .map((member) => member.trim())
    .some((member) => {
      const weak = member.startsWith('W/')
      if (weak && !weakToo) return false
      const tag = weak ? member.slice(2) : member
      return tag === etag || tag === opaque
    })
}

/** Percent-encodes every byte, valid UTF-8 or not. */
function percentEncodeBytes(bytes: Uint8Array): string {
  return [...bytes].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('')
}

const arbitraryIdSegment: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'binary', minLength: 1, maxLength: 80 }).map(encodeURIComponent),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 }).map(encodeURIComponent),
  fc.stringMatching(/^[A-Za-z0-9._~-]{1,70}$/),
  fc.constantFrom('.', '..', '...', '~', '-', '%2E', '%2e%2e', '%20', '%2F', 'a%2Fb', '%00', 'seed-1%00', 'SEED-1', 'seed-1%20'),
)

for (const driver of TEST_DRIVERS) {
  describe(driver.name, () => {
    let server: RunningServer
    let base: string
    // the seeded persons (and the collection) as last seen after a successful write
    let baseline: string
    const currentEtags: string[] = []

    async function snapshot(): Promise<string> {
      const parts: unknown[] = []
      for (const [i, seed] of SEEDED.entries()) {
        const res = await send(base, { method: 'GET', path: `/persons/${seed.id}` })
        assert.equal(res.status, 200, `seeded person ${seed.id} is gone: ${res.status} ${res.body}`)
        currentEtags[i] = String(res.headers.etag)
        parts.push([seed.id, res.headers.etag, res.headers['last-modified'], res.body])
      }
      const page = await send(base, { method: 'GET', path: '/persons?limit=1000' })
      assert.equal(page.status, 200)
      parts.push(['collection', page.headers.etag, page.headers['last-modified'], page.body])
      return JSON.stringify(parts)
    }

    /** Puts the seeded persons back if a successful fuzzed DELETE removed one, and keeps fuzz-absent absent. */
    async function seed(): Promise<void> {
      const absent = await send(base, { method: 'GET', path: '/persons/fuzz-absent' })
      if (absent.status === 200) {
        const removed = await send(base, { method: 'DELETE', path: '/persons/fuzz-absent', headers: { 'if-match': String(absent.headers.etag) } })
        assert.equal(removed.status, 204, removed.body)
      }
      for (const person of SEEDED) {
        const res = await send(base, { method: 'GET', path: `/persons/${person.id}` })
        if (res.status === 200) continue
        const created = await send(base, {
          method: 'POST',
          path: '/persons',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ person_id: person.id, person_name: person.name }),
        })
        assert.equal(created.status, 201, created.body)
      }
    }

    /**
     * Sends one request and checks the answer; after a failure (anything but a 2xx write) the
     * stored data must be exactly as before, after a successful write it becomes the new baseline.
     */
    async function probe(req: RawRequest): Promise<RawResponse> {
      let res: RawResponse
      try {
        res = await send(base, req)
      } catch (error) {
        assert.fail(`no answer (${(error as Error).message}) to ${describeRequest(req)}`)
      }
      assertWellFormedAnswer(req, res)
      assertPrototypeClean()
      if (WRITE_METHODS.has(req.method) && res.status >= 200 && res.status < 300) {
        await seed()
        baseline = await snapshot()
      } else {
        assert.equal(await snapshot(), baseline, `stored data changed after ${describeRequest(req, res)}`)
      }
      return res
    }

    function resolveValidator(value: ValidatorValue): string {
      if (value.kind === 'raw') return value.value
      const etag = currentEtags[value.seed]!
      switch (value.form) {
        case 'quoted':
          return etag
        case 'weak':
          return `W/${etag}`
        case 'unquoted':
          return etag.slice(1, -1)
        case 'listed':
          return `"nope", ${etag} , W/"x"`
      }
    }

    before(async () => {
      agent = new Agent({ keepAlive: true, maxSockets: 4 })
      server = await startServer({ driver })
      base = server.baseUrl
      await seed()
      baseline = await snapshot()
    })

    after(async () => {
      agent.destroy()
      await server.close()
    })

    describe('arbitrary request bodies on every write', () => {
      it('never answer 5xx, answer 4xx as problems, and change nothing when they fail', async () => {
        await fc.assert(
          fc.asyncProperty(
            fc.constantFrom('POST /persons', 'PUT seed', 'PATCH seed', 'DELETE seed', 'PUT create-only', 'PUT absent', 'PATCH absent'),
            fc.nat({ max: SEEDED.length - 1 }),
            fc.boolean(),
            fc.constantFrom(undefined, 'application/json', 'application/merge-patch+json', 'application/x-www-form-urlencoded', 'text/plain'),
            arbitraryBody,
            async (target, seedIndex, withIfMatch, contentType, body) => {
              const headers: Record<string, string> = {}
              if (contentType !== undefined) headers['content-type'] = contentType
              const seedId = SEEDED[seedIndex]!.id
              const method = target.split(' ')[0]!
              const path =
                target === 'POST /persons'
                  ? '/persons'
                  : target === 'PUT create-only'
                    ? '/persons/fuzz-created'
                    : target.endsWith('absent')
                      ? '/persons/fuzz-absent'
                      : `/persons/${seedId}`
              if (target === 'PUT create-only') headers['if-none-match'] = '*'
              // with the current ETag the body alone decides between success and 400/413/415
              if (withIfMatch) headers['if-match'] = currentEtags[seedIndex]!
              const res = await probe({ method, path, headers, body })
              if (target === 'PUT absent' || target === 'PATCH absent') {
                // API.md: 404 comes before any judgement of the body
                assert.equal(res.status, 404, describeRequest({ method, path, headers, body }, res))
              }
              if (Buffer.byteLength(body) > BODY_LIMIT && res.status !== 404) {
                assert.equal(res.status, 413, describeRequest({ method, path, headers, body }, res))
              }
            },
          ),
          { numRuns: NUM_RUNS, includeErrorInReport: true },
        )
      })
    })

    describe('bodies at the 64 KiB limit', () => {
      it('are judged as JSON up to 65536 bytes and answered 413 beyond, on POST and PUT', async () => {
        await fc.assert(
          fc.asyncProperty(fc.integer({ min: BODY_LIMIT - 40, max: BODY_LIMIT + 40 }), fc.constantFrom('POST', 'PUT'), async (bytes, method) => {
            const prefix = method === 'POST' ? '{"person_id":"big","person_name":"' : '{"person_name":"'
            const body = `${prefix}${'n'.repeat(bytes - prefix.length - 2)}"}`
            assert.equal(Buffer.byteLength(body), bytes)
            const path = method === 'POST' ? '/persons' : `/persons/${SEEDED[0].id}`
            const headers: Record<string, string> = { 'content-type': 'application/json' }
            if (method === 'PUT') headers['if-match'] = currentEtags[0]!
            const res = await probe({ method, path, headers, body })
            // within the limit the name is far over 200 code points: a 400 naming the field
            const expected = bytes > BODY_LIMIT ? 413 : 400
            assert.equal(res.status, expected, describeRequest({ method, path, headers, body }, res))
            if (expected === 400) assert.match(JSON.parse(res.body).detail, /person_name/)
          }),
          { numRuns: 60, includeErrorInReport: true },
        )
      })
    })

    describe('arbitrary conditional header values', () => {
      it('never answer 5xx, answer 4xx as problems, and change nothing when they fail', async () => {
        await fc.assert(
          fc.asyncProperty(
            fc.constantFrom(...METHODS),
            fc.constantFrom('seed', 'collection', 'absent'),
            fc.nat({ max: SEEDED.length - 1 }),
            fc.record(
              {
                'if-match': validatorValue,
                'if-none-match': validatorValue,
                'if-modified-since': fc.oneof(httpDate, legalFieldValue(40)),
                'if-unmodified-since': fc.oneof(httpDate, legalFieldValue(40)),
              },
              { requiredKeys: [] },
            ),
            fc.boolean(),
            async (method, target, seedIndex, conditional, withBody) => {
              const headers: Record<string, string> = {}
              for (const name of CONDITIONAL_HEADERS) {
                const value = conditional[name]
                if (value !== undefined) headers[name] = typeof value === 'string' ? value : resolveValidator(value)
              }
              const path = target === 'collection' ? '/persons' : target === 'absent' ? '/persons/fuzz-absent' : `/persons/${SEEDED[seedIndex]!.id}`
              const etagBefore = currentEtags[seedIndex]!
              let body: string | undefined
              if (withBody) {
                headers['content-type'] = method === 'PATCH' ? 'application/merge-patch+json' : 'application/json'
                body = JSON.stringify(method === 'POST' ? { person_id: 'fuzz-new', person_name: 'fuzzed' } : { person_name: 'fuzzed' })
              }
              const res = await probe({ method, path, headers, body })
              if (target === 'absent' && method !== 'POST' && method !== 'OPTIONS' && headers['if-none-match']?.trim() !== '*') {
                // API.md precondition step 0: absent is 404 whatever the preconditions
                assert.equal(res.status, 404, describeRequest({ method, path, headers, body }, res))
              }
              if (target === 'seed' && method !== 'POST' && WRITE_METHODS.has(method) && res.status < 300) {
                // RFC 9110 §13.1.1: a write on an existing person goes through only on a strong If-Match
                // (W/ never matches) or *, and §13.1.2: never when If-None-Match matches or is *
                const ifMatch = headers['if-match']
                assert.ok(
                  ifMatch !== undefined && (ifMatch.trim() === '*' || listsTag(ifMatch, etagBefore, false)),
                  `a write went through without a strong If-Match: ${describeRequest({ method, path, headers, body }, res)} (ETag was ${etagBefore})`,
                )
                const ifNoneMatch = headers['if-none-match']
                assert.ok(
                  ifNoneMatch === undefined || (ifNoneMatch.trim() !== '*' && !listsTag(ifNoneMatch, etagBefore, true)),
                  `a write went through despite If-None-Match: ${describeRequest({ method, path, headers, body }, res)} (ETag was ${etagBefore})`,
                )
              }
            },
          ),
          { numRuns: NUM_RUNS, includeErrorInReport: true },
        )
      })
    })

    describe('validator headers of any size', () => {
      // API.md: parsing is bounded; a huge validator header is a 400 or a plain non-match, never a stall
      it('are answered 400 (or 431) or as a plain non-match, as a problem when an error', async () => {
        await fc.assert(
          fc.asyncProperty(
            fc.integer({ min: 1_000, max: 40_000 }),
            fc.constantFrom('if-match', 'if-none-match'),
            fc.constantFrom('GET', 'PUT'),
            async (length, name, method) => {
              const unit = '"aaaaaaaa", '
              const value = unit
                .repeat(Math.ceil(length / unit.length))
                .slice(0, length)
                .replace(/[ ,]+$/, '')
              const headers: Record<string, string> = { [name]: value, 'content-type': 'application/json' }
              const body = method === 'PUT' ? '{"person_name":"huge header"}' : undefined
              const res = await probe({ method, path: `/persons/${SEEDED[1].id}`, headers, body })
              // no listed tag matches: a false If-Match is a 412 (RFC 9110 §13.1.1), a true
              // If-None-Match lets a GET through and leaves a write without If-Match at 428
              const nonMatch = name === 'if-match' ? [412] : method === 'GET' ? [200] : [428]
              // 431 (RFC 6585 §5) is the precise form of API.md's 400 for a head too large to read
              assert.ok(
                [400, 431, ...nonMatch].includes(res.status),
                describeRequest({ method, path: `/persons/${SEEDED[1].id}`, headers: { [name]: `${length} bytes` } }, res),
              )
            },
          ),
          { numRuns: 40, includeErrorInReport: true },
        )
      })
    })

    describe("a request head over Node's 16 KiB default limit", () => {
      // API.md: a huge validator header is a 400 (or RFC 6585's 431) or a plain non-match, and
      // every error is a problem
      it('with a 20 KiB If-None-Match on GET is answered 200, or 400 or 431 as a problem', async () => {
        const value = '"x", '.repeat(4096).slice(0, 20 * 1024)
        const res = await probe({ method: 'GET', path: `/persons/${SEEDED[0].id}`, headers: { 'if-none-match': value } })
        assert.ok([200, 400, 431].includes(res.status), `answered ${res.status} ${String(res.headers['content-type'])} ${res.body}`)
      })

      it('with a 20 KiB URL is answered with a problem', async () => {
        const res = await probe({ method: 'GET', path: `/persons/${'a'.repeat(20 * 1024)}` })
        assert.ok(res.status >= 400)
      })
    })

    describe('arbitrary Content-Type header values', () => {
      // API.md: 404 (absent) comes before 400/413/415 (bad body), whatever the Content-Type
      it('do not turn a PUT to an absent person into anything but 404', async () => {
        for (const contentType of ['', 'json', 'a/b/c', ';', 'application/json, text/plain', 'application/merge-patch+json']) {
          const headers = { 'content-type': contentType, 'if-match': '"x"' }
          const res = await probe({ method: 'PUT', path: '/persons/fuzz-absent', headers, body: '{"person_name":"n"}' })
          assert.equal(res.status, 404, describeRequest({ method: 'PUT', path: '/persons/fuzz-absent', headers }, res))
        }
      })

      it('never answer 5xx, answer 4xx as problems, and change nothing when they fail', async () => {
        await fc.assert(
          fc.asyncProperty(fc.constantFrom('POST', 'PUT', 'PATCH', 'DELETE'), legalFieldValue(), async (method, contentType) => {
            const headers: Record<string, string> = { 'content-type': contentType }
            if (method !== 'POST') headers['if-match'] = '"not-the-current-etag"'
            const body = JSON.stringify({ person_id: method === 'POST' ? SEEDED[0].id : undefined, person_name: 'ct' })
            const path = method === 'POST' ? '/persons' : `/persons/${SEEDED[0].id}`
            const res = await probe({ method, path, headers, body })
            assert.ok(res.status >= 400, describeRequest({ method, path, headers, body }, res))
          }),
          { numRuns: NUM_RUNS, includeErrorInReport: true },
        )
      })

      // API.md: request bodies are parsed as JSON whatever their Content-Type says
      it('do not stop a valid POST from creating, nor a valid PUT from replacing', async () => {
        let n = 0
        await fc.assert(
          fc.asyncProperty(legalFieldValue(), fc.boolean(), async (contentType, usePut) => {
            const headers: Record<string, string> = { 'content-type': contentType }
            let req: RawRequest
            if (usePut) {
              headers['if-match'] = currentEtags[2]!
              req = { method: 'PUT', path: `/persons/${SEEDED[2].id}`, headers, body: JSON.stringify({ person_name: SEEDED[2].name }) }
            } else {
              req = { method: 'POST', path: '/persons', headers, body: JSON.stringify({ person_id: `ct-${n++}`, person_name: 'typed' }) }
            }
            const res = await probe(req)
            assert.equal(res.status, usePut ? 200 : 201, describeRequest(req, res))
          }),
          { numRuns: NUM_RUNS, includeErrorInReport: true },
        )
      })
    })

    describe('arbitrary ids in the path', () => {
      it('never answer 5xx, answer 4xx as problems, and change nothing when they fail', async () => {
        await fc.assert(
          fc.asyncProperty(fc.constantFrom(...METHODS), arbitraryIdSegment, fc.boolean(), async (method, segment, withBody) => {
            const headers: Record<string, string> = {}
            let body: string | undefined
            if (withBody) {
              headers['content-type'] = 'application/json'
              headers['if-none-match'] = '*'
              body = '{"person_name":"by path"}'
            }
            const res = await probe({ method, path: `/persons/${segment}`, headers, body })
            const id = decodedOrAsIs(segment)
            if (method === 'GET' && !/^[A-Za-z0-9._~-]{1,64}$/.test(id)) {
              // an id outside the rule names no person
              assert.ok(res.status === 404 || res.status === 400, describeRequest({ method, path: `/persons/${segment}` }, res))
            }
          }),
          { numRuns: NUM_RUNS, includeErrorInReport: true },
        )
      })

      it('with arbitrary bytes percent-encoded (not always UTF-8) are answered as problems', async () => {
        await fc.assert(
          fc.asyncProperty(fc.constantFrom(...METHODS), fc.uint8Array({ minLength: 1, maxLength: 40 }), async (method, bytes) => {
            await probe({ method, path: `/persons/${percentEncodeBytes(bytes)}` })
          }),
          { numRuns: NUM_RUNS, includeErrorInReport: true },
        )
      })

      it('longer than any id are answered as problems', async () => {
        await fc.assert(
          fc.asyncProperty(
            fc.constantFrom(...METHODS),
            // up to 12 KB of URL: past the router's 2048-character parameter limit, within Node's 16 KiB of head
            fc.integer({ min: 65, max: 2_000 }),
            fc.constantFrom('a', '%41', '%C3%A9'),
            async (method, length, unit) => {
              const res = await probe({ method, path: `/persons/${unit.repeat(length)}` })
              assert.ok(res.status >= 400, describeRequest({ method, path: `/persons/${unit}×${length}` }, res))
            },
          ),
          { numRuns: 60, includeErrorInReport: true },
        )
      })
    })

    describe('arbitrary methods on arbitrary paths', () => {
      it('never answer 5xx, answer 4xx as problems, and change nothing when they fail', async () => {
        await fc.assert(
          fc.asyncProperty(
            fc.constantFrom(...METHODS),
            fc.oneof(
              fc.constantFrom(
                '/',
                '/persons',
                '/persons/',
                '/persons//',
                '/persons/seed-1/',
                '/persons/seed-1/x',
                '/persons?limit=0',
                '/persons?limit=1001',
                '/persons?limit=-1',
                '/persons?limit=1e2',
                '/persons?limit=',
                '/persons?after=',
                '/persons?after=%ff',
                '/persons?after=a&after=b',
                '/persons?limit=2&limit=3',
                '/problems/',
                '/problems/nope',
                '/problems/__proto__',
                '/problems/constructor',
                '/PERSONS',
                '/persons%2Fseed-1',
                '/persons/seed-1?x=%zz',
                '//persons/seed-1',
                '/persons/./seed-1',
              ),
              fc
                .string({ unit: fc.constantFrom('a', '/', '?', '&', '=', '%', '.', '~', '-', '_', '2', 'F', 'persons', 'limit', 'after'), maxLength: 20 })
                .map((tail) => `/persons${tail}`),
            ),
            async (method, path) => {
              await probe({ method, path })
            },
          ),
          { numRuns: NUM_RUNS, includeErrorInReport: true },
        )
      })
    })

    describe('after all of the above', () => {
      it('the server still answers, with every seeded person intact', async () => {
        for (const person of SEEDED) {
          const res = await send(base, { method: 'GET', path: `/persons/${person.id}` })
          assert.equal(res.status, 200)
          assert.equal(JSON.parse(res.body).person_id, person.id)
        }
        assert.equal(await snapshot(), baseline)
        assertPrototypeClean()
      })
    })
  })
}
