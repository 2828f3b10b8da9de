/**
 * The precondition matrix of API.md (RFC 9110 §13.2.2 order, RFC 6585 §3) for GET, HEAD, PUT,
 * PATCH and DELETE on a person, and for GET and HEAD on a collection page, over real HTTP against
 * the real server, once per test driver. Every test has a person of its own; after every failed
 * write the stored person is checked to be exactly as it was.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { rawRequest, withoutDate, type RawResponse } from '../helpers/raw-request.js'
import { startServer, type RunningServer } from '../helpers/start-server.js'
import type { Person, Snapshot } from '../helpers/http-answers.js'
import { assertProblem, badRequest, expectedProblems, precondition, STALE, type ExpectedProblem } from '../helpers/stale-problem.js'
import { TEST_DRIVERS } from '../helpers/test-stores.js'

type Method = 'GET' | 'HEAD' | 'PUT' | 'PATCH' | 'DELETE'

const METHODS: readonly Method[] = ['GET', 'HEAD', 'PUT', 'PATCH', 'DELETE']
const IMF_FIXDATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$/
const STRONG_ETAG = /^"[\x21\x23-\x7e\x80-\xff]*"$/
const WEAK_DETAIL =
  'If-Match named the current ETag only in weak form (W/"…"), or held only weak entity tags, and a weak tag never matches for a write' +
  ' (RFC 9110 §13.1.1 uses strong comparison); a proxy or compression may have weakened the ETag.' +
  ' Send the ETag exactly as the server gave it'
// a valid HTTP-date long before any person here was written
const LONG_AGO = 'Sun, 06 Nov 1994 08:49:37 GMT'
const RENAMED: Readonly<Record<'PUT' | 'PATCH', string>> = { PUT: 'Renamed By PUT', PATCH: 'Renamed By PATCH' }

const expected = {
  ...expectedProblems,
  stale: (): ExpectedProblem => precondition(STALE),
  weak: (): ExpectedProblem => precondition(WEAK_DETAIL, STALE),
  modifiedSince: (): ExpectedProblem => precondition('The target was modified after the If-Unmodified-Since date', STALE),
  noneMatch: (): ExpectedProblem => precondition('If-None-Match matched the current ETag'),
  createOnly: (id: string): ExpectedProblem => precondition(`Person with ID ${id} already exists (If-None-Match: * only creates)`),
  required: expectedProblems.preconditionRequired,
  nullName: (): ExpectedProblem => badRequest('invalid-field', 'Invalid person_name: is mandatory and cannot be removed (null)'),
  notMergePatch: (): ExpectedProblem => expectedProblems.notMergePatch('application/json-patch+json'),
}

function isWrite(method: Method): method is 'PUT' | 'PATCH' | 'DELETE' {
  return method === 'PUT' || method === 'PATCH' || method === 'DELETE'
}

function json(value: unknown): string {
  return JSON.stringify(value)
}

/** The bare opaque value of an ETag, as the seed's curl examples send it. */
function unquoted(etag: string): string {
  return etag.replace(/^W\//, '').replace(/^"/, '').replace(/"$/, '')
}

function httpDate(ms: number): string {
  return new Date(ms).toUTCString()
}

/** The same instant as the obsolete asctime-date a recipient must still accept (RFC 9110 §5.6.7). */
function asctimeDate(ms: number): string {
  const [day, , month, year, time] = new Date(ms).toUTCString().split(' ')
  return `${day!.slice(0, 3)} ${month} ${String(new Date(ms).getUTCDate()).padStart(2, ' ')} ${time} ${year}`
}

/** The same instant as the obsolete rfc850-date (RFC 9110 §5.6.7). */
function rfc850Date(ms: number): string {
  const days = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday']
  const date = new Date(ms)
  const [, dd, month, year, time] = date.toUTCString().split(' ')
  return `${days[date.getUTCDay()]}, ${dd}-${month}-${year!.slice(2)} ${time} GMT`
}

/** A 304 has no body and carries the ETag and Last-Modified it was asked about, Cache-Control: no-cache and Date. */
function assert304Fields(response: RawResponse, validators: { readonly etag: string; readonly lastModified: string }): void {
  assert.equal(response.status, 304)
  assert.equal(response.body.length, 0, `a 304 sent ${response.body.length} bytes of body`)
  assert.equal(response.headers.get('etag'), validators.etag)
  assert.equal(response.headers.get('last-modified'), validators.lastModified)
  assert.equal(response.headers.get('cache-control'), 'no-cache')
  assert.match(response.headers.get('date') ?? '', IMF_FIXDATE)
}

/** A 304 has no Content-Type, no Transfer-Encoding, and no Content-Length but the 200's, `full` (RFC 9110 §15.4.5, §8.6). */
function assert304Metadata(response: RawResponse, full: RawResponse): void {
  assert.equal(response.status, 304)
  assert.equal(response.headers.get('content-type'), undefined)
  assert.equal(response.headers.get('transfer-encoding'), undefined)
  const length = response.headers.get('content-length')
  if (length !== undefined) assert.equal(length, full.headers.get('content-length'), `304 Content-Length: ${length}`)
}

for (const driver of TEST_DRIVERS) {
  describe(driver.name, () => {
    let server: RunningServer
    let base: string
    let sequence = 0

    before(async () => {
      server = await startServer({ driver })
      base = server.baseUrl
    })
    after(async () => {
      await server.close()
    })

    /** A request with the body its method needs: PUT a replacement, PATCH a merge patch. */
    function request(method: Method, id: string, headers: Record<string, string> = {}, body?: string): Promise<Response> {
      const init: RequestInit = { method, headers }
      if (method === 'PUT') {
        init.headers = { 'content-type': 'application/json', ...headers }
        init.body = body ?? json({ person_name: RENAMED.PUT })
      } else if (method === 'PATCH') {
        init.headers = { 'content-type': 'application/merge-patch+json', ...headers }
        init.body = body ?? json({ person_name: RENAMED.PATCH })
      }
      return fetch(`${base}/persons/${id}`, init)
    }

    async function snapshot(id: string): Promise<Snapshot> {
      const response = await fetch(`${base}/persons/${id}`)
      assert.equal(response.status, 200, `GET /persons/${id}`)
      return {
        id,
        etag: response.headers.get('etag') ?? '',
        lastModified: response.headers.get('last-modified') ?? '',
        text: await response.text(),
      }
    }

    /** A new person of this test's own. */
    async function freshPerson(): Promise<Snapshot> {
      const id = `c${++sequence}`
      const response = await fetch(`${base}/persons`, { method: 'POST', body: json({ person_id: id, person_name: 'Wim' }) })
      assert.equal(response.status, 201)
      await response.arrayBuffer()
      return snapshot(id)
    }

    /** A person written twice: `stale` is its first ETag, `current` what GET shows now. */
    async function personWithStaleEtag(): Promise<{ stale: string; current: Snapshot }> {
      const first = await freshPerson()
      const response = await request('PUT', first.id, { 'if-match': first.etag }, json({ person_name: 'Wim Again' }))
      assert.equal(response.status, 200)
      await response.arrayBuffer()
      const current = await snapshot(first.id)
      assert.notEqual(current.etag, first.etag)
      return { stale: first.etag, current }
    }

    async function assertUnchanged(before: Snapshot): Promise<void> {
      const now = await snapshot(before.id)
      assert.equal(now.etag, before.etag, 'a failed write changed the ETag')
      assert.equal(now.text, before.text, 'a failed write changed the person')
    }

    /** The request went through: its success answer, and the write took effect. */
    async function assertProceeded(method: Method, response: Response, before: Snapshot): Promise<void> {
      switch (method) {
        case 'GET':
        case 'HEAD':
          assert.equal(response.status, 200)
          assert.equal(response.headers.get('etag'), before.etag)
          assert.equal(response.headers.get('last-modified'), before.lastModified)
          assert.equal(await response.text(), method === 'GET' ? before.text : '')
          return
        case 'PUT':
        case 'PATCH': {
          assert.equal(response.status, 200)
          const etag = response.headers.get('etag') ?? ''
          assert.match(etag, STRONG_ETAG)
          assert.notEqual(etag, before.etag)
          assert.equal(((await response.json()) as Person).person_name, RENAMED[method])
          assert.equal((await snapshot(before.id)).etag, etag)
          return
        }
        case 'DELETE': {
          assert.equal(response.status, 204)
          assert.equal(await response.text(), '')
          const gone = await fetch(`${base}/persons/${before.id}`)
          assert.equal(gone.status, 404)
          await gone.arrayBuffer()
        }
      }
    }

    /** 412 with `problem`; after a write, the person is as it was. */
    async function assertFailed(method: Method, response: Response, before: Snapshot, problem: ExpectedProblem): Promise<void> {
      await assertProblem(response, problem, method)
      await assertUnchanged(before)
    }

    /** A 304 with the validators of `before` and no content (the socket-level check is below). */
    async function assertNotModified(response: Response, before: Snapshot): Promise<void> {
      assert.equal(response.status, 304)
      assert.equal(response.headers.get('etag'), before.etag)
      assert.equal(response.headers.get('last-modified'), before.lastModified)
      assert.equal(response.headers.get('cache-control'), 'no-cache')
      assert.equal(response.headers.get('content-type'), null)
      assert.equal(await response.text(), '')
    }

    for (const method of METHODS) {
      const write = isWrite(method)
      const safe = !write
      // on a write, If-None-Match is only reached past If-Match (else 428 answers first)
      const guard = (p: Snapshot): Record<string, string> => (write ? { 'if-match': p.etag } : {})

      describe(`${method} /persons/:id`, () => {
        describe('with If-Match', () => {
          it('proceeds when it is the current ETag', async () => {
            const p = await freshPerson()
            await assertProceeded(method, await request(method, p.id, { 'if-match': p.etag }), p)
          })

          it("proceeds when it is the current ETag without quotes, as the seed's curl sends it", async () => {
            const p = await freshPerson()
            await assertProceeded(method, await request(method, p.id, { 'if-match': unquoted(p.etag) }), p)
          })

          it('proceeds when it is *', async () => {
            const p = await freshPerson()
            await assertProceeded(method, await request(method, p.id, { 'if-match': '*' }), p)
          })

          it('proceeds when a list holds the current ETag among others', async () => {
            const { stale, current } = await personWithStaleEtag()
            const list = `"someone-else", ${stale} ,${current.etag}`
            await assertProceeded(method, await request(method, current.id, { 'if-match': list }), current)
          })

          it(`answers 412 with the seed's message when it is stale${write ? ', and changes nothing' : ''}`, async () => {
            const { stale, current } = await personWithStaleEtag()
            await assertFailed(method, await request(method, current.id, { 'if-match': stale }), current, expected.stale())
          })

          it('answers 412 whose detail mentions weak when it is the W/ form of the current ETag', async () => {
            // RFC 9110 §13.1.1: If-Match uses strong comparison, so a weak tag never matches
            const p = await freshPerson()
            const response = await request(method, p.id, { 'if-match': `W/${p.etag}` })
            if (method !== 'HEAD') assert.match(((await response.clone().json()) as { detail: string }).detail, /weak/i)
            await assertFailed(method, response, p, expected.weak())
          })

          it('answers 412 whose detail mentions weak when the W/ form of the current ETag stands among stale strong tags', async () => {
            // a proxy weakened the tag it relayed and the client kept an older strong one beside it
            const { stale, current } = await personWithStaleEtag()
            const response = await request(method, current.id, { 'if-match': `${stale}, W/${current.etag}` })
            await assertFailed(method, response, current, expected.weak())
          })

          it('answers 412 when it is malformed (an unterminated quote)', async () => {
            const p = await freshPerson()
            await assertFailed(method, await request(method, p.id, { 'if-match': p.etag.slice(0, -1) }), p, expected.stale())
          })

          it('answers 412 when a list holds the current ETag next to a malformed member', async () => {
            // API.md: a malformed If-Match never matches
            const p = await freshPerson()
            await assertFailed(method, await request(method, p.id, { 'if-match': `${p.etag}, "broken` }), p, expected.stale())
          })

          it('answers 412 when it is empty', async () => {
            const p = await freshPerson()
            await assertFailed(method, await request(method, p.id, { 'if-match': '' }), p, expected.stale())
          })

          it('answers 412 when it is a quoted "*", which is a tag and not the any-form', async () => {
            const p = await freshPerson()
            await assertFailed(method, await request(method, p.id, { 'if-match': '"*"' }), p, expected.stale())
          })

          it('answers 412 (or 400) for a huge list, and changes nothing', async () => {
            // API.md: a huge validator header is a 400 or a plain non-match, never a stall
            const p = await freshPerson()
            const list = Array.from({ length: 1000 }, (_, i) => `"t${i}"`).join(',')
            const response = await request(method, p.id, { 'if-match': `${list},${p.etag}` })
            assert.ok([400, 412].includes(response.status), `answered ${response.status}`)
            await response.arrayBuffer()
            await assertUnchanged(p)
          })
        })

        describe('with If-Unmodified-Since', () => {
          if (safe) {
            it('answers 412 when Last-Modified is later than the date', async () => {
              const p = await freshPerson()
              const earlier = httpDate(Date.parse(p.lastModified) - 1000)
              await assertFailed(method, await request(method, p.id, { 'if-unmodified-since': earlier }), p, expected.modifiedSince())
            })

            it('proceeds when the date equals Last-Modified', async () => {
              const p = await freshPerson()
              await assertProceeded(method, await request(method, p.id, { 'if-unmodified-since': p.lastModified }), p)
            })

            it('proceeds when the date is later than Last-Modified', async () => {
              const p = await freshPerson()
              const later = httpDate(Date.parse(p.lastModified) + 86_400_000)
              await assertProceeded(method, await request(method, p.id, { 'if-unmodified-since': later }), p)
            })

            it('ignores a date that is not a valid HTTP-date', async () => {
              const p = await freshPerson()
              for (const value of ['yesterday', '2000-01-01T00:00:00Z', 'Sun, 31 Feb 1994 08:49:37 GMT']) {
                await assertProceeded(method, await request(method, p.id, { 'if-unmodified-since': value }), p)
              }
            })

            it('is not evaluated when If-Match is present (RFC 9110 §13.2.2 step 2)', async () => {
              const p = await freshPerson()
              await assertProceeded(method, await request(method, p.id, { 'if-match': p.etag, 'if-unmodified-since': LONG_AGO }), p)
            })
          } else {
            it('answers 428 without If-Match even when the date equals Last-Modified: it never stands in for If-Match', async () => {
              const p = await freshPerson()
              await assertFailed(method, await request(method, p.id, { 'if-unmodified-since': p.lastModified }), p, expected.required(method))
            })

            it('answers 428, not 412, without If-Match when the date is earlier', async () => {
              const p = await freshPerson()
              await assertFailed(method, await request(method, p.id, { 'if-unmodified-since': LONG_AGO }), p, expected.required(method))
            })

            it('proceeds with the current If-Match even when the date is earlier: If-Match decides', async () => {
              const p = await freshPerson()
              await assertProceeded(method, await request(method, p.id, { 'if-match': p.etag, 'if-unmodified-since': LONG_AGO }), p)
            })

            it('answers 412 with a stale If-Match even when the date is later', async () => {
              const { stale, current } = await personWithStaleEtag()
              const later = httpDate(Date.parse(current.lastModified) + 86_400_000)
              await assertFailed(method, await request(method, current.id, { 'if-match': stale, 'if-unmodified-since': later }), current, expected.stale())
            })
          }
        })

        describe(write ? 'with If-None-Match and the current If-Match' : 'with If-None-Match', () => {
          const matching: ReadonlyArray<{ name: string; value: (p: Snapshot) => string }> = [
            { name: 'the current ETag', value: (p) => p.etag },
            { name: 'the current ETag without quotes', value: (p) => unquoted(p.etag) },
            // RFC 9110 §13.1.2: If-None-Match uses weak comparison
            { name: 'the W/ form of the current ETag', value: (p) => `W/${p.etag}` },
            { name: 'a list holding the current ETag', value: (p) => `"other", W/"another",${p.etag}` },
            { name: '*', value: () => '*' },
          ]
          for (const row of matching) {
            if (safe) {
              it(`answers 304 when it is ${row.name}`, async () => {
                const p = await freshPerson()
                await assertNotModified(await request(method, p.id, { 'if-none-match': row.value(p) }), p)
              })
            } else {
              it(`answers 412 when it is ${row.name}, and changes nothing`, async () => {
                const p = await freshPerson()
                const problem = method === 'PUT' && row.name === '*' ? expected.createOnly(p.id) : expected.noneMatch()
                await assertFailed(method, await request(method, p.id, { ...guard(p), 'if-none-match': row.value(p) }), p, problem)
              })
            }
          }

          it(`${safe ? 'answers 200' : 'proceeds'} when it holds only a stale ETag`, async () => {
            const { stale, current } = await personWithStaleEtag()
            await assertProceeded(method, await request(method, current.id, { ...guard(current), 'if-none-match': stale }), current)
          })

          it(`${safe ? 'answers 200' : 'proceeds'} when it is a quoted "*", which is a tag and not the any-form`, async () => {
            const p = await freshPerson()
            await assertProceeded(method, await request(method, p.id, { ...guard(p), 'if-none-match': '"*"' }), p)
          })

          if (safe) {
            it('answers 200 (or 400) for a huge list, never a 304 it cannot justify', async () => {
              const p = await freshPerson()
              const list = Array.from({ length: 1000 }, (_, i) => `"t${i}"`).join(',')
              const response = await request(method, p.id, { 'if-none-match': list })
              assert.ok([200, 400].includes(response.status), `answered ${response.status}`)
              await response.arrayBuffer()
            })
          } else {
            it('answers 428, not 412, when it holds the current ETag but If-Match is absent', async () => {
              const p = await freshPerson()
              await assertFailed(method, await request(method, p.id, { 'if-none-match': p.etag }), p, expected.required(method))
            })
          }
        })

        describe('with If-Modified-Since', () => {
          if (safe) {
            it('answers 304 when the date equals Last-Modified', async () => {
              const p = await freshPerson()
              await assertNotModified(await request(method, p.id, { 'if-modified-since': p.lastModified }), p)
            })

            it('answers 304 when the date equals Last-Modified in the obsolete rfc850 and asctime forms', async () => {
              // RFC 9110 §5.6.7: a recipient must accept all three HTTP-date formats
              const p = await freshPerson()
              const ms = Date.parse(p.lastModified)
              for (const value of [rfc850Date(ms), asctimeDate(ms)]) {
                await assertNotModified(await request(method, p.id, { 'if-modified-since': value }), p)
              }
            })

            it('answers 200 when Last-Modified is later than the date', async () => {
              const p = await freshPerson()
              const earlier = httpDate(Date.parse(p.lastModified) - 1000)
              await assertProceeded(method, await request(method, p.id, { 'if-modified-since': earlier }), p)
            })

            it('ignores a date that is not a valid HTTP-date', async () => {
              const p = await freshPerson()
              await assertProceeded(method, await request(method, p.id, { 'if-modified-since': 'not a date' }), p)
            })

            it('is ignored when If-None-Match is present (RFC 9110 §13.2.2 step 4)', async () => {
              const { stale, current } = await personWithStaleEtag()
              const headers = { 'if-none-match': stale, 'if-modified-since': current.lastModified }
              await assertProceeded(method, await request(method, current.id, headers), current)
            })

            it('does not override a matching If-None-Match with an earlier date', async () => {
              const p = await freshPerson()
              await assertNotModified(await request(method, p.id, { 'if-none-match': p.etag, 'if-modified-since': LONG_AGO }), p)
            })
          } else {
            it('is ignored on a write, even when the date equals Last-Modified', async () => {
              // RFC 9110 §13.1.3: If-Modified-Since applies to GET and HEAD only
              const p = await freshPerson()
              await assertProceeded(method, await request(method, p.id, { 'if-match': p.etag, 'if-modified-since': p.lastModified }), p)
            })
          }
        })
      })
    }

    describe('an absent person', () => {
      const headerSets: ReadonlyArray<{ name: string; headers: Record<string, string>; methods?: readonly Method[] }> = [
        { name: 'no precondition', headers: {} },
        { name: 'If-Match: *', headers: { 'if-match': '*' } },
        { name: 'If-Match with some ETag', headers: { 'if-match': '"some-etag"' } },
        { name: 'If-None-Match: *', headers: { 'if-none-match': '*' }, methods: ['GET', 'HEAD', 'PATCH', 'DELETE'] },
        { name: 'If-None-Match with some ETag', headers: { 'if-none-match': '"some-etag"' } },
        { name: 'If-Unmodified-Since', headers: { 'if-unmodified-since': LONG_AGO } },
        { name: 'If-Modified-Since', headers: { 'if-modified-since': httpDate(Date.now() + 86_400_000) } },
      ]
      for (const method of METHODS) {
        for (const set of headerSets) {
          if (set.methods !== undefined && !set.methods.includes(method)) continue
          it(`answers ${method} with ${set.name} 404, whatever the preconditions`, async () => {
            const id = `ghost${++sequence}`
            await assertProblem(await request(method, id, set.headers), expected.notFound(id), method)
            const get = await fetch(`${base}/persons/${id}`)
            assert.equal(get.status, 404)
            await get.arrayBuffer()
          })
        }
      }

      for (const method of ['PUT', 'PATCH'] as const) {
        it(`answers ${method} with a body that is not JSON 404: absence is decided before the body`, async () => {
          const id = `ghost${++sequence}`
          await assertProblem(await request(method, id, { 'if-match': '*' }, '{"person_name": '), expected.notFound(id), method)
        })

        it(`answers ${method} with a body over 64 KiB 404: absence is decided before the body`, async () => {
          const id = `ghost${++sequence}`
          const body = json({ person_name: 'Big', pad: 'x'.repeat(70_000) })
          await assertProblem(await request(method, id, { 'if-match': '*' }, body), expected.notFound(id), method)
        })
      }

      describe('with PUT and If-None-Match: *', () => {
        it('creates it: 201 with Location, a strong ETag, Last-Modified and Cache-Control', async () => {
          const id = `made${++sequence}`
          const response = await request('PUT', id, { 'if-none-match': '*' })
          assert.equal(response.status, 201)
          assert.equal(response.headers.get('location'), `/persons/${id}`)
          const etag = response.headers.get('etag') ?? ''
          assert.match(etag, STRONG_ETAG)
          assert.match(response.headers.get('last-modified') ?? '', IMF_FIXDATE)
          assert.equal(response.headers.get('cache-control'), 'no-cache')
          assert.equal(((await response.json()) as Person).person_name, RENAMED.PUT)
          assert.equal((await snapshot(id)).etag, etag)
        })

        it('answers 400 for a bad body, and creates nothing', async () => {
          const id = `made${++sequence}`
          await assertProblem(await request('PUT', id, { 'if-none-match': '*' }, json({ nickname: 'x' })), expected.nameMandatory(), 'PUT')
          const get = await fetch(`${base}/persons/${id}`)
          assert.equal(get.status, 404)
          await get.arrayBuffer()
        })
      })
    })

    describe('PUT with If-None-Match: * when the id exists', () => {
      it('answers 412 and leaves the stored person unchanged', async () => {
        const p = await freshPerson()
        await assertFailed('PUT', await request('PUT', p.id, { 'if-none-match': '*' }), p, expected.createOnly(p.id))
      })

      it('answers 412 even with If-Unmodified-Since equal to Last-Modified, and changes nothing', async () => {
        const p = await freshPerson()
        const response = await request('PUT', p.id, { 'if-none-match': '*', 'if-unmodified-since': p.lastModified })
        await assertFailed('PUT', response, p, expected.createOnly(p.id))
      })
    })

    describe('the order of answers for a write on an existing person', () => {
      it('answers PUT with a bad body and no If-Match 400, before 428', async () => {
        const p = await freshPerson()
        await assertFailed('PUT', await request('PUT', p.id, {}, '{"person_name": '), p, expected.invalidJson())
      })

      it('answers PATCH with person_name: null and no If-Match 400, before 428', async () => {
        const p = await freshPerson()
        await assertFailed('PATCH', await request('PATCH', p.id, {}, json({ person_name: null })), p, expected.nullName())
      })

      it('answers PATCH with application/json-patch+json and no If-Match 415, before 428', async () => {
        const p = await freshPerson()
        const response = await fetch(`${base}/persons/${p.id}`, {
          method: 'PATCH',
          headers: { 'content-type': 'application/json-patch+json' },
          body: '[]',
        })
        await assertFailed('PATCH', response, p, expected.notMergePatch())
      })

      it('answers PUT with a body over 64 KiB and no If-Match 413, before 428', async () => {
        const p = await freshPerson()
        const body = json({ person_name: 'Big', pad: 'x'.repeat(70_000) })
        await assertFailed('PUT', await request('PUT', p.id, {}, body), p, expected.tooLarge())
      })

      it('answers PUT with a bad body and a stale If-Match 400, before 412', async () => {
        const { stale, current } = await personWithStaleEtag()
        await assertFailed('PUT', await request('PUT', current.id, { 'if-match': stale }, json({})), current, expected.nameMandatory())
      })

      it('answers PATCH with a body over 64 KiB and a stale If-Match 413, before 412', async () => {
        const { stale, current } = await personWithStaleEtag()
        const body = json({ person_name: 'Big', pad: 'x'.repeat(70_000) })
        await assertFailed('PATCH', await request('PATCH', current.id, { 'if-match': stale }, body), current, expected.tooLarge())
      })

      it('answers DELETE with an earlier If-Unmodified-Since and no If-Match 428, before 412', async () => {
        const p = await freshPerson()
        await assertFailed('DELETE', await request('DELETE', p.id, { 'if-unmodified-since': LONG_AGO }), p, expected.required('DELETE'))
      })

      it('answers PATCH with If-None-Match: * and no If-Match 428: only PUT creates', async () => {
        const p = await freshPerson()
        await assertFailed('PATCH', await request('PATCH', p.id, { 'if-none-match': '*' }), p, expected.required('PATCH'))
      })
    })

    describe('a 304 for a person', () => {
      for (const method of ['GET', 'HEAD'] as const) {
        it(`to ${method} has no body and carries ETag, Last-Modified, Cache-Control: no-cache and Date`, async () => {
          const p = await freshPerson()
          const response = await rawRequest(base, method, `/persons/${p.id}`, { 'If-None-Match': p.etag })
          assert304Fields(response, p)
        })

        it(`to ${method} sends no Content-Type, no Transfer-Encoding, and no Content-Length but the 200's`, async () => {
          // RFC 9110 §15.4.5: no representation metadata beyond the listed fields; §8.6: a
          // Content-Length in a 304 must equal the length a 200 would have sent
          const p = await freshPerson()
          const full = await rawRequest(base, 'GET', `/persons/${p.id}`)
          const response = await rawRequest(base, method, `/persons/${p.id}`, { 'If-None-Match': p.etag })
          assert304Metadata(response, full)
        })
      }

      it('to HEAD carries the same headers as the 304 to GET', async () => {
        // API.md: HEAD answers the same status and headers as GET
        const p = await freshPerson()
        const get = await rawRequest(base, 'GET', `/persons/${p.id}`, { 'If-None-Match': p.etag })
        const head = await rawRequest(base, 'HEAD', `/persons/${p.id}`, { 'If-None-Match': p.etag })
        assert.equal(get.status, 304)
        assert.equal(head.status, 304)
        assert.deepEqual(withoutDate(head.headers), withoutDate(get.headers))
      })
    })

    describe('validator fields as they arrive on the wire', () => {
      it('allow a tab as optional white space in a list', async () => {
        const p = await freshPerson()
        const response = await rawRequest(base, 'GET', `/persons/${p.id}`, { 'If-None-Match': `"other",\t${p.etag}` })
        assert.equal(response.status, 304)
      })

      it('combine an If-None-Match split over two field lines into one list (RFC 9110 §5.3)', async () => {
        const p = await freshPerson()
        const response = await rawRequest(base, 'GET', `/persons/${p.id}`, { 'If-None-Match': ['"other"', p.etag] })
        assert.equal(response.status, 304)
      })

      it('combine an If-Match split over two field lines into one list (RFC 9110 §5.3)', async () => {
        const { stale, current } = await personWithStaleEtag()
        const response = await rawRequest(base, 'DELETE', `/persons/${current.id}`, { 'If-Match': [stale, current.etag] })
        assert.equal(response.status, 204)
        const gone = await fetch(`${base}/persons/${current.id}`)
        assert.equal(gone.status, 404)
        await gone.arrayBuffer()
      })

      it('answer 412 to a weak unquoted W/ form of the current ETag in If-Match, and change nothing', async () => {
        const p = await freshPerson()
        const response = await request('DELETE', p.id, { 'if-match': `W/${unquoted(p.etag)}` })
        await assertFailed('DELETE', response, p, expected.weak())
      })
    })

    describe('a collection page (GET /persons?limit=2)', () => {
      let collection: RunningServer
      let c: string
      let added = 0

      before(async () => {
        collection = await startServer({ driver })
        c = collection.baseUrl
        for (const id of ['k1', 'k2', 'k3']) {
          const response = await fetch(`${c}/persons`, { method: 'POST', body: json({ person_id: id, person_name: 'Wim' }) })
          assert.equal(response.status, 201)
        }
      })
      after(async () => {
        await collection.close()
      })

      const PAGE = '/persons?limit=2'

      // identity, as the raw requests below ask for it (fetch would ask for gzip, and a page in
      // gzip has its own ETag)
      const IDENTITY = { 'accept-encoding': 'identity' }

      async function pageSnapshot(): Promise<Snapshot> {
        const response = await fetch(`${c}${PAGE}`, { headers: IDENTITY })
        assert.equal(response.status, 200)
        return {
          id: PAGE,
          etag: response.headers.get('etag') ?? '',
          lastModified: response.headers.get('last-modified') ?? '',
          text: await response.text(),
        }
      }

      /** The page's ETag before a create on another page, and the page now. */
      async function pageWithStaleEtag(): Promise<{ stale: string; current: Snapshot }> {
        const stale = (await pageSnapshot()).etag
        const response = await fetch(`${c}/persons`, { method: 'POST', body: json({ person_id: `z${++added}`, person_name: 'Wim' }) })
        assert.equal(response.status, 201)
        await response.arrayBuffer()
        const current = await pageSnapshot()
        assert.notEqual(current.etag, stale)
        return { stale, current }
      }

      function pageRequest(method: 'GET' | 'HEAD', headers: Record<string, string>): Promise<Response> {
        return fetch(`${c}${PAGE}`, { method, headers: { ...IDENTITY, ...headers } })
      }

      async function assertPage(method: 'GET' | 'HEAD', response: Response, page: Snapshot): Promise<void> {
        assert.equal(response.status, 200)
        assert.equal(response.headers.get('etag'), page.etag)
        assert.equal(response.headers.get('last-modified'), page.lastModified)
        assert.equal(await response.text(), method === 'GET' ? page.text : '')
      }

      for (const method of ['GET', 'HEAD'] as const) {
        describe(method, () => {
          const matching: ReadonlyArray<{ name: string; value: (p: Snapshot) => string }> = [
            { name: 'the page ETag', value: (p) => p.etag },
            { name: 'the page ETag without quotes', value: (p) => unquoted(p.etag) },
            { name: 'the W/ form of the page ETag', value: (p) => `W/${p.etag}` },
            { name: 'a list holding the page ETag', value: (p) => `"x", ${p.etag}` },
            { name: '*', value: () => '*' },
          ]
          for (const row of matching) {
            it(`answers 304 to If-None-Match with ${row.name}`, async () => {
              const page = await pageSnapshot()
              await assertNotModified(await pageRequest(method, { 'if-none-match': row.value(page) }), page)
            })
          }

          it('answers 200 to If-None-Match with a stale page ETag', async () => {
            const { stale, current } = await pageWithStaleEtag()
            await assertPage(method, await pageRequest(method, { 'if-none-match': stale }), current)
          })

          it('answers 200 to If-Match with the page ETag, and to If-Match: *', async () => {
            const page = await pageSnapshot()
            await assertPage(method, await pageRequest(method, { 'if-match': page.etag }), page)
            await assertPage(method, await pageRequest(method, { 'if-match': '*' }), page)
          })

          it('answers 412 to If-Match with a stale page ETag', async () => {
            const { stale } = await pageWithStaleEtag()
            await assertProblem(await pageRequest(method, { 'if-match': stale }), expected.stale(), method)
          })

          it('answers 412 to If-Match with the W/ form of the page ETag, saying weak', async () => {
            const page = await pageSnapshot()
            await assertProblem(await pageRequest(method, { 'if-match': `W/${page.etag}` }), expected.weak(), method)
          })

          it('answers 304 to If-Modified-Since equal to Last-Modified', async () => {
            const page = await pageSnapshot()
            await assertNotModified(await pageRequest(method, { 'if-modified-since': page.lastModified }), page)
          })

          it('answers 200 to If-Modified-Since earlier than Last-Modified', async () => {
            const page = await pageSnapshot()
            await assertPage(method, await pageRequest(method, { 'if-modified-since': LONG_AGO }), page)
          })

          it('ignores If-Modified-Since when If-None-Match is present', async () => {
            const { stale, current } = await pageWithStaleEtag()
            const headers = { 'if-none-match': stale, 'if-modified-since': current.lastModified }
            await assertPage(method, await pageRequest(method, headers), current)
          })

          it('answers 412 to If-Unmodified-Since earlier than Last-Modified', async () => {
            await assertProblem(await pageRequest(method, { 'if-unmodified-since': LONG_AGO }), expected.modifiedSince(), method)
          })

          it('answers 200 to If-Unmodified-Since equal to Last-Modified, or not a date', async () => {
            const page = await pageSnapshot()
            await assertPage(method, await pageRequest(method, { 'if-unmodified-since': page.lastModified }), page)
            await assertPage(method, await pageRequest(method, { 'if-unmodified-since': 'soon' }), page)
          })
        })
      }

      describe('a 304 for it', () => {
        for (const method of ['GET', 'HEAD'] as const) {
          it(`to ${method} has no body and carries ETag, Last-Modified, Cache-Control: no-cache and Date`, async () => {
            const page = await pageSnapshot()
            const response = await rawRequest(c, method, PAGE, { 'If-None-Match': page.etag })
            assert304Fields(response, page)
          })

          it(`to ${method} sends no Content-Type, no Transfer-Encoding, and no Content-Length but the 200's`, async () => {
            const page = await pageSnapshot()
            const full = await rawRequest(c, 'GET', PAGE)
            const response = await rawRequest(c, method, PAGE, { 'If-None-Match': page.etag })
            assert304Metadata(response, full)
          })
        }

        it('to HEAD carries the same headers as the 304 to GET', async () => {
          const page = await pageSnapshot()
          const get = await rawRequest(c, 'GET', PAGE, { 'If-None-Match': page.etag })
          const head = await rawRequest(c, 'HEAD', PAGE, { 'If-None-Match': page.etag })
          assert.equal(get.status, 304)
          assert.equal(head.status, 304)
          assert.deepEqual(withoutDate(head.headers), withoutDate(get.headers))
        })
      })
    })
  })
}
