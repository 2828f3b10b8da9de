/**
 * Compression and HTTP caches (API.md): pages and feed answers are sent gzip- or br-encoded when
 * Accept-Encoding allows it, each coding with a strong ETag of its own (RFC 9110 §8.8.3) naming
 * exactly one body; a precondition naming the current version in any coding is decided from the
 * validator alone, and the 304 carries the tag of the coding this request gets; every answer for a
 * person, a page or the feed says Vary: Accept-Encoding; a body is compressed once per tag and
 * coding. Spoken over raw HTTP: fetch would add its own Accept-Encoding and undo the coding.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { codedTag, CODINGS, decodeBody, varyNames, type Coding } from '../helpers/decode-body.js'
import { sample } from '../helpers/prometheus.js'
import { rawRequest, withoutDate, type RawResponse } from '../helpers/raw-request.js'
import { spawnServer, stopProcess, type ServerProcess } from '../helpers/spawn-server.js'
import { STALE_PROBLEM } from '../helpers/stale-problem.js'
import { startServer, type RunningServer } from '../helpers/start-server.js'
import { streamHead } from '../helpers/stream-head.js'
import { TEST_DRIVERS, type TestDatabase } from '../helpers/test-stores.js'

const PERSONS = 300
const PAGE = `/persons?limit=${PERSONS}`
const FEED = '/persons?since=0&limit=1000'

/** The Accept-Encoding of a request that wants `coding` (none at all for identity). */
function accepting(coding: Coding | undefined): Record<string, string> {
  return coding === undefined ? {} : { 'accept-encoding': coding }
}

function says(coding: Coding | undefined): string {
  return coding ?? 'identity'
}

// only turns a hang into a failure that names the request, never judges speed
const REQUEST_TIMEOUT_MS = 15_000

