/**
 * Every endpoint and every error of API.md, over real HTTP against the real server, once per
 * test driver. Preconditions have their own suite (preconditions.test.ts); here a write carries
 * the current If-Match unless the test is about its absence.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import type { Person, PersonSnapshot } from '../helpers/http-answers.js'
import { rawRequest, withoutDate } from '../helpers/raw-request.js'
import { startServer, type RunningServer } from '../helpers/start-server.js'
import { assertProblem, badRequest, expectedProblems, type ExpectedProblem } from '../helpers/stale-problem.js'
import { TEST_DRIVERS } from '../helpers/test-stores.js'

// API.md: change_date is RFC 3339 UTC with milliseconds
const CHANGE_DATE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/
// RFC 9110 §5.6.7: the IMF-fixdate a sender generates
const IMF_FIXDATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$/
// RFC 9110 §8.8.3: a strong entity-tag is a quoted string of etagc, without W/
const STRONG_ETAG = /^"[\x21\x23-\x7e\x80-\xff]*"$/
const JSON_TYPE = /^application\/json(\s*;|$)/
const BODY_LIMIT = 64 * 1024
const PERSON_METHODS = 'GET, HEAD, PUT, PATCH, DELETE'
const COLLECTION_METHODS = 'GET, HEAD, POST'

interface Send {
  readonly headers?: Record<string, string>
  readonly body?: string
}

const expected = {
  ...expectedProblems,
  missingBody: (): ExpectedProblem => badRequest('missing-body', 'Missing JSON data in request'),
  notAnObject: (): ExpectedProblem => badRequest('invalid-json', 'Request body must be a JSON object'),
  idMandatory: (): ExpectedProblem => badRequest('missing-field', 'Person ID is mandatory'),
  invalidField: (field: string, rule: string): ExpectedProblem => badRequest('invalid-field', `Invalid ${field}: ${rule}`),
  invalidQuery: (parameter: string, rule: string): ExpectedProblem => badRequest('invalid-query', `Invalid query parameter ${parameter}: ${rule}`),
  noRoute: (method: string, path: string): ExpectedProblem => ({
    status: 404,
    type: '/problems/not-found',
    title: 'Not Found',
    detail: `No resource at ${method} ${path}`,
  }),
  methodNotAllowed: (method: string, allow: string): ExpectedProblem => ({
    status: 405,
    type: '/problems/method-not-allowed',
    title: 'Method Not Allowed',
    detail: `${method} is not allowed here; allowed: ${allow}`,
  }),
  exists: (id: string): ExpectedProblem => ({
    status: 409,
    type: '/problems/already-exists',
    title: 'Conflict',
    detail: `Person with ID ${id} already exists`,
  }),
}

const ID_RULE = 'must be 1–64 characters of A–Z a–z 0–9 . _ ~ -'
const LIMIT_RULE = 'must be a whole number from 1 to 1000'

function send(base: string, method: string, path: string, options: Send = {}): Promise<Response> {
  return fetch(`${base}${path}`, { method, headers: options.headers, body: options.body })
}

function json(value: unknown): string {
  return JSON.stringify(value)
}

/** Asserts the headers every 200, 201 and 304 for a representation carries (API.md Validators). */
function assertValidators(response: Response): { etag: string; lastModified: string } {
  const etag = response.headers.get('etag') ?? ''
  const lastModified = response.headers.get('last-modified') ?? ''
  assert.match(etag, STRONG_ETAG)
  assert.match(lastModified, IMF_FIXDATE)
  assert.equal(response.headers.get('cache-control'), 'no-cache')
  return { etag, lastModified }
}

/** Asserts change_date's format and that Last-Modified names the same second. */
function assertChangeDate(person: Person, lastModified: string): void {
  assert.match(person.change_date, CHANGE_DATE)
  assert.equal(Date.parse(lastModified), Math.floor(Date.parse(person.change_date) / 1000) * 1000)
}

async function snapshot(base: string, id: string): Promise<PersonSnapshot> {
  const response = await send(base, 'GET', `/persons/${id}`)
  assert.equal(response.status, 200, `GET /persons/${id}`)
  const { etag, lastModified } = assertValidators(response)
  const text = await response.text()
  return { id, etag, lastModified, text, person: JSON.parse(text) as Person }
}

async function create(base: string, id: string, name = 'Wim'): Promise<PersonSnapshot> {
  const response = await send(base, 'POST', '/persons', { body: json({ person_id: id, person_name: name }) })
  assert.equal(response.status, 201, `POST ${id}: ${await response.clone().text()}`)
  await response.arrayBuffer()
  return snapshot(base, id)
}

/** After a failed write: the stored person has the same ETag and the same body. */
async function assertUnchanged(base: string, before: PersonSnapshot): Promise<void> {
  const now = await snapshot(base, before.id)
  assert.equal(now.etag, before.etag)
  assert.equal(now.text, before.text)
}

async function assertAbsent(base: string, id: string): Promise<void> {
  await assertProblem(await send(base, 'GET', `/persons/${id}`), expected.notFound(id))
}

/** A JSON body of exactly `bytes` bytes, padded with an unknown member. */
function bodyOfSize(bytes: number, id: string): string {
  const start = `{"person_id":"${id}","person_name":"Wim","pad":"`
  const end = '"}'
  return start + 'x'.repeat(bytes - start.length - end.length) + end
}

async function readPage(base: string, query: string): Promise<{ ids: string[]; etag: string; link: string | null; response: Response }> {
  const response = await send(base, 'GET', `/persons${query}`)
  assert.equal(response.status, 200)
  assertValidators(response)
  assert.match(response.headers.get('content-type') ?? '', JSON_TYPE)
  const persons = (await response.json()) as Person[]
  return {
    ids: persons.map((p) => p.person_id),
    etag: response.headers.get('etag') ?? '',
    link: response.headers.get('link'),
    response,
  }
}

