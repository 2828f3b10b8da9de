/**
 * What API.md ("Compression and HTTP caches") promises behind a real shared cache, checked
 * through one of deploy/'s configurations in front of a real ifmatch: stored answers are
 * revalidated with If-None-Match and refreshed by a 304, writes pass with their If-Match, every
 * ETag a client sees works in If-Match whatever its content coding, no read ever sees a
 * representation older than the last acknowledged write, and the changes feed stays live.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { exchange, openStream, type Exchange, type ExchangeOptions } from './exchange.js'
import { sample } from './prometheus.js'
import type { RunningCache, SharedCache } from './shared-cache.js'
import { STALE_PROBLEM } from './stale-problem.js'
import { startServer, type RunningServer } from './start-server.js'

const PROBLEM_TYPE = 'application/problem+json; charset=utf-8'

// only to turn a hang into a failure, never to judge speed
const LIVE_TIMEOUT_MS = 10_000

const WRITERS = 4
const READERS = 4
const INCREMENTS_PER_WRITER = 10
// a writer that needs more tries than this is starved: fail instead of spinning
const MAX_TRIES_PER_WRITER = 400

interface PersonBody {
  readonly person_id: string
  readonly person_name: string
  readonly change_date: string
}

interface FeedAnswer {
  readonly changes: readonly { readonly person_id: string; readonly person_name?: string }[]
  readonly next: string
}

function uniqueId(label: string): string {
  return `${label}-${randomBytes(4).toString('hex')}`
}

function etagOf(answer: Exchange): string {
  const etag = answer.header('etag')
  assert.ok(etag !== undefined, `a ${answer.status} carries an ETag`)
  return etag
}

/** The count ifmatch itself reports for GET /persons/:id with `status`. */
async function personGets(server: RunningServer, status: number): Promise<number> {
  const metrics = await exchange(server.baseUrl, 'GET', '/metrics')
  return sample(metrics.text, 'ifmatch_http_requests_total', { route: '/persons/:id', method: 'GET', status: String(status) }) ?? 0
}

/** Long polls ifmatch itself holds right now. */
async function heldLongPolls(server: RunningServer): Promise<number> {
  const metrics = await exchange(server.baseUrl, 'GET', '/metrics')
  return sample(metrics.text, 'ifmatch_changes_waiting', { kind: 'long-poll' }) ?? 0
}