/** rawRequest, failing instead of hanging when no answer ends in time. */
function request(baseUrl: string, method: string, path: string, headers: Record<string, string | readonly string[]> = {}, body?: string): Promise<RawResponse> {
  let timer: NodeJS.Timeout | undefined
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${method} ${baseUrl}${path} ${JSON.stringify(headers)}: no answer in ${REQUEST_TIMEOUT_MS} ms`)),
      REQUEST_TIMEOUT_MS,
    )
  })
  return Promise.race([rawRequest(baseUrl, method, path, headers, body), timedOut]).finally(() => clearTimeout(timer))
}

function get(baseUrl: string, path: string, headers: Record<string, string | readonly string[]> = {}): Promise<RawResponse> {
  return request(baseUrl, 'GET', path, headers)
}

/** A write with a JSON body, over raw HTTP like everything else here. */
function write(baseUrl: string, method: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<RawResponse> {
  // rawRequest sends a body chunked, which the server reads as any other
  return request(baseUrl, method, path, { ...headers, 'content-type': 'application/json' }, JSON.stringify(body))
}

function field(response: RawResponse, name: string): string {
  const value = response.headers.get(name)
  assert.ok(value !== undefined, `the answer has no ${name} field`)
  return value
}

/** Asserts the answer is a 200 in `coding` and returns its body decoded. */
function decodedOk(response: RawResponse, coding: Coding | undefined): Buffer {
  assert.equal(response.status, 200, response.body.toString())
  assert.equal(response.headers.get('content-encoding'), coding)
  // RFC 9110 §8.6: the length of the bytes on the wire, which are the coded ones
  assert.equal(field(response, 'content-length'), String(response.body.length))
  return decodeBody(response)
}

function assertStrong(etag: string): void {
  assert.match(etag, /^"[!#-~]+"$/, `${etag} is not a strong entity tag`)
}

function assertVariesOnEncoding(response: RawResponse, what: string): void {
  assert.ok(varyNames(response).includes('accept-encoding'), `${what} (${response.status}) has Vary: ${response.headers.get('vary')}`)
}

async function createPersons(baseUrl: string, count: number, prefix = 'p'): Promise<void> {
  const ids = Array.from({ length: count }, (_, i) => `${prefix}${String(i + 1).padStart(3, '0')}`)
  // a few at a time: quick, and gentle with a machine shared by other suites
  for (let start = 0; start < ids.length; start += 10) {
    await Promise.all(
      ids.slice(start, start + 10).map(async (id, i) => {
        const created = await write(baseUrl, 'POST', '/persons', { person_id: id, person_name: `Person ${id}, number ${start + i} of the register` })
        assert.equal(created.status, 201, created.body.toString())
      }),
    )
  }
}

/** The identity ETag of `path` as it stands, from a plain GET. */
async function identityTag(baseUrl: string, path: string): Promise<string> {
  const plain = await get(baseUrl, path)
  assert.equal(plain.status, 200)
  return field(plain, 'etag')
}

async function metric(baseUrl: string, coding: Coding): Promise<number> {
  const response = await get(baseUrl, '/metrics')
  assert.equal(response.status, 200)
  return sample(response.body.toString(), 'ifmatch_representations_compressed_total', { coding }) ?? 0
}

async function rename(baseUrl: string, id: string, name: string): Promise<string> {
  const etag = await identityTag(baseUrl, `/persons/${id}`)
  const renamed = await write(baseUrl, 'PUT', `/persons/${id}`, { person_name: name }, { 'if-match': etag })
  assert.equal(renamed.status, 200, renamed.body.toString())
  return field(renamed, 'etag')
}

// only turns a hang into a failure, never judges speed
const WAITING_TIMEOUT_MS = 5_000

/** Resolves once the server holds `count` long polls (its metrics say so). */
async function untilPollsHeld(baseUrl: string, count: number): Promise<void> {
  const deadline = Date.now() + WAITING_TIMEOUT_MS
  for (;;) {
    const response = await get(baseUrl, '/metrics')
    if (sample(response.body.toString(), 'ifmatch_changes_waiting', { kind: 'long-poll' }) === count) return
    if (Date.now() > deadline) throw new Error(`the server did not hold ${count} long poll(s) within ${WAITING_TIMEOUT_MS} ms`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

for (const driver of TEST_DRIVERS) {
  describe(`${driver.name}: compressed representations`, () => {
    let server: RunningServer
    let base: string

    before(async () => {
      server = await startServer({ driver })
      base = server.baseUrl
      await createPersons(base, PERSONS)
    })
    after(async () => {
      await server.close()
    })

    describe(`a page of ${PERSONS} persons`, () => {
      for (const coding of CODINGS) {
        it(`is sent ${coding}-encoded, decoding to exactly the bytes of the identity answer`, async () => {
          const identity = await get(base, PAGE)
          const identityBody = decodedOk(identity, undefined)
          assert.equal((JSON.parse(identityBody.toString()) as unknown[]).length, PERSONS)
          const coded = await get(base, PAGE, accepting(coding))
          assert.deepEqual(decodedOk(coded, coding), identityBody)
          // a page of 300 persons is worth compressing: that is why it is sent coded
          assert.ok(coded.body.length < identityBody.length / 2, `${coded.body.length} coded bytes for ${identityBody.length}`)
        })

        it(`carries a strong ${coding} ETag of its own: the identity tag with +${coding}`, async () => {
          const identity = await get(base, PAGE)
          const coded = await get(base, PAGE, accepting(coding))
          const etag = field(coded, 'etag')
          assertStrong(etag)
          assert.notEqual(etag, field(identity, 'etag'))
          assert.equal(etag, codedTag(field(identity, 'etag'), coding))
          // besides the tag, the coding and the length, a coded answer says what the identity one says:
          // the same Last-Modified, Cache-Control, Vary, Link, content type and security fields
          const except = (headers: Record<string, string>): Record<string, string> => {
            const { etag: _etag, 'content-encoding': _coding, 'content-length': _length, ...rest } = headers
            return rest
          }
          assert.deepEqual(except(withoutDate(coded.headers)), except(withoutDate(identity.headers)))
          assert.equal(field(coded, 'cache-control'), 'no-cache')
        })

        it(`sends the same ${coding} bytes and fields again once they are made (and cached)`, async () => {
          // a write first, so that the first answer is made afresh and the next ones are reused
          await rename(base, 'p150', `Renamed for ${coding}`)
          const first = await get(base, PAGE, accepting(coding))
          const again = await get(base, PAGE, accepting(coding))
          const third = await get(base, PAGE, accepting(coding))
          assert.deepEqual(decodedOk(first, coding).toString(), decodeBody(again).toString())
          assert.deepEqual(again.body, first.body)
          assert.deepEqual(third.body, first.body)
          assert.deepEqual(withoutDate(again.headers), withoutDate(first.headers))
          assert.deepEqual(withoutDate(third.headers), withoutDate(first.headers))
        })
      }

      it('answers HEAD with every field GET has (Date aside) and no body, in every coding, made afresh or reused', async () => {
        for (const coding of [undefined, ...CODINGS]) {
          await rename(base, 'p151', `Renamed for HEAD in ${says(coding)}`)
          // HEAD first, while nothing of this version is made yet; then GET; then HEAD again
          const coldHead = await request(base, 'HEAD', PAGE, accepting(coding))
          const got = await get(base, PAGE, accepting(coding))
          const warmHead = await request(base, 'HEAD', PAGE, accepting(coding))
          decodedOk(got, coding)
          for (const head of [coldHead, warmHead]) {
            assert.equal(head.status, 200)
            assert.equal(head.body.length, 0)
            assert.deepEqual(withoutDate(head.headers), withoutDate(got.headers), `HEAD in ${says(coding)}`)
          }
        }
      })
    })

    describe('Accept-Encoding on the wire', () => {
      const rows: ReadonlyArray<{ name: string; value: string | readonly string[] | undefined; gets: Coding | undefined }> = [
        { name: 'no Accept-Encoding', value: undefined, gets: undefined },
        { name: 'an empty Accept-Encoding', value: '', gets: undefined },
        { name: 'identity', value: 'identity', gets: undefined },
        { name: 'gzip', value: 'gzip', gets: 'gzip' },
        { name: 'x-gzip', value: 'x-gzip', gets: 'gzip' },
        { name: 'br', value: 'br', gets: 'br' },
        { name: 'gzip, br', value: 'gzip, br', gets: 'br' },
        { name: 'gzip weighted above br', value: 'br;q=0.4, gzip;q=0.9', gets: 'gzip' },
        { name: 'br;q=0 beside gzip', value: 'br;q=0, gzip', gets: 'gzip' },
        { name: 'br;q=0 alone', value: 'br;q=0', gets: undefined },
        { name: '*', value: '*', gets: 'br' },
        { name: '*;q=0', value: '*;q=0', gets: undefined },
        { name: 'gzip;q=0, *', value: 'gzip;q=0, *', gets: 'br' },
        { name: 'an invalid q', value: 'gzip;q=high', gets: undefined },
        { name: 'GZIP in capitals', value: 'GZIP', gets: 'gzip' },
        { name: 'white space around members', value: ' \tgzip ;q=0.5 , br ; q=0.2 ', gets: 'gzip' },
        { name: 'only codings this service does not send', value: 'deflate, compress', gets: undefined },
        // RFC 9110 §5.3: two field lines are one list
        { name: 'two field lines', value: ['br;q=0', 'gzip;q=0.1'], gets: 'gzip' },
      ]
      for (const row of rows) {
        it(`gets ${says(row.gets)} for ${row.name}`, async () => {
          const identity = await get(base, PAGE)
          const response = await get(base, PAGE, row.value === undefined ? {} : { 'accept-encoding': row.value })
          assert.deepEqual(decodedOk(response, row.gets), identity.body)
          assert.equal(field(response, 'etag'), codedTag(field(identity, 'etag'), row.gets))
        })
      }
    })

    describe('Vary: Accept-Encoding', () => {
      it('is on identity, coded and 304 answers for a page, and on HEAD', async () => {
        for (const coding of [undefined, ...CODINGS]) {
          const ok = await get(base, PAGE, accepting(coding))
          assertVariesOnEncoding(ok, `a page in ${says(coding)}`)
          const head = await request(base, 'HEAD', PAGE, accepting(coding))
          assertVariesOnEncoding(head, `HEAD of a page in ${says(coding)}`)
          const notModified = await get(base, PAGE, { ...accepting(coding), 'if-none-match': field(ok, 'etag') })
          assert.equal(notModified.status, 304)
          assertVariesOnEncoding(notModified, `a 304 for a page in ${says(coding)}`)
        }
      })

      it('is on every 200, 201 and 304 for a person, though a person is never coded', async () => {
        const created = await write(base, 'POST', '/persons', { person_id: 'vary-1', person_name: 'Vera' }, { 'accept-encoding': 'gzip, br' })
        assert.equal(created.status, 201)
        assertVariesOnEncoding(created, 'a 201 for a person')
        for (const coding of [undefined, ...CODINGS]) {
          const ok = await get(base, '/persons/vary-1', accepting(coding))
          assert.equal(ok.status, 200)
          assertVariesOnEncoding(ok, `a person asked for in ${says(coding)}`)
          const notModified = await get(base, '/persons/vary-1', { ...accepting(coding), 'if-none-match': field(ok, 'etag') })
          assert.equal(notModified.status, 304)
          assertVariesOnEncoding(notModified, `a 304 for a person asked for in ${says(coding)}`)
        }
        const replaced = await write(base, 'PUT', '/persons/vary-1', { person_name: 'Vera B' }, { 'if-match': field(created, 'etag') })
        assert.equal(replaced.status, 200)
        assertVariesOnEncoding(replaced, 'a 200 for a PUT')
      })

      it('is on identity, coded and 304 answers of the changes feed, beside Accept', async () => {
        for (const coding of [undefined, ...CODINGS]) {
          const ok = await get(base, FEED, accepting(coding))
          assert.equal(ok.status, 200)
          assertVariesOnEncoding(ok, `a feed answer in ${says(coding)}`)
          assert.ok(varyNames(ok).includes('accept'), `Vary: ${ok.headers.get('vary')}`)
          const notModified = await get(base, FEED, { ...accepting(coding), 'if-none-match': field(ok, 'etag') })
          assert.equal(notModified.status, 304)
          assertVariesOnEncoding(notModified, `a 304 for the feed in ${says(coding)}`)
          assert.ok(varyNames(notModified).includes('accept'), `Vary: ${notModified.headers.get('vary')}`)
        }
      })
    })

    describe('a person', () => {
      it('is sent as identity with its one ETag, whatever Accept-Encoding allows', async () => {
        const plain = await get(base, '/persons/p001')
        const plainBody = decodedOk(plain, undefined)
        for (const value of ['gzip', 'br', 'gzip, br', '*', 'br;q=1, gzip;q=0.5']) {
          const response = await get(base, '/persons/p001', { 'accept-encoding': value })
          assert.deepEqual(decodedOk(response, undefined), plainBody)
          assert.equal(field(response, 'etag'), field(plain, 'etag'))
        }
      })

      it('answers HEAD with the fields of GET and no body, whatever Accept-Encoding allows', async () => {
        for (const coding of [undefined, ...CODINGS]) {
          const got = await get(base, '/persons/p003', accepting(coding))
          const head = await request(base, 'HEAD', '/persons/p003', accepting(coding))
          assert.equal(head.status, 200)
          assert.equal(head.body.length, 0)
          assert.deepEqual(withoutDate(head.headers), withoutDate(got.headers))
        }
      })

      it('answers 200 to If-None-Match naming a stale version in any coding', async () => {
        const stale = await identityTag(base, '/persons/p004')
        const current = await rename(base, 'p004', 'Newer than the tags the client holds')
        for (const named of [stale, codedTag(stale, 'gzip'), `W/${codedTag(stale, 'br')}`]) {
          const response = await get(base, '/persons/p004', { 'accept-encoding': 'gzip', 'if-none-match': named })
          decodedOk(response, undefined)
          assert.equal(field(response, 'etag'), current)
        }
      })

      it('answers 304 to If-None-Match naming it in any coding, with the identity tag it is sent under', async () => {
        const etag = await identityTag(base, '/persons/p002')
        for (const named of [etag, codedTag(etag, 'gzip'), codedTag(etag, 'br'), `W/${codedTag(etag, 'gzip')}`]) {
          for (const coding of [undefined, ...CODINGS]) {
            const response = await get(base, '/persons/p002', { ...accepting(coding), 'if-none-match': named })
            assert.equal(response.status, 304, `If-None-Match: ${named} with ${says(coding)}`)
            assert.equal(field(response, 'etag'), etag)
            assert.equal(response.body.length, 0)
          }
        }
      })
    })

    describe('If-None-Match on a page, naming the current version in any coding', () => {
      let etag: string
      before(async () => {
        etag = await identityTag(base, PAGE)
      })
      const forms: ReadonlyArray<{ name: string; value: (etag: string) => string }> = [
        { name: 'the identity tag', value: (etag) => etag },
        { name: 'the gzip tag', value: (etag) => codedTag(etag, 'gzip') },
        { name: 'the br tag', value: (etag) => codedTag(etag, 'br') },
        { name: 'the gzip tag in a list of stale ones', value: (etag) => `"stale-1", ${codedTag(etag, 'gzip')}, "stale-2"` },
        { name: 'the br tag unquoted, as the seed sends tags', value: (etag) => codedTag(etag, 'br').slice(1, -1) },
        { name: 'the gzip tag made weak', value: (etag) => `W/${codedTag(etag, 'gzip')}` },
        { name: 'the identity tag made weak', value: (etag) => `W/${etag}` },
      ]
      for (const form of forms) {
        for (const coding of [undefined, ...CODINGS]) {
          it(`answers 304 to ${form.name} with the tag of ${says(coding)}, the coding this request gets`, async () => {
            const response = await get(base, PAGE, { ...accepting(coding), 'if-none-match': form.value(etag) })
            assert.equal(response.status, 304)
            assert.equal(field(response, 'etag'), codedTag(etag, coding))
            assert.equal(response.body.length, 0)
            assert.equal(response.headers.get('content-encoding'), undefined)
          })
        }
      }

      it('answers HEAD with the same 304 as GET', async () => {
        for (const coding of [undefined, ...CODINGS]) {
          const headers = { ...accepting(coding), 'if-none-match': codedTag(etag, 'gzip') }
          const got = await get(base, PAGE, headers)
          const head = await request(base, 'HEAD', PAGE, headers)
          assert.equal(head.status, 304)
          assert.deepEqual(withoutDate(head.headers), withoutDate(got.headers))
        }
      })
    })

    describe('If-Match on a GET of a page', () => {
      it('proceeds (200 in the coding asked for) when it names the current version in any coding', async () => {
        const etag = await identityTag(base, PAGE)
        for (const named of [etag, codedTag(etag, 'gzip'), codedTag(etag, 'br'), `"stale", ${codedTag(etag, 'br')}`]) {
          for (const coding of [undefined, ...CODINGS]) {
            const response = await get(base, PAGE, { ...accepting(coding), 'if-match': named })
            decodedOk(response, coding)
            assert.equal(field(response, 'etag'), codedTag(etag, coding), `If-Match: ${named} with ${says(coding)}`)
          }
        }
      })

      it('answers 412 saying a weak tag is why when it names the current version in a weak coded tag', async () => {
        const etag = await identityTag(base, PAGE)
        for (const coding of CODINGS) {
          const response = await get(base, PAGE, { ...accepting(coding), 'if-match': `W/${codedTag(etag, coding)}` })
          assert.equal(response.status, 412)
          assert.match((JSON.parse(response.body.toString()) as { detail: string }).detail, /weak/i)
        }
      })

      it('answers 412 to tags that only look like a coding of the current version', async () => {
        const etag = await identityTag(base, PAGE)
        const opaque = etag.slice(1, -1)
        for (const named of [`"${opaque}+deflate"`, `"${opaque}+gzipx"`, `"${opaque}+"`, `"${opaque}0+gzip"`, `"${opaque}+gzip+gzip"`, `"${opaque}+GZIP"`]) {
          const response = await get(base, PAGE, { 'accept-encoding': 'gzip', 'if-match': named })
          assert.equal(response.status, 412, `If-Match: ${named}`)
          const again = await get(base, PAGE, { 'accept-encoding': 'gzip', 'if-none-match': named })
          assert.equal(again.status, 200, `If-None-Match: ${named}`)
        }
      })
    })

    describe('stale tags, in any coding', () => {
      it('fail If-Match (412) and pass If-None-Match (200 with the current tag of the coding asked for)', async () => {
        const stale = await identityTag(base, PAGE)
        await rename(base, 'p200', 'Renamed to make the page stale')
        const current = await identityTag(base, PAGE)
        assert.notEqual(current, stale)
        for (const named of [stale, codedTag(stale, 'gzip'), codedTag(stale, 'br'), `${codedTag(stale, 'gzip')}, ${codedTag(stale, 'br')}`]) {
          for (const coding of [undefined, ...CODINGS]) {
            const failed = await get(base, PAGE, { ...accepting(coding), 'if-match': named })
            assert.equal(failed.status, 412, `If-Match: ${named} with ${says(coding)}`)
            const fresh = await get(base, PAGE, { ...accepting(coding), 'if-none-match': named })
            decodedOk(fresh, coding)
            assert.equal(field(fresh, 'etag'), codedTag(current, coding), `If-None-Match: ${named} with ${says(coding)}`)
          }
        }
      })
    })

    describe('writes to a person with If-Match naming a coding of its current version', () => {
      for (const coding of CODINGS) {
        it(`PUT with the ${coding} tag succeeds`, async () => {
          const etag = await identityTag(base, '/persons/p010')
          const response = await write(base, 'PUT', '/persons/p010', { person_name: `Put under ${coding}` }, { 'if-match': codedTag(etag, coding) })
          assert.equal(response.status, 200, response.body.toString())
          assert.notEqual(field(response, 'etag'), etag)
          const now = await get(base, '/persons/p010')
          assert.equal((JSON.parse(now.body.toString()) as { person_name: string }).person_name, `Put under ${coding}`)
          assert.equal(field(now, 'etag'), field(response, 'etag'))
        })

        it(`PATCH with the ${coding} tag succeeds`, async () => {
          const etag = await identityTag(base, '/persons/p011')
          const response = await request(
            base,
            'PATCH',
            '/persons/p011',
            {
              'content-type': 'application/merge-patch+json',
              'if-match': codedTag(etag, coding),
            },
            JSON.stringify({ person_name: `Patched under ${coding}` }),
          )
          assert.equal(response.status, 200, response.body.toString())
          const now = await get(base, '/persons/p011')
          assert.equal((JSON.parse(now.body.toString()) as { person_name: string }).person_name, `Patched under ${coding}`)
        })

        it(`DELETE with the ${coding} tag succeeds`, async () => {
          const id = `gone-${coding}`
          const created = await write(base, 'POST', '/persons', { person_id: id, person_name: 'Soon gone' })
          assert.equal(created.status, 201)
          const response = await request(base, 'DELETE', `/persons/${id}`, { 'if-match': codedTag(field(created, 'etag'), coding) })
          assert.equal(response.status, 204, response.body.toString())
          assert.equal((await get(base, `/persons/${id}`)).status, 404)
        })

        it(`PUT, PATCH and DELETE with a stale ${coding} tag get 412 and change nothing`, async () => {
          const stale = await identityTag(base, '/persons/p012')
          const current = await rename(base, 'p012', `Current before stale ${coding}`)
          const before = await get(base, '/persons/p012')
          const put = await write(base, 'PUT', '/persons/p012', { person_name: 'Lost update' }, { 'if-match': codedTag(stale, coding) })
          const patch = await request(
            base,
            'PATCH',
            '/persons/p012',
            {
              'content-type': 'application/merge-patch+json',
              'if-match': codedTag(stale, coding),
            },
            JSON.stringify({ person_name: 'Lost patch' }),
          )
          const del = await request(base, 'DELETE', '/persons/p012', { 'if-match': codedTag(stale, coding) })
          for (const response of [put, patch, del]) {
            assert.equal(response.status, 412)
            assert.deepEqual(JSON.parse(response.body.toString()), STALE_PROBLEM)
          }
          const after = await get(base, '/persons/p012')
          assert.equal(field(after, 'etag'), current)
          assert.deepEqual(after.body, before.body)
        })

        it(`PUT with the current ${coding} tag made weak gets a 412 saying a weak tag is why`, async () => {
          const etag = await identityTag(base, '/persons/p013')
          const response = await write(base, 'PUT', '/persons/p013', { person_name: 'Through a proxy' }, { 'if-match': `W/${codedTag(etag, coding)}` })
          assert.equal(response.status, 412)
          assert.match((JSON.parse(response.body.toString()) as { detail: string }).detail, /weak/i)
          assert.equal(await identityTag(base, '/persons/p013'), etag)
        })
      }
    })

    describe('the changes feed', () => {
      for (const coding of CODINGS) {
        it(`sends its answer ${coding}-encoded under the ${coding} tag, decoding to the identity answer`, async () => {
          const identity = await get(base, FEED)
          const identityBody = decodedOk(identity, undefined)
          const coded = await get(base, FEED, accepting(coding))
          assert.deepEqual(decodedOk(coded, coding), identityBody)
          const etag = field(coded, 'etag')
          assertStrong(etag)
          assert.equal(etag, codedTag(field(identity, 'etag'), coding))
          const answer = JSON.parse(identityBody.toString()) as { changes: unknown[]; complete: boolean }
          assert.ok(answer.changes.length >= PERSONS, `${answer.changes.length} changes`)
          assert.equal(answer.complete, true)
        })

        it(`answers HEAD in ${coding} with the fields of GET and no body`, async () => {
          const got = await get(base, FEED, accepting(coding))
          const head = await request(base, 'HEAD', FEED, accepting(coding))
          assert.equal(head.status, 200)
          assert.equal(head.body.length, 0)
          assert.deepEqual(withoutDate(head.headers), withoutDate(got.headers))
        })
      }

      it('answers 304 to If-None-Match naming the answer in any coding, with the tag of the coding this request gets', async () => {
        const etag = await identityTag(base, FEED)
        for (const named of [etag, codedTag(etag, 'gzip'), codedTag(etag, 'br'), `"x", ${codedTag(etag, 'br')}`, `W/${codedTag(etag, 'gzip')}`]) {
          for (const coding of [undefined, ...CODINGS]) {
            const response = await get(base, FEED, { ...accepting(coding), 'if-none-match': named })
            assert.equal(response.status, 304, `If-None-Match: ${named} with ${says(coding)}`)
            assert.equal(field(response, 'etag'), codedTag(etag, coding))
            assert.equal(response.body.length, 0)
          }
        }
      })

      it('answers 200 to If-None-Match naming an answer a write has replaced, in any coding', async () => {
        const stale = await identityTag(base, FEED)
        await rename(base, 'p021', 'Replaces the feed answer')
        for (const coding of CODINGS) {
          const response = await get(base, FEED, { ...accepting(coding), 'if-none-match': `${codedTag(stale, 'gzip')}, ${codedTag(stale, 'br')}` })
          decodedOk(response, coding)
          assert.notEqual(field(response, 'etag'), codedTag(stale, coding))
        }
      })

      it('answers 412 saying a weak tag is why to If-Match naming the answer in a weak coded tag', async () => {
        const etag = await identityTag(base, FEED)
        const response = await get(base, FEED, { 'accept-encoding': 'gzip', 'if-match': `W/${codedTag(etag, 'gzip')}` })
        assert.equal(response.status, 412)
        assert.match((JSON.parse(response.body.toString()) as { detail: string }).detail, /weak/i)
        const strong = await get(base, FEED, { 'accept-encoding': 'gzip', 'if-match': codedTag(etag, 'br') })
        decodedOk(strong, 'gzip')
      })

      it('holds a gzip long poll until a write commits, then answers it gzip-encoded with that write', async () => {
        const start = JSON.parse(decodeBody(await get(base, FEED)).toString()) as { next: string }
        // a wait long enough that a busy machine cannot end it before the write; the write ends it
        const path = `/persons?since=${start.next}&wait=10`
        const poll = get(base, path, { 'accept-encoding': 'gzip' })
        await untilPollsHeld(base, 1)
        await rename(base, 'p020', 'Woke the long poll')
        const response = await poll
        const answer = JSON.parse(decodedOk(response, 'gzip').toString()) as { changes: Array<{ person_id: string; person_name: string }> }
        assert.deepEqual(
          answer.changes.map((change) => [change.person_id, change.person_name]),
          [['p020', 'Woke the long poll']],
        )
        // the same URL in identity, now that the write has committed, answers at once
        assert.equal(field(response, 'etag'), codedTag(await identityTag(base, path), 'gzip'))
      })

      it('answers a gzip long poll that nothing wakes after the wait, gzip-encoded, or 304 with the gzip tag', async () => {
        const start = JSON.parse(decodeBody(await get(base, FEED)).toString()) as { next: string }
        const path = `/persons?since=${start.next}&wait=1`
        const quiet = await get(base, path, { 'accept-encoding': 'gzip' })
        const answer = JSON.parse(decodedOk(quiet, 'gzip').toString()) as { changes: unknown[]; next: string }
        assert.deepEqual(answer.changes, [])
        assert.equal(answer.next, start.next)
        const etag = field(quiet, 'etag')
        assert.match(etag, /\+gzip"$/)
        // revalidating with the identity tag of the same answer: still a 304 with the gzip tag
        const notModified = await get(base, path, { 'accept-encoding': 'gzip', 'if-none-match': etag.replace('+gzip"', '"') })
        assert.equal(notModified.status, 304)
        assert.equal(field(notModified, 'etag'), etag)
      })

      it('sends an event stream uncompressed, even to a client that accepts gzip and br', async () => {
        const head = await streamHead(base, '/persons?since=0', { accept: 'text/event-stream', 'accept-encoding': 'gzip, br' })
        assert.equal(head.status, 200)
        assert.match(String(head.headers['content-type']), /^text\/event-stream/)
        assert.equal(head.headers['content-encoding'], undefined)
        // the same URL answers JSON in a coding: a cache must tell the two apart
        const vary = String(head.headers.vary)
          .split(',')
          .map((name) => name.trim().toLowerCase())
        assert.ok(vary.includes('accept') && vary.includes('accept-encoding'), `Vary: ${String(head.headers.vary)}`)
        assert.match(head.firstChunk.toString('utf8'), /^(retry:|:|event:|id:|data:)/m)
      })
    })

    describe("the seed's plain requests, without Accept-Encoding", () => {
      it('get identity everywhere: a person, a page, the feed, HEAD and writes', async () => {
        const created = await write(base, 'POST', '/persons', { person_id: 'seed-1', person_name: 'Wim' })
        const answers: RawResponse[] = [
          created,
          await get(base, '/persons/seed-1'),
          await get(base, '/persons'),
          await get(base, PAGE),
          await get(base, FEED),
          await request(base, 'HEAD', PAGE),
          await write(base, 'PUT', '/persons/seed-1', { person_name: 'Wim W' }, { 'if-match': field(created, 'etag') }),
        ]
        for (const response of answers) {
          assert.ok(response.status === 200 || response.status === 201, `${response.status}`)
          assert.equal(response.headers.get('content-encoding'), undefined)
          assert.doesNotMatch(field(response, 'etag'), /\+/)
          if (response.body.length > 0) JSON.parse(response.body.toString())
        }
      })
    })

    describe('compressing once per ETag and coding', () => {
      const path = '/persons?limit=250'

      it('compresses a page asked for by 50 clients at once exactly once, and never again while it is current', async () => {
        const gzipBefore = await metric(base, 'gzip')
        const brBefore = await metric(base, 'br')
        const answers = await Promise.all(Array.from({ length: 50 }, () => get(base, path, { 'accept-encoding': 'gzip' })))
        for (const response of answers) {
          decodedOk(response, 'gzip')
          assert.deepEqual(response.body, answers[0]!.body)
          assert.equal(field(response, 'etag'), field(answers[0]!, 'etag'))
        }
        assert.equal(await metric(base, 'gzip'), gzipBefore + 1)
        for (let i = 0; i < 10; i++) decodedOk(await get(base, path, { 'accept-encoding': 'gzip' }), 'gzip')
        await Promise.all(Array.from({ length: 10 }, () => get(base, path, { 'accept-encoding': 'x-gzip, br;q=0.1' })))
        assert.equal(await metric(base, 'gzip'), gzipBefore + 1)
        assert.equal(await metric(base, 'br'), brBefore)
      })

      it('compresses nothing to answer 304 or 412, or identity', async () => {
        // a new version, whose coded forms nobody has asked for yet
        await rename(base, 'p030', 'New version, not yet compressed')
        const gzipBefore = await metric(base, 'gzip')
        const brBefore = await metric(base, 'br')
        const etag = await identityTag(base, path)
        const notModified = await get(base, path, { 'accept-encoding': 'gzip', 'if-none-match': etag })
        assert.equal(notModified.status, 304)
        assert.equal(field(notModified, 'etag'), codedTag(etag, 'gzip'))
        const failed = await get(base, path, { 'accept-encoding': 'br', 'if-match': '"stale"' })
        assert.equal(failed.status, 412)
        assert.equal(await metric(base, 'gzip'), gzipBefore)
        assert.equal(await metric(base, 'br'), brBefore)
      })

      it('compresses once more after a write, under the new tag', async () => {
        const old = await get(base, path, { 'accept-encoding': 'gzip' })
        decodedOk(old, 'gzip')
        const gzipBefore = await metric(base, 'gzip')
        await rename(base, 'p031', 'A write makes a new version of every page')
        const answers = await Promise.all(Array.from({ length: 20 }, () => get(base, path, { 'accept-encoding': 'gzip' })))
        for (const response of answers) decodedOk(response, 'gzip')
        assert.notEqual(field(answers[0]!, 'etag'), field(old, 'etag'))
        assert.equal(await metric(base, 'gzip'), gzipBefore + 1)
      })

      it('compresses a feed answer once per coding too', async () => {
        await rename(base, 'p032', 'A new feed answer')
        const gzipBefore = await metric(base, 'gzip')
        const brBefore = await metric(base, 'br')
        await Promise.all(Array.from({ length: 20 }, (_, i) => get(base, FEED, { 'accept-encoding': i % 2 === 0 ? 'gzip' : 'br' })))
        for (let i = 0; i < 4; i++) decodedOk(await get(base, FEED, { 'accept-encoding': 'br' }), 'br')
        assert.equal(await metric(base, 'gzip'), gzipBefore + 1)
        assert.equal(await metric(base, 'br'), brBefore + 1)
      })
    })
  })

  describe(`${driver.name}: two server processes on one database`, () => {
    let database: TestDatabase
    let a: ServerProcess | undefined
    let b: ServerProcess | undefined

    before(async () => {
      database = await driver.createDatabase({ shared: true })
      a = await spawnServer(database.url, [], undefined, database.env)
      b = await spawnServer(database.url, [], undefined, database.env)
      await createPersons(a.baseUrl, 120, 'q')
    })
    after(async () => {
      await stopProcess(a)
      await stopProcess(b)
      await database.cleanup()
    })

    it('sends byte-identical bodies under equal tags, in every coding, from either process, while both write', async () => {
      const bodies = new Map<string, { bytes: Buffer; from: string }>()
      let shared = 0
      const keep = (response: RawResponse, from: string): void => {
        if (response.status !== 200) throw new Error(`${from} answered ${response.status}: ${response.body.toString()}`)
        const etag = field(response, 'etag')
        assertStrong(etag)
        const seen = bodies.get(etag)
        if (seen === undefined) {
          bodies.set(etag, { bytes: response.body, from })
          return
        }
        assert.ok(seen.bytes.equals(response.body), `${etag} named ${seen.bytes.length} bytes from ${seen.from} and ${response.body.length} from ${from}`)
        if (seen.from.split(' ')[0] !== from.split(' ')[0]) shared++
      }
      const servers = [a!, b!]
      const tokens = ['0']
      for (let round = 0; round < 6; round++) {
        const paths = [
          '/persons',
          '/persons?limit=50',
          '/persons?limit=120',
          '/persons?limit=40&after=q040',
          FEED,
          ...tokens.slice(-2).map((token) => `/persons?since=${token}`),
        ]
        const reads = servers.flatMap((server, s) =>
          paths.flatMap((path) =>
            [undefined, ...CODINGS].map(async (coding) => {
              keep(await get(server.baseUrl, path, accepting(coding)), `${s === 0 ? 'A' : 'B'} ${says(coding)} ${path}`)
            }),
          ),
        )
        // on odd rounds the writes race the reads: a page read in its own snapshot must still carry
        // the tag of what it holds
        const writes =
          round % 2 === 1
            ? [0, 3, 5].map((offset, i) => rename(servers[i % 2]!.baseUrl, `q${String(round * 9 + offset).padStart(3, '0')}`, `Round ${round}`))
            : []
        await Promise.all([...reads, ...writes])
        if (round % 2 === 0) await rename(servers[0]!.baseUrl, `q${String(round * 5 + 1).padStart(3, '0')}`, `Between rounds ${round}`)
        const feed = JSON.parse(decodeBody(await get(b!.baseUrl, `/persons?since=${tokens.at(-1)!}`)).toString()) as { next: string }
        tokens.push(feed.next)
      }
      // the test proves something only if both processes sent many of the same tags
      assert.ok(shared >= 50, `only ${shared} answers shared a tag across the two processes`)
      // assertion messages are given: generating one from the source takes Node seconds here
      for (const coding of CODINGS) {
        const coded = [...bodies.keys()].filter((etag) => etag.endsWith(`+${coding}"`)).length
        assert.ok(coded >= 20, `only ${coded} ${coding} tags among ${bodies.size}`)
      }
    })
  })
}