/** The targets of a `Link` field by relation: rel="next" (more persons follow) and rel="changes". */
function links(link: string | null): Map<string, string> {
  const found = new Map<string, string>()
  if (link === null) return found
  for (const value of link.split(/,\s*(?=<)/)) {
    const match = /^<([^>]+)>;\s*rel="([a-z]+)"$/.exec(value)
    assert.ok(match !== null, `not a Link value: ${value}`)
    found.set(match[2]!, match[1]!)
  }
  return found
}

/**
 * The target of a page's `Link: <…>; rel="next"`, or undefined when it has none. Every page also
 * names the moment it was read with rel="changes" (API.md: the changes feed).
 */
function nextLink(link: string | null): string | undefined {
  const found = links(link)
  assert.match(found.get('changes') ?? '', /^\/persons\?since=[A-Za-z0-9_-]+\.[0-9a-z]+$/, `no rel="changes" in ${link}`)
  assert.deepEqual(
    [...found.keys()].filter((rel) => rel !== 'next' && rel !== 'changes'),
    [],
  )
  return found.get('next')
}

for (const driver of TEST_DRIVERS) {
  describe(driver.name, () => {
    let server: RunningServer
    let base: string
    let sequence = 0
    /** A fresh id per test, so tests never share a person. */
    const newId = (prefix = 'p'): string => `${prefix}${++sequence}`

    before(async () => {
      server = await startServer({ driver })
      base = server.baseUrl
    })
    after(async () => {
      await server.close()
    })

    describe('POST /persons', () => {
      describe('with a valid person', () => {
        it('answers 201 with the person, Location, a strong ETag, Last-Modified and Cache-Control: no-cache', async () => {
          const id = newId()
          const response = await send(base, 'POST', '/persons', {
            headers: { 'content-type': 'application/json' },
            body: json({ person_id: id, person_name: 'Wim' }),
          })
          assert.equal(response.status, 201)
          const { lastModified } = assertValidators(response)
          assert.equal(response.headers.get('location'), `/persons/${id}`)
          assert.match(response.headers.get('content-type') ?? '', JSON_TYPE)
          const person = (await response.json()) as Person
          assert.deepEqual(Object.keys(person).sort(), ['change_date', 'person_id', 'person_name'])
          assert.equal(person.person_id, id)
          assert.equal(person.person_name, 'Wim')
          assertChangeDate(person, lastModified)
        })

        it('returns exactly the ETag and the person that the next GET returns', async () => {
          const id = newId()
          const response = await send(base, 'POST', '/persons', { body: json({ person_id: id, person_name: 'Wim' }) })
          assert.equal(response.status, 201)
          const text = await response.text()
          const now = await snapshot(base, id)
          assert.equal(response.headers.get('etag'), now.etag)
          assert.equal(response.headers.get('last-modified'), now.lastModified)
          assert.deepEqual(JSON.parse(text), now.person)
        })

        it('ignores unknown members and a change_date sent by the client', async () => {
          const id = newId()
          const response = await send(base, 'POST', '/persons', {
            body: json({ person_id: id, person_name: 'Wim', change_date: '1999-01-01T00:00:00.000Z', nickname: 'W', version: 7 }),
          })
          assert.equal(response.status, 201)
          const person = (await response.json()) as Person
          assert.deepEqual(Object.keys(person).sort(), ['change_date', 'person_id', 'person_name'])
          assert.notEqual(person.change_date, '1999-01-01T00:00:00.000Z')
          assert.ok(Date.parse(person.change_date) > Date.parse('2000-01-01T00:00:00.000Z'))
        })

        it('reads the body as JSON whatever its Content-Type says', async () => {
          for (const type of ['application/x-www-form-urlencoded', 'text/plain', 'application/octet-stream', 'not a media type']) {
            const id = newId()
            const response = await send(base, 'POST', '/persons', {
              headers: { 'content-type': type },
              body: json({ person_id: id, person_name: 'Wim' }),
            })
            assert.equal(response.status, 201, `Content-Type: ${type}`)
            await response.arrayBuffer()
          }
        })

        it('reads a chunked body with no Content-Type at all as JSON', async () => {
          const id = newId()
          const response = await rawRequest(base, 'POST', '/persons', {}, json({ person_id: id, person_name: 'Chunked' }))
          assert.equal(response.status, 201)
          assert.equal((JSON.parse(response.body.toString('utf8')) as Person).person_name, 'Chunked')
          assert.equal((await snapshot(base, id)).person.person_name, 'Chunked')
        })

        it('accepts an id of 64 characters drawn from every allowed class', async () => {
          const id = `Az09._~-${'q'.repeat(56)}`
          assert.equal(id.length, 64)
          const response = await send(base, 'POST', '/persons', { body: json({ person_id: id, person_name: 'Wim' }) })
          assert.equal(response.status, 201)
          assert.equal(((await response.json()) as Person).person_id, id)
          assert.equal((await snapshot(base, id)).person.person_id, id)
        })

        it('accepts a name of exactly 200 code points, astral ones included, and keeps it intact', async () => {
          const names = ['a'.repeat(200), '😀'.repeat(200), `${'é'.repeat(100)}${'𝄞'.repeat(100)}`]
          for (const name of names) {
            const id = newId()
            assert.equal([...name].length, 200)
            const response = await send(base, 'POST', '/persons', { body: json({ person_id: id, person_name: name }) })
            assert.equal(response.status, 201)
            assert.equal(((await response.json()) as Person).person_name, name)
            assert.equal((await snapshot(base, id)).person.person_name, name)
          }
        })
      })

      describe('when the id already exists', () => {
        it('answers 409 "Person with ID {id} already exists" and leaves the stored person unchanged', async () => {
          const before = await create(base, newId(), 'First')
          const response = await send(base, 'POST', '/persons', { body: json({ person_id: before.id, person_name: 'Second' }) })
          await assertProblem(response, expected.exists(before.id))
          await assertUnchanged(base, before)
        })
      })

      describe('with a body that is not a valid person', () => {
        const rows: ReadonlyArray<{ name: string; body: string | undefined; problem: ExpectedProblem; id?: string }> = [
          { name: 'for no body at all', body: undefined, problem: expected.missingBody() },
          { name: 'for an empty body', body: '', problem: expected.missingBody() },
          { name: 'for a body that is not JSON', body: '{"person_id": "nj1", ', problem: expected.invalidJson() },
          { name: 'for a JSON array', body: '[{"person_id":"arr1","person_name":"Wim"}]', problem: expected.notAnObject() },
          { name: 'for a JSON string', body: '"Wim"', problem: expected.notAnObject() },
          { name: 'for JSON null', body: 'null', problem: expected.notAnObject() },
          { name: 'for a JSON number', body: '42', problem: expected.notAnObject() },
          { name: 'without person_id', body: json({ person_name: 'Wim' }), problem: expected.idMandatory() },
          { name: 'without person_name', body: json({ person_id: 'nn1' }), problem: expected.nameMandatory(), id: 'nn1' },
          {
            name: 'for a numeric person_id',
            body: '{"person_id": 7, "person_name": "Wim"}',
            problem: expected.invalidField('person_id', 'must be a string'),
            id: '7',
          },
          {
            name: 'for a person_id that is an array',
            body: json({ person_id: ['ai1'], person_name: 'Wim' }),
            problem: expected.invalidField('person_id', 'must be a string'),
            id: 'ai1',
          },
          {
            name: 'for a numeric person_name',
            body: json({ person_id: 'num1', person_name: 42 }),
            problem: expected.invalidField('person_name', 'must be a string'),
            id: 'num1',
          },
          {
            name: 'for a person_name that is an object',
            body: json({ person_id: 'obj1', person_name: { first: 'Wim' } }),
            problem: expected.invalidField('person_name', 'must be a string'),
            id: 'obj1',
          },
          {
            name: 'for a boolean person_name',
            body: json({ person_id: 'bool1', person_name: true }),
            problem: expected.invalidField('person_name', 'must be a string'),
            id: 'bool1',
          },
          {
            name: 'for a person_id with a space',
            body: json({ person_id: 'a b', person_name: 'Wim' }),
            problem: expected.invalidField('person_id', ID_RULE),
          },
          {
            name: 'for a person_id with a slash',
            body: json({ person_id: 'a/b', person_name: 'Wim' }),
            problem: expected.invalidField('person_id', ID_RULE),
          },
          {
            name: 'for a person_id with a non-ASCII letter',
            body: json({ person_id: 'é1', person_name: 'Wim' }),
            problem: expected.invalidField('person_id', ID_RULE),
          },
          {
            name: 'for a person_id of 65 characters',
            body: json({ person_id: 'L'.repeat(65), person_name: 'Wim' }),
            problem: expected.invalidField('person_id', ID_RULE),
            id: 'L'.repeat(65),
          },
          // the seed treats an empty id like a missing one
          { name: 'for an empty person_id', body: json({ person_id: '', person_name: 'Wim' }), problem: expected.idMandatory() },
          {
            name: 'for an empty person_name',
            body: json({ person_id: 'en1', person_name: '' }),
            problem: expected.nameMandatory(),
            id: 'en1',
          },
          {
            name: 'for a person_name of 201 code points',
            body: json({ person_id: 'long1', person_name: 'a'.repeat(201) }),
            problem: expected.invalidField('person_name', 'must be at most 200 Unicode code points'),
            id: 'long1',
          },
          {
            // 201 code points in 402 UTF-16 units: the limit counts code points, not units or bytes
            name: 'for a person_name of 201 astral code points',
            body: json({ person_id: 'long2', person_name: '😀'.repeat(201) }),
            problem: expected.invalidField('person_name', 'must be at most 200 Unicode code points'),
            id: 'long2',
          },
          {
            name: 'for a person_name of 199 letters and 2 astral code points',
            body: json({ person_id: 'long3', person_name: `${'a'.repeat(199)}😀😀` }),
            problem: expected.invalidField('person_name', 'must be at most 200 Unicode code points'),
            id: 'long3',
          },
          {
            name: 'for a person_name with a control character',
            body: json({ person_id: 'ctl1', person_name: 'Wim\u0007' }),
            problem: expected.invalidField('person_name', 'must not contain control characters (U+0000–U+001F, U+007F)'),
            id: 'ctl1',
          },
          {
            name: 'for a person_name with a NUL',
            body: json({ person_id: 'ctl2', person_name: 'W\u0000im' }),
            problem: expected.invalidField('person_name', 'must not contain control characters (U+0000–U+001F, U+007F)'),
            id: 'ctl2',
          },
          {
            name: 'for a person_name with a line feed',
            body: json({ person_id: 'ctl3', person_name: 'Wim\nVan' }),
            problem: expected.invalidField('person_name', 'must not contain control characters (U+0000–U+001F, U+007F)'),
            id: 'ctl3',
          },
          {
            name: 'for a person_name with DEL (U+007F)',
            body: json({ person_id: 'ctl4', person_name: 'Wim\u007F' }),
            problem: expected.invalidField('person_name', 'must not contain control characters (U+0000–U+001F, U+007F)'),
            id: 'ctl4',
          },
          {
            name: 'for a person_name of spaces only',
            body: json({ person_id: 'ws1', person_name: '   ' }),
            problem: expected.invalidField('person_name', 'must not be only white space'),
            id: 'ws1',
          },
          {
            name: 'for a person_name of Unicode white space only',
            body: json({ person_id: 'ws2', person_name: '\u00A0\u2003\u3000' }),
            problem: expected.invalidField('person_name', 'must not be only white space'),
            id: 'ws2',
          },
        ]
        for (const row of rows) {
          it(`answers 400 ${row.name}${row.id === undefined ? '' : ', and creates nothing'}`, async () => {
            await assertProblem(await send(base, 'POST', '/persons', { body: row.body }), row.problem)
            if (row.id !== undefined && /^[A-Za-z0-9._~-]{1,64}$/.test(row.id)) await assertAbsent(base, row.id)
          })
        }
      })

      describe('with a body over 64 KiB', () => {
        it('answers 413 with the limit, and creates nothing', async () => {
          const id = newId('big')
          const body = bodyOfSize(BODY_LIMIT + 1, id)
          assert.equal(Buffer.byteLength(body), BODY_LIMIT + 1)
          await assertProblem(await send(base, 'POST', '/persons', { body }), expected.tooLarge())
          await assertAbsent(base, id)
        })

        it('accepts a body of exactly 64 KiB', async () => {
          const id = newId('big')
          const body = bodyOfSize(BODY_LIMIT, id)
          assert.equal(Buffer.byteLength(body), BODY_LIMIT)
          const response = await send(base, 'POST', '/persons', { body })
          assert.equal(response.status, 201)
          assert.equal(((await response.json()) as Person).person_id, id)
        })
      })
    })

    describe('GET /persons/:id', () => {
      it('answers 200 with the person, its validators and a JSON Content-Type', async () => {
        const id = newId()
        await create(base, id, 'Wim')
        const response = await send(base, 'GET', `/persons/${id}`)
        assert.equal(response.status, 200)
        const { lastModified } = assertValidators(response)
        assert.match(response.headers.get('content-type') ?? '', JSON_TYPE)
        const person = (await response.json()) as Person
        assert.deepEqual({ person_id: person.person_id, person_name: person.person_name }, { person_id: id, person_name: 'Wim' })
        assertChangeDate(person, lastModified)
      })

      describe('for an absent person', () => {
        it('answers 404 "Person with ID {id} not found"', async () => {
          await assertProblem(await send(base, 'GET', '/persons/nobody'), expected.notFound('nobody'))
        })

        it('answers 404 for an id no person can have (65 characters)', async () => {
          const id = 'x'.repeat(65)
          await assertProblem(await send(base, 'GET', `/persons/${id}`), expected.notFound(id))
        })
      })
    })

    describe('HEAD /persons/:id', () => {
      it('answers with the same status and headers as GET, and no body', async () => {
        const id = newId()
        await create(base, id)
        const get = await rawRequest(base, 'GET', `/persons/${id}`)
        const head = await rawRequest(base, 'HEAD', `/persons/${id}`)
        assert.equal(get.status, 200)
        assert.equal(head.status, 200)
        assert.ok(get.body.length > 0)
        assert.equal(head.body.length, 0)
        assert.deepEqual(withoutDate(head.headers), withoutDate(get.headers))
        assert.match(head.headers.get('date') ?? '', IMF_FIXDATE)
      })

      it('answers an absent person with the same 404 status and headers as GET, and no body', async () => {
        const get = await rawRequest(base, 'GET', '/persons/nobody')
        const head = await rawRequest(base, 'HEAD', '/persons/nobody')
        assert.equal(get.status, 404)
        assert.equal(head.status, 404)
        assert.equal(head.body.length, 0)
        assert.deepEqual(withoutDate(head.headers), withoutDate(get.headers))
      })
    })

    describe('PUT /persons/:id', () => {
      describe('with the current If-Match', () => {
        it('answers 200 with the replaced person, and a new ETag that the next GET returns', async () => {
          const before = await create(base, newId(), 'Wim')
          const response = await send(base, 'PUT', `/persons/${before.id}`, {
            headers: { 'if-match': before.etag },
            body: json({ person_name: 'Wim Replaced' }),
          })
          assert.equal(response.status, 200)
          const { etag, lastModified } = assertValidators(response)
          assert.match(response.headers.get('content-type') ?? '', JSON_TYPE)
          assert.notEqual(etag, before.etag)
          const person = (await response.json()) as Person
          assert.equal(person.person_id, before.id)
          assert.equal(person.person_name, 'Wim Replaced')
          assertChangeDate(person, lastModified)
          assert.ok(Date.parse(person.change_date) >= Date.parse(before.person.change_date))
          const now = await snapshot(base, before.id)
          assert.equal(now.etag, etag)
          assert.deepEqual(now.person, person)
        })

        it('accepts a person_id in the body that repeats the one in the URL', async () => {
          const before = await create(base, newId())
          const response = await send(base, 'PUT', `/persons/${before.id}`, {
            headers: { 'if-match': before.etag },
            body: json({ person_id: before.id, person_name: 'Same Id' }),
          })
          assert.equal(response.status, 200)
          assert.equal(((await response.json()) as Person).person_name, 'Same Id')
        })

        it('gives every write a new ETag, even one that restores an earlier name', async () => {
          // API.md: writing A, then B, then A again gives three different ETags (unlike a body hash)
          const first = await create(base, newId(), 'A')
          const etags = [first.etag]
          for (const name of ['B', 'A']) {
            const response = await send(base, 'PUT', `/persons/${first.id}`, {
              headers: { 'if-match': etags.at(-1)! },
              body: json({ person_name: name }),
            })
            assert.equal(response.status, 200)
            etags.push(response.headers.get('etag') ?? '')
            await response.arrayBuffer()
          }
          assert.equal(new Set(etags).size, 3)
        })
      })

      describe('with a person_id in the body that differs from the URL', () => {
        it('answers 400 and leaves the stored person unchanged', async () => {
          const before = await create(base, newId())
          const response = await send(base, 'PUT', `/persons/${before.id}`, {
            headers: { 'if-match': before.etag },
            body: json({ person_id: 'someone-else', person_name: 'Hijack' }),
          })
          await assertProblem(response, expected.invalidField('person_id', `must match the ID in the URL (${before.id}); an ID cannot be changed`))
          await assertUnchanged(base, before)
          await assertAbsent(base, 'someone-else')
        })
      })

      describe('with a body that is not a valid replacement', () => {
        const rows: ReadonlyArray<{ name: string; body: string; problem: ExpectedProblem }> = [
          { name: 'an empty body', body: '', problem: expected.missingBody() },
          { name: 'a body that is not JSON', body: 'person_name=Wim', problem: expected.invalidJson() },
          { name: 'a JSON array', body: '[]', problem: expected.notAnObject() },
          { name: 'no person_name', body: json({ nickname: 'Wim' }), problem: expected.nameMandatory() },
          {
            name: 'a person_name of 201 code points',
            body: json({ person_name: '𝄞'.repeat(201) }),
            problem: expected.invalidField('person_name', 'must be at most 200 Unicode code points'),
          },
          {
            name: 'a non-string person_id',
            body: json({ person_id: 5, person_name: 'Wim' }),
            problem: expected.invalidField('person_id', 'must be a string'),
          },
        ]
        for (const row of rows) {
          it(`answers 400 for ${row.name}, and leaves the stored person unchanged`, async () => {
            const before = await create(base, newId())
            const response = await send(base, 'PUT', `/persons/${before.id}`, { headers: { 'if-match': before.etag }, body: row.body })
            await assertProblem(response, row.problem)
            await assertUnchanged(base, before)
          })
        }
      })

      describe('without If-Match', () => {
        it('answers 428 saying which header to send, and leaves the stored person unchanged', async () => {
          const before = await create(base, newId())
          const response = await send(base, 'PUT', `/persons/${before.id}`, { body: json({ person_name: 'Blind' }) })
          await assertProblem(response, expected.preconditionRequired('PUT'))
          await assertUnchanged(base, before)
        })
      })

      describe('for an absent person', () => {
        it('answers 404 and creates nothing', async () => {
          const id = newId('ghost')
          const response = await send(base, 'PUT', `/persons/${id}`, { headers: { 'if-match': '*' }, body: json({ person_name: 'Ghost' }) })
          await assertProblem(response, expected.notFound(id))
          await assertAbsent(base, id)
        })
      })

      describe('with If-None-Match: * for an absent person', () => {
        it('creates it: 201 with the person, Location and validators that the next GET returns', async () => {
          const id = newId('made')
          const response = await send(base, 'PUT', `/persons/${id}`, {
            headers: { 'if-none-match': '*' },
            body: json({ person_name: 'Made By Put' }),
          })
          assert.equal(response.status, 201)
          const { etag, lastModified } = assertValidators(response)
          assert.equal(response.headers.get('location'), `/persons/${id}`)
          const person = (await response.json()) as Person
          assert.deepEqual({ person_id: person.person_id, person_name: person.person_name }, { person_id: id, person_name: 'Made By Put' })
          assertChangeDate(person, lastModified)
          assert.equal((await snapshot(base, id)).etag, etag)
        })
      })
    })

    describe('PATCH /persons/:id', () => {
      describe('with application/merge-patch+json and the current If-Match', () => {
        it('answers 200 with the patched name, and a new ETag that the next GET returns', async () => {
          const before = await create(base, newId(), 'Wim')
          const response = await send(base, 'PATCH', `/persons/${before.id}`, {
            headers: { 'if-match': before.etag, 'content-type': 'application/merge-patch+json' },
            body: json({ person_name: 'Wim Patched' }),
          })
          assert.equal(response.status, 200)
          const { etag, lastModified } = assertValidators(response)
          assert.notEqual(etag, before.etag)
          const person = (await response.json()) as Person
          assert.deepEqual({ person_id: person.person_id, person_name: person.person_name }, { person_id: before.id, person_name: 'Wim Patched' })
          assertChangeDate(person, lastModified)
          const now = await snapshot(base, before.id)
          assert.equal(now.etag, etag)
          assert.deepEqual(now.person, person)
        })

        it('keeps the name when the patch has no person_name, and still answers a new ETag', async () => {
          const before = await create(base, newId(), 'Kept')
          const response = await send(base, 'PATCH', `/persons/${before.id}`, {
            headers: { 'if-match': before.etag, 'content-type': 'application/merge-patch+json' },
            body: json({ nickname: 'ignored' }),
          })
          assert.equal(response.status, 200)
          const etag = response.headers.get('etag')
          assert.notEqual(etag, before.etag)
          assert.equal(((await response.json()) as Person).person_name, 'Kept')
          const now = await snapshot(base, before.id)
          assert.equal(now.person.person_name, 'Kept')
          assert.equal(now.etag, etag)
        })
      })

      describe('with person_name: null', () => {
        it('answers 400, as the name is mandatory, and leaves the stored person unchanged', async () => {
          const before = await create(base, newId())
          const response = await send(base, 'PATCH', `/persons/${before.id}`, {
            headers: { 'if-match': before.etag, 'content-type': 'application/merge-patch+json' },
            body: json({ person_name: null }),
          })
          await assertProblem(response, expected.invalidField('person_name', 'is mandatory and cannot be removed (null)'))
          await assertUnchanged(base, before)
        })
      })

      describe('with an invalid person_name', () => {
        it('answers 400 and leaves the stored person unchanged', async () => {
          const before = await create(base, newId())
          const response = await send(base, 'PATCH', `/persons/${before.id}`, {
            headers: { 'if-match': before.etag, 'content-type': 'application/merge-patch+json' },
            body: json({ person_name: '\t' }),
          })
          await assertProblem(response, expected.invalidField('person_name', 'must not contain control characters (U+0000–U+001F, U+007F)'))
          await assertUnchanged(base, before)
        })
      })

      describe('with a JSON body under another content type (curl --data, fetch of a string)', () => {
        it('reads it as a merge patch, as API.md parses bodies as JSON whatever their type', async () => {
          for (const type of ['application/json', 'application/x-www-form-urlencoded', 'text/plain;charset=UTF-8']) {
            const before = await create(base, newId())
            const response = await send(base, 'PATCH', `/persons/${before.id}`, {
              headers: { 'if-match': before.etag, 'content-type': type },
              body: json({ person_name: `Typed ${type.length}` }),
            })
            assert.equal(response.status, 200, type)
            assert.equal(((await response.json()) as Person).person_name, `Typed ${type.length}`)
          }
        })
      })

      describe('with application/json-patch+json', () => {
        it('answers 415 with Accept-Patch, and leaves the stored person unchanged', async () => {
          const before = await create(base, newId())
          const response = await send(base, 'PATCH', `/persons/${before.id}`, {
            headers: { 'if-match': before.etag, 'content-type': 'application/json-patch+json' },
            body: json([{ op: 'replace', path: '/person_name', value: 'Json Patched' }]),
          })
          // RFC 5789 §2.2: a 415 for an unsupported patch format names the supported ones
          assert.equal(response.headers.get('accept-patch'), 'application/merge-patch+json')
          await assertProblem(response, expected.notMergePatch('application/json-patch+json'))
          await assertUnchanged(base, before)
        })
      })

      describe('for an absent person', () => {
        it('answers 404 and creates nothing', async () => {
          const id = newId('ghost')
          const response = await send(base, 'PATCH', `/persons/${id}`, {
            headers: { 'if-match': '*', 'content-type': 'application/merge-patch+json' },
            body: json({ person_name: 'Ghost' }),
          })
          await assertProblem(response, expected.notFound(id))
          await assertAbsent(base, id)
        })
      })

      describe('without If-Match', () => {
        it('answers 428 and leaves the stored person unchanged', async () => {
          const before = await create(base, newId())
          const response = await send(base, 'PATCH', `/persons/${before.id}`, {
            headers: { 'content-type': 'application/merge-patch+json' },
            body: json({ person_name: 'Blind' }),
          })
          await assertProblem(response, expected.preconditionRequired('PATCH'))
          await assertUnchanged(base, before)
        })
      })
    })

    describe('DELETE /persons/:id', () => {
      describe('with the current If-Match', () => {
        it('answers 204 with no body, after which GET answers 404', async () => {
          const before = await create(base, newId())
          const response = await send(base, 'DELETE', `/persons/${before.id}`, { headers: { 'if-match': before.etag } })
          assert.equal(response.status, 204)
          assert.equal(await response.text(), '')
          await assertAbsent(base, before.id)
        })

        it('lets the id be created again with an ETag never given before', async () => {
          // API.md: an ETag is never reused, not after delete and re-create of the same id
          const first = await create(base, newId(), 'Wim')
          const seen = new Set([first.etag])
          const put = await send(base, 'PUT', `/persons/${first.id}`, { headers: { 'if-match': first.etag }, body: json({ person_name: 'Wim' }) })
          assert.equal(put.status, 200)
          seen.add(put.headers.get('etag') ?? '')
          const gone = await send(base, 'DELETE', `/persons/${first.id}`, { headers: { 'if-match': put.headers.get('etag') ?? '' } })
          assert.equal(gone.status, 204)
          const again = await send(base, 'POST', '/persons', { body: json({ person_id: first.id, person_name: 'Wim' }) })
          assert.equal(again.status, 201)
          const etag = again.headers.get('etag') ?? ''
          assert.match(etag, STRONG_ETAG)
          assert.ok(!seen.has(etag), `re-created ${first.id} reuses ${etag}`)
          assert.equal((await snapshot(base, first.id)).etag, etag)
        })
      })

      describe('without If-Match', () => {
        it('answers 428 and leaves the stored person unchanged', async () => {
          const before = await create(base, newId())
          await assertProblem(await send(base, 'DELETE', `/persons/${before.id}`), expected.preconditionRequired('DELETE'))
          await assertUnchanged(base, before)
        })
      })

      describe('for an absent person', () => {
        it('answers 404', async () => {
          const id = newId('ghost')
          await assertProblem(await send(base, 'DELETE', `/persons/${id}`, { headers: { 'if-match': '*' } }), expected.notFound(id))
        })
      })
    })

    describe('a method the resource does not answer', () => {
      const rows: ReadonlyArray<{ method: string; path: string; allow: string }> = [
        { method: 'POST', path: '/persons/x', allow: PERSON_METHODS },
        { method: 'OPTIONS', path: '/persons/x', allow: PERSON_METHODS },
        { method: 'DELETE', path: '/persons', allow: COLLECTION_METHODS },
        { method: 'PUT', path: '/persons', allow: COLLECTION_METHODS },
        { method: 'PATCH', path: '/persons', allow: COLLECTION_METHODS },
        { method: 'OPTIONS', path: '/persons', allow: COLLECTION_METHODS },
      ]
      for (const row of rows) {
        it(`answers ${row.method} ${row.path} with 405 and Allow: ${row.allow}`, async () => {
          const response = await send(base, row.method, row.path, row.method === 'OPTIONS' ? {} : { body: json({ person_id: 'x', person_name: 'Wim' }) })
          assert.equal(response.headers.get('allow'), row.allow)
          await assertProblem(response, expected.methodNotAllowed(row.method, row.allow))
        })
      }

      it('changes nothing when it is a POST to a person', async () => {
        const before = await create(base, newId())
        const response = await send(base, 'POST', `/persons/${before.id}`, { body: json({ person_id: before.id, person_name: 'Other' }) })
        assert.equal(response.status, 405)
        await response.arrayBuffer()
        await assertUnchanged(base, before)
      })
    })

    describe('an unknown path', () => {
      // `/` is the web page now (test/http/web-page.test.ts); its files are served under no other name
      for (const path of ['/index.html', '/person', '/persons/x/y', '/people/1']) {
        it(`answers GET ${path} with 404`, async () => {
          await assertProblem(await send(base, 'GET', path), expected.noRoute('GET', path))
        })
      }
    })

    describe('GET /persons', () => {
      describe('on an empty database', () => {
        let empty: RunningServer
        before(async () => {
          empty = await startServer({ driver })
        })
        after(async () => {
          await empty.close()
        })

        it('answers 200 with an empty array, its validators and no Link to a next page', async () => {
          const page = await readPage(empty.baseUrl, '')
          assert.deepEqual(page.ids, [])
          assert.equal(nextLink(page.link), undefined)
        })
      })

      describe('over ids of every allowed character class', () => {
        let collection: RunningServer
        before(async () => {
          collection = await startServer({ driver })
          // '.' is a valid id that a URL-normalising client cannot GET (RFC 3986 §5.2.4), so POST only
          for (const id of ['B', 'a', '_', '-', '1', '~', '.', 'A', 'b0', 'b', '0', 'Z']) {
            const response = await send(collection.baseUrl, 'POST', '/persons', { body: json({ person_id: id, person_name: 'Wim' }) })
            assert.equal(response.status, 201)
            await response.arrayBuffer()
          }
        })
        after(async () => {
          await collection.close()
        })

        it('lists the persons sorted by person_id in code-point order', async () => {
          const page = await readPage(collection.baseUrl, '')
          assert.deepEqual(page.ids, ['-', '.', '0', '1', 'A', 'B', 'Z', '_', 'a', 'b', 'b0', '~'])
        })

        it('lists every person with all three members', async () => {
          const response = await send(collection.baseUrl, 'GET', '/persons')
          const persons = (await response.json()) as Person[]
          for (const person of persons) {
            assert.deepEqual(Object.keys(person).sort(), ['change_date', 'person_id', 'person_name'])
            assert.equal(person.person_name, 'Wim')
            assert.match(person.change_date, CHANGE_DATE)
          }
        })

        it('pages in the same order with after', async () => {
          assert.deepEqual((await readPage(collection.baseUrl, '?limit=3&after=1')).ids, ['A', 'B', 'Z'])
          assert.deepEqual((await readPage(collection.baseUrl, '?limit=3&after=Z')).ids, ['_', 'a', 'b'])
          assert.deepEqual((await readPage(collection.baseUrl, '?after=b0')).ids, ['~'])
          assert.deepEqual((await readPage(collection.baseUrl, '?after=~')).ids, [])
        })
      })

      describe('with 101 persons', () => {
        let collection: RunningServer
        const ids = Array.from({ length: 101 }, (_, i) => `n${String(i).padStart(3, '0')}`)
        before(async () => {
          collection = await startServer({ driver })
          for (const id of ids) {
            const response = await send(collection.baseUrl, 'POST', '/persons', { body: json({ person_id: id, person_name: 'Wim' }) })
            assert.equal(response.status, 201)
            await response.arrayBuffer()
          }
        })
        after(async () => {
          await collection.close()
        })

        it('answers the first 100 by default, with a Link to the rest', async () => {
          const page = await readPage(collection.baseUrl, '')
          assert.deepEqual(page.ids, ids.slice(0, 100))
          const next = nextLink(page.link)
          assert.ok(next !== undefined, 'no Link on a page with more after it')
          assert.deepEqual((await readPage(collection.baseUrl, next.replace(/^\/persons/, ''))).ids, ['n100'])
        })

        it('answers all 101 with limit=1000, and no Link to a next page', async () => {
          const page = await readPage(collection.baseUrl, '?limit=1000')
          assert.deepEqual(page.ids, ids)
          assert.equal(nextLink(page.link), undefined)
        })

        it('answers exactly one with limit=1, and a Link', async () => {
          const page = await readPage(collection.baseUrl, '?limit=1')
          assert.deepEqual(page.ids, ['n000'])
          assert.notEqual(nextLink(page.link), undefined)
        })

        for (const limit of ['0', '1001', 'abc', '-1', '1.5', '', '1e2', ' 5', '99999']) {
          it(`answers 400 for limit=${JSON.stringify(limit)}`, async () => {
            await assertProblem(
              await send(collection.baseUrl, 'GET', `/persons?limit=${encodeURIComponent(limit)}`),
              expected.invalidQuery('limit', LIMIT_RULE),
            )
          })
        }

        it('answers 400 for limit given twice', async () => {
          await assertProblem(await send(collection.baseUrl, 'GET', '/persons?limit=5&limit=6'), expected.invalidQuery('limit', LIMIT_RULE))
        })

        for (const after of ['a b', 'x'.repeat(65), 'é']) {
          it(`answers 400 for after=${JSON.stringify(after.length > 10 ? `${after.slice(0, 5)}…` : after)}, which no person can have`, async () => {
            await assertProblem(
              await send(collection.baseUrl, 'GET', `/persons?after=${encodeURIComponent(after)}`),
              expected.invalidQuery('after', 'must be one person ID (1–64 characters of A–Z a–z 0–9 . _ ~ -)'),
            )
          })
        }
      })

      describe('paged by limit=2 over 6 persons', () => {
        let collection: RunningServer
        const ids = ['p1', 'p2', 'p3', 'p4', 'p5', 'p6']
        before(async () => {
          collection = await startServer({ driver })
          for (const id of [...ids].reverse()) await create(collection.baseUrl, id)
        })
        after(async () => {
          await collection.close()
        })

        it('carries Link: <…>; rel="next" on a page iff more persons follow it', async () => {
          const first = await readPage(collection.baseUrl, '?limit=2')
          assert.deepEqual(first.ids, ['p1', 'p2'])
          assert.notEqual(nextLink(first.link), undefined)
          const last = await readPage(collection.baseUrl, '?limit=2&after=p4')
          assert.deepEqual(last.ids, ['p5', 'p6'])
          // exactly `limit` persons left: nothing follows, so no Link to a next page
          assert.equal(nextLink(last.link), undefined)
          const partial = await readPage(collection.baseUrl, '?limit=4&after=p3')
          assert.deepEqual(partial.ids, ['p4', 'p5', 'p6'])
          assert.equal(nextLink(partial.link), undefined)
        })

        it('walks every person exactly once, in order, by following Link', async () => {
          let target: string | undefined = '/persons?limit=2'
          const walked: string[] = []
          let pages = 0
          while (target !== undefined) {
            assert.ok(++pages <= 10, 'Link never ends')
            const response = await fetch(new URL(target, collection.baseUrl))
            assert.equal(response.status, 200)
            walked.push(...((await response.json()) as Person[]).map((p) => p.person_id))
            target = nextLink(response.headers.get('link'))
          }
          assert.equal(pages, 3)
          assert.deepEqual(walked, ids)
        })
      })

      describe('a page ETag', () => {
        let collection: RunningServer
        let c: string
        before(async () => {
          collection = await startServer({ driver })
          c = collection.baseUrl
          for (const id of ['e1', 'e2', 'e3', 'e4', 'e5', 'e6']) await create(c, id)
        })
        after(async () => {
          await collection.close()
        })

        async function firstPageEtag(): Promise<string> {
          return (await readPage(c, '?limit=2')).etag
        }

        async function assertNotModified(etag: string): Promise<void> {
          const response = await send(c, 'GET', '/persons?limit=2', { headers: { 'if-none-match': etag } })
          assert.equal(response.status, 304)
          assert.equal(response.headers.get('etag'), etag)
          assert.equal(await response.text(), '')
        }

        it('answers 304 to its own ETag in If-None-Match while nothing changed', async () => {
          const etag = await firstPageEtag()
          await assertNotModified(etag)
          assert.equal(await firstPageEtag(), etag)
        })

        it('differs between pages of the same collection', async () => {
          const first = await readPage(c, '?limit=2')
          const second = await readPage(c, '?limit=2&after=e2')
          const whole = await readPage(c, '')
          assert.equal(new Set([first.etag, second.etag, whole.etag]).size, 3)
        })

        it('changes on the first page when a person is created on a later one', async () => {
          const before = await firstPageEtag()
          await create(c, 'e7')
          const after = await readPage(c, '?limit=2')
          assert.deepEqual(after.ids, ['e1', 'e2'])
          assert.notEqual(after.etag, before)
          const response = await send(c, 'GET', '/persons?limit=2', { headers: { 'if-none-match': before } })
          assert.equal(response.status, 200)
          await response.arrayBuffer()
          await assertNotModified(after.etag)
        })

        it('changes on the first page when a person on a later one is updated', async () => {
          const before = await firstPageEtag()
          const person = await snapshot(c, 'e5')
          const put = await send(c, 'PUT', '/persons/e5', { headers: { 'if-match': person.etag }, body: json({ person_name: 'Changed' }) })
          assert.equal(put.status, 200)
          await put.arrayBuffer()
          assert.notEqual(await firstPageEtag(), before)
        })

        it('changes on the first page when a person on a later one is deleted', async () => {
          // API.md: a delete on page 3 changes page 1's ETag too
          const before = await firstPageEtag()
          const person = await snapshot(c, 'e6')
          const gone = await send(c, 'DELETE', '/persons/e6', { headers: { 'if-match': person.etag } })
          assert.equal(gone.status, 204)
          const after = await readPage(c, '?limit=2')
          assert.deepEqual(after.ids, ['e1', 'e2'])
          assert.notEqual(after.etag, before)
        })

        it('stays the same after a failed write', async () => {
          const before = await firstPageEtag()
          const response = await send(c, 'PUT', '/persons/e1', { headers: { 'if-match': '"stale"' }, body: json({ person_name: 'No' }) })
          assert.equal(response.status, 412)
          await response.arrayBuffer()
          await assertNotModified(before)
        })
      })
    })

    describe('HEAD /persons', () => {
      it('answers with the same status and headers as GET, and no body', async () => {
        await create(base, newId())
        for (const query of ['', '?limit=1']) {
          const get = await rawRequest(base, 'GET', `/persons${query}`)
          const head = await rawRequest(base, 'HEAD', `/persons${query}`)
          assert.equal(get.status, 200)
          assert.equal(head.status, 200)
          assert.ok(get.body.length > 0)
          assert.equal(head.body.length, 0)
          assert.deepEqual(withoutDate(head.headers), withoutDate(get.headers))
        }
      })

      it('answers a bad limit with the same 400 as GET, and no body', async () => {
        const get = await rawRequest(base, 'GET', '/persons?limit=0')
        const head = await rawRequest(base, 'HEAD', '/persons?limit=0')
        assert.equal(get.status, 400)
        assert.equal(head.status, 400)
        assert.equal(head.body.length, 0)
        assert.deepEqual(withoutDate(head.headers), withoutDate(get.headers))
      })
    })
  })
}