async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + LIVE_TIMEOUT_MS
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${LIVE_TIMEOUT_MS} ms`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** Runs the whole suite through `cache`, or skips it (loudly) where the cache is not installed. */
export function describeThroughCache(cache: SharedCache): void {
  describe(`${cache.name} with ${cache.config} in front of ifmatch`, { skip: cache.skipReason() }, () => {
    let server: RunningServer
    let front: RunningCache | undefined
    let base = ''

    before(async () => {
      server = await startServer()
      front = await cache.start(server.baseUrl)
      base = front.baseUrl
    })

    after(async () => {
      await front?.stop()
      await server?.close()
    })

    async function create(id: string, name: string, via = base): Promise<string> {
      const created = await exchange(via, 'POST', '/persons', { body: { person_id: id, person_name: name } })
      assert.equal(created.status, 201, created.text)
      return etagOf(created)
    }

    describe('reading a person again', () => {
      it('answers the second GET from its stored copy after ifmatch answers the revalidation with 304', async () => {
        const id = uniqueId('again')
        await create(id, 'Wim')
        const [full, notModified] = [await personGets(server, 200), await personGets(server, 304)]

        const first = await exchange(base, 'GET', `/persons/${id}`)
        const second = await exchange(base, 'GET', `/persons/${id}`)

        assert.equal(first.status, 200)
        assert.equal(second.status, 200)
        assert.equal(second.text, first.text)
        assert.equal(etagOf(second), etagOf(first))
        assert.equal(second.header('cache-control'), 'no-cache', 'the cache passes the directive on to clients')
        // ifmatch sent the body once, then confirmed the stored copy with a 304
        assert.equal(await personGets(server, 200), full + 1)
        assert.equal(await personGets(server, 304), notModified + 1)
        assert.equal(first.header('x-cache'), 'MISS')
        assert.equal(second.header('x-cache'), 'REVALIDATED')
      })

      it('asks ifmatch before every use, however close together the reads come', async () => {
        // a stored copy that stays fresh for any time at all (Varnish's ttl was once 1 ms) lets
        // the reads inside that time skip the revalidation: about a quarter of back-to-back reads did
        const id = uniqueId('back-to-back')
        await create(id, 'Wim')
        assert.equal((await exchange(base, 'GET', `/persons/${id}`)).header('x-cache'), 'MISS')
        const notModified = await personGets(server, 304)

        const seen = new Map<string, number>()
        for (let read = 0; read < 100; read++) {
          const label = String((await exchange(base, 'GET', `/persons/${id}`)).header('x-cache'))
          seen.set(label, (seen.get(label) ?? 0) + 1)
        }

        assert.deepEqual([...seen], [['REVALIDATED', 100]])
        assert.equal(await personGets(server, 304), notModified + 100)
      })

      it("answers a client's own If-None-Match with 304 and the ETag, and no body", async () => {
        const id = uniqueId('inm')
        await create(id, 'Wim')
        const first = await exchange(base, 'GET', `/persons/${id}`)
        const etag = etagOf(first)

        const conditional = await exchange(base, 'GET', `/persons/${id}`, { headers: { 'if-none-match': etag } })

        assert.equal(conditional.status, 304)
        assert.equal(conditional.header('etag'), etag)
        assert.equal(conditional.raw.length, 0)
      })

      it("answers a client's If-None-Match with the new representation once the person has changed", async () => {
        const id = uniqueId('inm-changed')
        await create(id, 'Wim')
        const before = etagOf(await exchange(base, 'GET', `/persons/${id}`))
        const updated = await exchange(server.baseUrl, 'PUT', `/persons/${id}`, { headers: { 'if-match': before }, body: { person_name: 'Jan' } })
        assert.equal(updated.status, 200)

        const conditional = await exchange(base, 'GET', `/persons/${id}`, { headers: { 'if-none-match': before } })

        assert.equal(conditional.status, 200)
        assert.equal(conditional.json<PersonBody>().person_name, 'Jan')
        assert.equal(etagOf(conditional), etagOf(updated))
      })

      it('does not keep a 404: a person created right after is found', async () => {
        const id = uniqueId('late')
        const missing = await exchange(base, 'GET', `/persons/${id}`)
        assert.equal(missing.status, 404)
        assert.equal(missing.header('content-type'), PROBLEM_TYPE)

        await create(id, 'Wim', server.baseUrl)

        const found = await exchange(base, 'GET', `/persons/${id}`)
        assert.equal(found.status, 200)
        assert.equal(found.json<PersonBody>().person_name, 'Wim')
        // and the person, unlike the 404, is stored
        assert.equal((await exchange(base, 'GET', `/persons/${id}`)).header('x-cache'), 'REVALIDATED')
      })

      it("passes a GET's If-Match and If-Unmodified-Since to ifmatch: a stale one is ifmatch's 412 problem", async () => {
        const id = uniqueId('get-if-match')
        const stale = await create(id, 'Wim')
        const read = await exchange(base, 'GET', `/persons/${id}`)
        const updated = await exchange(server.baseUrl, 'PUT', `/persons/${id}`, { headers: { 'if-match': stale }, body: { person_name: 'Jan' } })
        assert.equal(updated.status, 200)
        const lastModified = read.header('last-modified')!
        const before = new Date(Date.parse(lastModified) - 60_000).toUTCString()

        const preconditions: readonly Record<string, string>[] = [{ 'if-match': stale }, { 'if-unmodified-since': before }]
        for (const headers of preconditions) {
          const answer = await exchange(base, 'GET', `/persons/${id}`, { headers })
          assert.equal(answer.status, 412, JSON.stringify(headers))
          assert.equal(answer.header('content-type'), PROBLEM_TYPE, JSON.stringify(headers))
          assert.equal(answer.json<{ status: number }>().status, 412)
        }
        const current = await exchange(base, 'GET', `/persons/${id}`, { headers: { 'if-match': etagOf(updated) } })
        assert.equal(current.status, 200)
        assert.equal(current.json<PersonBody>().person_name, 'Jan')
      })
    })

    describe('writing through the cache', () => {
      it("passes PUT's If-Match to ifmatch: the ETag read through the cache updates, and the next GET shows the update", async () => {
        const id = uniqueId('put')
        await create(id, 'Wim')
        const read = await exchange(base, 'GET', `/persons/${id}`)

        const updated = await exchange(base, 'PUT', `/persons/${id}`, { headers: { 'if-match': etagOf(read) }, body: { person_name: 'Jan' } })
        assert.equal(updated.status, 200, updated.text)

        const after = await exchange(base, 'GET', `/persons/${id}`)
        assert.equal(after.json<PersonBody>().person_name, 'Jan')
        assert.equal(etagOf(after), etagOf(updated))
      })

      it("passes PATCH's If-Match and merge patch, and DELETE's If-Match; the next GET is a 404", async () => {
        const id = uniqueId('patch')
        const etag = await create(id, 'Wim', base)

        const patched = await exchange(base, 'PATCH', `/persons/${id}`, {
          headers: { 'if-match': etag, 'content-type': 'application/merge-patch+json' },
          body: { person_name: 'Jan' },
        })
        assert.equal(patched.status, 200, patched.text)
        assert.equal(patched.json<PersonBody>().person_name, 'Jan')
        assert.equal((await exchange(base, 'GET', `/persons/${id}`)).json<PersonBody>().person_name, 'Jan')

        const deleted = await exchange(base, 'DELETE', `/persons/${id}`, { headers: { 'if-match': etagOf(patched) } })
        assert.equal(deleted.status, 204, deleted.text)
        assert.equal((await exchange(base, 'GET', `/persons/${id}`)).status, 404)
      })

      it("passes PUT's If-None-Match: * so that it creates the person", async () => {
        const id = uniqueId('create')
        const created = await exchange(base, 'PUT', `/persons/${id}`, { headers: { 'if-none-match': '*' }, body: { person_name: 'Wim' } })
        assert.equal(created.status, 201, created.text)
        assert.equal((await exchange(base, 'GET', `/persons/${id}`)).json<PersonBody>().person_name, 'Wim')
      })

      it('returns 428, 412 and 409 as the same problem+json ifmatch sends', async () => {
        const id = uniqueId('problems')
        const stale = await create(id, 'Wim')
        const current = await exchange(server.baseUrl, 'PUT', `/persons/${id}`, { headers: { 'if-match': stale }, body: { person_name: 'Jan' } })
        assert.equal(current.status, 200)
        const cases: readonly { status: number; method: string; path: string; options: ExchangeOptions }[] = [
          { status: 428, method: 'PUT', path: `/persons/${id}`, options: { body: { person_name: 'Kim' } } },
          { status: 428, method: 'DELETE', path: `/persons/${id}`, options: {} },
          { status: 412, method: 'PUT', path: `/persons/${id}`, options: { headers: { 'if-match': stale }, body: { person_name: 'Kim' } } },
          {
            status: 412,
            method: 'PATCH',
            path: `/persons/${id}`,
            options: { headers: { 'if-match': stale, 'content-type': 'application/merge-patch+json' }, body: { person_name: 'Kim' } },
          },
          { status: 412, method: 'DELETE', path: `/persons/${id}`, options: { headers: { 'if-match': stale } } },
          { status: 409, method: 'POST', path: '/persons', options: { body: { person_id: id, person_name: 'Kim' } } },
        ]
        for (const { status, method, path, options } of cases) {
          const through = await exchange(base, method, path, options)
          const direct = await exchange(server.baseUrl, method, path, options)
          const label = `${method} ${JSON.stringify(options.headers ?? {})}`
          assert.equal(through.status, status, `${label}: ${through.text}`)
          assert.equal(through.header('content-type'), PROBLEM_TYPE, label)
          assert.deepEqual(through.json(), direct.json(), label)
          assert.equal(through.json<{ status: number }>().status, status, label)
          if (status === 412) assert.deepEqual(through.json(), STALE_PROBLEM, label)
        }
        // none of them changed the person
        assert.equal((await exchange(base, 'GET', `/persons/${id}`)).json<PersonBody>().person_name, 'Jan')
      })
    })

    describe('content codings', () => {
      for (const acceptEncoding of [undefined, 'gzip', 'gzip, deflate, br']) {
        const label = acceptEncoding === undefined ? 'without Accept-Encoding' : `with Accept-Encoding: ${acceptEncoding}`
        it(`gives a strong ETag ${label} that a PUT through the cache can use in If-Match`, async () => {
          const id = uniqueId('coding')
          await create(id, 'Wim')
          const headers: Record<string, string> = acceptEncoding === undefined ? {} : { 'accept-encoding': acceptEncoding }
          // twice: the second answer is the stored copy, revalidated
          await exchange(base, 'GET', `/persons/${id}`, { headers })
          const read = await exchange(base, 'GET', `/persons/${id}`, { headers })
          assert.equal(read.status, 200)
          assert.doesNotMatch(etagOf(read), /^W\//, 'the cache must not weaken the ETag')
          assert.equal(read.json<PersonBody>().person_name, 'Wim')
          if (acceptEncoding === undefined) assert.equal(read.header('content-encoding'), undefined, 'a client that asked for no coding gets identity')

          const updated = await exchange(base, 'PUT', `/persons/${id}`, { headers: { ...headers, 'if-match': etagOf(read) }, body: { person_name: 'Jan' } })
          assert.equal(updated.status, 200, updated.text)
        })
      }

      it('gives feed items, read in any coding through the cache, an etag that a PUT through the cache can use in If-Match', async () => {
        const ids = [uniqueId('item-a'), uniqueId('item-b'), uniqueId('item-c')]
        for (const id of ids) await create(id, `Person ${id} with a name long enough to be worth compressing`, server.baseUrl)
        const clients: readonly Record<string, string>[] = [{}, { 'accept-encoding': 'gzip' }, { 'accept-encoding': 'gzip, deflate, br' }]
        for (const [i, headers] of clients.entries()) {
          // twice: the second answer is the stored copy, revalidated
          await exchange(base, 'GET', '/persons?since=0&limit=1000', { headers })
          const feed = await exchange(base, 'GET', '/persons?since=0&limit=1000', { headers })
          assert.equal(feed.status, 200)
          assert.doesNotMatch(etagOf(feed), /^W\//)
          const item = feed.json<{ changes: readonly { person_id: string; etag: string }[] }>().changes.find((c) => c.person_id === ids[i])
          assert.ok(item !== undefined, `${ids[i]} is in the feed`)
          const updated = await exchange(base, 'PUT', `/persons/${item.person_id}`, {
            headers: { ...headers, 'if-match': item.etag },
            body: { person_name: 'Jan' },
          })
          assert.equal(updated.status, 200, updated.text)
        }
      })

      it('gives each client a body in a coding it accepts, whichever coding the cache stored first', async () => {
        // a page big enough to be worth compressing
        for (let i = 0; i < 20; i++) await create(uniqueId(`coded-${String(i).padStart(2, '0')}`), `Person number ${i} with a longer name`, server.baseUrl)
        const gzipFirst = await exchange(base, 'GET', '/persons?limit=50', { headers: { 'accept-encoding': 'gzip' } })
        const identity = await exchange(base, 'GET', '/persons?limit=50')
        const gzipAgain = await exchange(base, 'GET', '/persons?limit=50', { headers: { 'accept-encoding': 'gzip' } })

        assert.equal(identity.header('content-encoding'), undefined)
        assert.ok(Array.isArray(identity.json()))
        for (const coded of [gzipFirst, gzipAgain]) {
          assert.ok([undefined, 'gzip'].includes(coded.header('content-encoding')))
          assert.deepEqual(coded.json(), identity.json())
          if (coded.header('content-encoding') === 'gzip') {
            assert.match(coded.header('vary') ?? '', /accept-encoding/i)
            assert.notEqual(etagOf(coded), etagOf(identity), 'each coding has its own ETag')
          }
        }
        assert.equal(etagOf(gzipAgain), etagOf(gzipFirst))
      })
    })

    describe('several clients reading and writing at once', () => {
      it('never shows a read a version older than a write acknowledged before the read began', async () => {
        const id = uniqueId('counter')
        await create(id, '0')
        let acknowledged = 0
        let writersDone = 0
        let reads = 0
        const path = `/persons/${id}`
        const codings: readonly Record<string, string>[] = [{}, { 'accept-encoding': 'gzip' }]

        const writer = async (w: number): Promise<void> => {
          let tries = 0
          for (let done = 0; done < INCREMENTS_PER_WRITER; ) {
            assert.ok(++tries <= MAX_TRIES_PER_WRITER, `writer ${w} starved`)
            const floor = acknowledged
            const read = await exchange(base, 'GET', path, { headers: codings[tries % 2]! })
            assert.equal(read.status, 200)
            const value = Number(read.json<PersonBody>().person_name)
            assert.ok(value >= floor, `writer ${w} read ${value} after ${floor} was acknowledged`)
            const written = await exchange(base, 'PUT', path, { headers: { 'if-match': etagOf(read) }, body: { person_name: String(value + 1) } })
            if (written.status === 412) continue
            assert.equal(written.status, 200, written.text)
            acknowledged = Math.max(acknowledged, value + 1)
            done++
          }
          writersDone++
        }

        const reader = async (r: number): Promise<void> => {
          let seen: { value: number; etag: string } | undefined
          while (writersDone < WRITERS) {
            const floor = acknowledged
            // half the reads revalidate the reader's own copy, as a browser would
            const headers: Record<string, string> = { ...codings[reads % 2] }
            if (seen !== undefined && reads % 3 === 0) headers['if-none-match'] = seen.etag
            reads++
            const read = await exchange(base, 'GET', path, { headers })
            if (read.status === 304) {
              assert.ok(seen !== undefined && seen.value >= floor, `reader ${r} was told its ${seen?.value} is current after ${floor} was acknowledged`)
              continue
            }
            assert.equal(read.status, 200)
            const value = Number(read.json<PersonBody>().person_name)
            assert.ok(value >= floor, `reader ${r} read ${value} after ${floor} was acknowledged`)
            seen = { value, etag: etagOf(read) }
          }
        }

        await Promise.all([...Array.from({ length: WRITERS }, (_, w) => writer(w)), ...Array.from({ length: READERS }, (_, r) => reader(r))])
        assert.equal(acknowledged, WRITERS * INCREMENTS_PER_WRITER, 'every acknowledged increment counted once')
        assert.ok(reads > 0)
        const final = await exchange(base, 'GET', path)
        assert.equal(final.json<PersonBody>().person_name, String(WRITERS * INCREMENTS_PER_WRITER))
      })
    })

    describe('the changes feed', () => {
      async function currentToken(): Promise<string> {
        const answer = await exchange(server.baseUrl, 'GET', '/persons?since=0&limit=1000')
        assert.equal(answer.status, 200)
        return answer.json<FeedAnswer>().next
      }

      it('answers a feed read again with the writes made since the stored copy', async () => {
        const since = await currentToken()
        const empty = await exchange(base, 'GET', `/persons?since=${since}`)
        assert.deepEqual(empty.json<FeedAnswer>().changes, [])
        const id = uniqueId('feed')
        await create(id, 'Wim', server.baseUrl)

        const again = await exchange(base, 'GET', `/persons?since=${since}`)
        assert.deepEqual(
          again.json<FeedAnswer>().changes.map((c) => c.person_id),
          [id],
        )
      })

      it('holds a long poll at ifmatch, even one it has answered before, until a write arrives', async () => {
        const since = await currentToken()
        const path = `/persons?since=${since}&wait=2`
        // an empty answer a cache could keep and hand out again
        const timedOut = await exchange(base, 'GET', path)
        assert.equal(timedOut.status, 200)
        assert.deepEqual(timedOut.json<FeedAnswer>().changes, [])

        const held = exchange(base, 'GET', path)
        await until(async () => (await heldLongPolls(server)) === 1, 'the long poll reaching ifmatch')
        const id = uniqueId('poll')
        await create(id, 'Wim', server.baseUrl)

        const answer = await held
        assert.equal(answer.status, 200)
        assert.deepEqual(
          answer.json<FeedAnswer>().changes.map((c) => c.person_id),
          [id],
        )
      })

      it('streams Server-Sent Events as ifmatch writes them, unbuffered', async () => {
        const since = await currentToken()
        const stream = await openStream(base, `/persons?since=${since}`, { accept: 'text/event-stream' })
        try {
          assert.equal(stream.status, 200)
          assert.match(String(stream.headers['content-type']), /^text\/event-stream/)
          // ifmatch writes this comment at once: seeing it means nothing sits in a buffer
          await stream.until((text) => text.includes(`: changes after ${since}`), LIVE_TIMEOUT_MS, 'opening comment')
          const id = uniqueId('sse')
          await create(id, 'Wim', server.baseUrl)
          await stream.until((text) => text.includes(`"person_id":"${id}"`), LIVE_TIMEOUT_MS, `change event for ${id}`)
          assert.match(stream.received(), /event: change\nid: [^\n]+\ndata: \{[^\n]*"person_name":"Wim"/)
        } finally {
          stream.close()
        }
      })
    })
  })
}
