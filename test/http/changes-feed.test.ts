/**
 * The changes feed, one answer at a time (API.md, "Keeping a copy current: the changes feed", and
 * docs/changes-feed.md), over real HTTP against the real server, once per test driver. A writer
 * that writes one request at a time knows the commit order, so each test knows exactly what the
 * feed owes a reader from any token: nothing skipped, nothing repeated, nothing out of order.
 * Long polls and streams have their own suite (changes-live.test.ts).
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {
  applyChanges,
  assertCopyEquals,
  assertProblem,
  changesSince,
  changesToken,
  feedBody,
  feedPath,
  followChanges,
  getPerson,
  isTombstone,
  linkTargets,
  makeToken,
  readChanges,
  request,
  seededRandom,
  storedCollection,
  tokenParts,
  Writer,
  type FeedBody,
  type FeedItem,
  type LiveItem,
} from '../helpers/changes-feed.js'
import { rawRequest, withoutDate } from '../helpers/raw-request.js'
import { spawnServer, stopProcess } from '../helpers/spawn-server.js'
import { startServer, type RunningServer } from '../helpers/start-server.js'
import { TEST_DRIVERS, type TestDatabase } from '../helpers/test-stores.js'

// RFC 9110 §8.8.3: a strong entity-tag is a quoted string of etagc, without W/
const STRONG_ETAG = /^"[\x21\x23-\x7e\x80-\xff]*"$/
const SEED = Number(process.env.FEED_TEST_SEED ?? Date.now() % 1_000_000)

/** The ids in an answer, which must each appear once. */
function assertNoRepeats(body: FeedBody, context: string): void {
  const ids = body.changes.map((item) => item.person_id)
  assert.equal(new Set(ids).size, ids.length, `${context}: an id listed twice in one answer: ${ids.join(' ')}`)
}

/** Every page of `GET /persons?limit=n`, concatenated, each person with the ETag of its own GET. */
async function concatenatedPages(baseUrl: string, limit: number): Promise<LiveItem[]> {
  const persons: LiveItem[] = []
  let path: string | undefined = `/persons?limit=${limit}`
  while (path !== undefined) {
    const page = await request(baseUrl, path)
    assert.equal(page.status, 200, page.text)
    for (const person of page.json as Omit<LiveItem, 'etag'>[]) {
      persons.push({ ...person, etag: (await getPerson(baseUrl, person.person_id)).etag! })
    }
    path = linkTargets(page.headers.get('link')).get('next')
  }
  return persons
}

/**
 * What following the feed from `0` must give when nobody writes meanwhile: the live persons, in the
 * order of their last writes, and each id once in all. Tombstones may come in answers after the
 * first (their tokens are not 0 and a token names only a moment), but only of persons not live.
 */
function assertCopyFromZero(items: readonly FeedItem[], writer: Writer): void {
  assert.deepEqual(
    items.filter((item) => !isTombstone(item)),
    writer.expectedSince(0, true),
  )
  const ids = items.map((item) => item.person_id)
  assert.equal(new Set(ids).size, ids.length, `an id delivered twice: ${ids.join(' ')}`)
  for (const item of items.filter(isTombstone)) assert.ok(!writer.current.has(item.person_id), `a tombstone of live ${item.person_id}`)
  assertCopyEquals(applyChanges(new Map(), items), writer.current)
}

function byId(a: FeedItem, b: FeedItem): number {
  return a.person_id < b.person_id ? -1 : a.person_id > b.person_id ? 1 : 0
}

for (const driver of TEST_DRIVERS) {
  describe(driver.name, () => {
    describe('20 live persons left by 35 writes, followed from since=0 with limit=3', () => {
      let server: RunningServer
      let writer: Writer

      before(async () => {
        server = await startServer({ driver })
        writer = new Writer(server.baseUrl)
        for (let i = 0; i < 25; i++) await writer.create(`p${String(i).padStart(2, '0')}`)
        for (const id of ['p03', 'p07', 'p11']) await writer.update(id, `Renamed ${id}`)
        await writer.update('p15', 'Patched p15', true)
        for (const id of ['p01', 'p05', 'p09', 'p13', 'p17']) await writer.delete(id)
        await writer.update('p00', 'Renamed last')
        assert.equal(writer.current.size, 20)
      })
      after(() => server.close())

      it('delivers exactly the live persons, in the order of their last writes, each id once in all', async () => {
        const followed = await followChanges(server.baseUrl, '0', 3)
        assertCopyFromZero(followed.items, writer)
      })

      it('gives exactly what the concatenation of every GET /persons page gives, every field, each etag the ETag of a GET', async () => {
        const followed = await followChanges(server.baseUrl, '0', 3)
        const pages = await concatenatedPages(server.baseUrl, 3)
        assert.equal(pages.length, 20)
        const copy = applyChanges(new Map(), followed.items)
        assert.deepEqual([...copy.values()].sort(byId), pages)
      })

      it('lists no tombstones from since=0, with or without a limit', async () => {
        const first = await changesSince(server.baseUrl, { since: '0', limit: 3 })
        assert.deepEqual(first.changes.filter(isTombstone), [])
        assert.equal(first.changes.length, 3)
        const whole = await changesSince(server.baseUrl, { since: '0' })
        assert.deepEqual(whole.changes.filter(isTombstone), [])
        assert.deepEqual(whole.changes, writer.expectedSince(0, true))
      })

      it('answers { changes, next, complete } with at most 3 items, complete=false and a Link rel="next" with limit=3 on each cut answer', async () => {
        let token = '0'
        const answers: FeedBody[] = []
        for (let n = 0; n < 20; n++) {
          const answer = await readChanges(server.baseUrl, { since: token, limit: 3 })
          const body = feedBody(answer)
          answers.push(body)
          assert.ok(body.changes.length <= 3, `${body.changes.length} items with limit=3`)
          assertNoRepeats(body, `answer ${n}`)
          const next = linkTargets(answer.headers.get('link')).get('next')
          if (body.complete) {
            assert.equal(next, undefined, 'a complete answer has no Link rel="next"')
            break
          }
          assert.equal(body.changes.length, 3, 'a cut answer is full')
          assert.ok(next !== undefined, `a cut answer has a Link rel="next": ${answer.headers.get('link')}`)
          const url = new URL(next, server.baseUrl)
          assert.equal(url.pathname, '/persons')
          assert.equal(url.searchParams.get('since'), body.next, "the Link names the answer's next")
          assert.equal(url.searchParams.get('limit'), '3', 'the Link keeps the limit')
          assert.deepEqual(url.searchParams.getAll('since').length, 1)
          // the Link, followed as it is, answers what `next` does
          const viaLink = await request(server.baseUrl, `${url.pathname}${url.search}`)
          assert.equal(viaLink.text, (await readChanges(server.baseUrl, { since: body.next, limit: 3 })).text)
          token = body.next
        }
        assert.ok(answers.length >= 7, `${answers.length} answers for 20 live persons, 3 per answer`)
        assert.equal(answers.at(-1)!.complete, true)
      })

      it('answers the rest at once without limit: the default limit (100) does not cut 20', async () => {
        const first = await changesSince(server.baseUrl, { since: '0', limit: 3 })
        const rest = await changesSince(server.baseUrl, { since: first.next })
        assert.equal(rest.complete, true)
        assertCopyFromZero([...first.changes, ...rest.changes], writer)
      })

      it('answers empty changes with next equal to the token sent, once there is nothing new', async () => {
        const { next } = await followChanges(server.baseUrl, '0', 3)
        for (const limit of [undefined, 1, 3, 1000]) {
          const body = await changesSince(server.baseUrl, limit === undefined ? { since: next } : { since: next, limit })
          assert.deepEqual(body, { changes: [], next, complete: true })
        }
      })
    })

    describe('writes between two reads', () => {
      let server: RunningServer
      let writer: Writer
      let sequence = 0
      const newId = (): string => `w${++sequence}`

      before(async () => {
        server = await startServer({ driver })
        writer = new Writer(server.baseUrl)
        for (let i = 0; i < 3; i++) await writer.create(newId())
      })
      after(() => server.close())

      /** The token of "now": following the feed to its end. */
      async function now(): Promise<string> {
        return (await followChanges(server.baseUrl, '0')).next
      }

      it('list a person updated twice once, with its latest state, its etag the ETag of a GET', async () => {
        const id = newId()
        await writer.create(id, 'first')
        const token = await now()
        await writer.update(id, 'second')
        const latest = await writer.update(id, 'third', true)
        const body = await changesSince(server.baseUrl, { since: token })
        assert.deepEqual(body.changes, [latest])
        assert.equal(body.complete, true)
        const stored = await getPerson(server.baseUrl, id)
        assert.equal(stored.etag, latest.etag)
        assert.deepEqual(stored.body, { person_id: id, person_name: 'third', change_date: latest.change_date })
      })

      it('list a person deleted and created again once, live, with the re-created state', async () => {
        const id = newId()
        await writer.create(id, 'before')
        const token = await now()
        await writer.delete(id)
        const again = await writer.create(id, 'after')
        const body = await changesSince(server.baseUrl, { since: token })
        assert.deepEqual(body.changes, [again])
        assert.equal((await getPerson(server.baseUrl, id)).etag, again.etag)
      })

      it('list a deleted person as exactly { person_id, deleted: true }', async () => {
        const id = newId()
        await writer.create(id)
        const token = await now()
        await writer.delete(id)
        const answer = await readChanges(server.baseUrl, { since: token })
        const body = feedBody(answer)
        assert.deepEqual(body.changes, [{ person_id: id, deleted: true }])
        // exactly these members, in the JSON text too
        assert.match(answer.text, new RegExp(`\\{"person_id":"${id}","deleted":true\\}|\\{"deleted":true,"person_id":"${id}"\\}`))
      })

      it('list a person created and deleted after the token as a tombstone (deletes are never missed)', async () => {
        const token = await now()
        const id = newId()
        await writer.create(id)
        await writer.delete(id)
        const body = await changesSince(server.baseUrl, { since: token })
        assert.deepEqual(body.changes, [{ person_id: id, deleted: true }])
      })

      it('list each id written once, in the order of its last write', async () => {
        const token = await now()
        const mark = writer.mark()
        const ids = [newId(), newId(), newId(), newId()]
        for (const id of ids) await writer.create(id)
        await writer.update(ids[0]!, 'a')
        await writer.delete(ids[2]!)
        await writer.update(ids[1]!, 'b', true)
        await writer.update(ids[0]!, 'c')
        const body = await changesSince(server.baseUrl, { since: token })
        assertNoRepeats(body, 'mixed writes')
        assert.deepEqual(
          body.changes.map((c) => c.person_id),
          [ids[3], ids[2], ids[1], ids[0]],
        )
        assert.deepEqual(body.changes, writer.expectedSince(mark))
      })

      it('never goes back: each answer from a later token holds exactly the writes after the earlier one, and older tokens still answer (random writes, seeded)', async (t) => {
        t.diagnostic(`seed ${SEED} (FEED_TEST_SEED=${SEED} replays it)`)
        const random = seededRandom(SEED)
        const start = await now()
        const saved: { token: string; mark: number }[] = [{ token: start, mark: writer.mark() }]
        let token = start
        let mark = writer.mark()
        let emptyRounds = 0
        for (let round = 0; round < 40; round++) {
          const writes = Math.floor(random() * 4)
          for (let w = 0; w < writes; w++) await writer.randomWrite(random, 'r', 6)
          const limit = 1 + Math.floor(random() * 4)
          const followed = await followChanges(server.baseUrl, token, limit)
          const context = `round ${round}, ${writes} writes, limit ${limit}`
          for (const body of followed.bodies) assertNoRepeats(body, context)
          assert.deepEqual(followed.items, writer.expectedSince(mark), context)
          if (writes === 0) {
            emptyRounds++
            assert.equal(followed.next, token, `${context}: nothing new, so next is the token sent`)
          }
          token = followed.next
          mark = writer.mark()
          saved.push({ token, mark })
          // an older token still answers, with everything since its own moment
          const old = saved[Math.floor(random() * saved.length)]!
          assert.deepEqual((await followChanges(server.baseUrl, old.token, 2)).items, writer.expectedSince(old.mark), `${context}, from an older token`)
        }
        assert.ok(emptyRounds > 0 && emptyRounds < 40, `rounds with no writes: ${emptyRounds}`)
      })
    })

    describe('collection pages', () => {
      let server: RunningServer
      let writer: Writer

      before(async () => {
        server = await startServer({ driver })
        writer = new Writer(server.baseUrl)
      })
      after(() => server.close())

      it('carry Link: </persons?since=…>; rel="changes" on every page, the empty collection\'s too', async () => {
        const empty = await request(server.baseUrl, '/persons')
        assert.equal(empty.status, 200)
        const emptyToken = changesToken(empty)
        assert.deepEqual(await changesSince(server.baseUrl, { since: emptyToken }), { changes: [], next: emptyToken, complete: true })
        for (let i = 0; i < 7; i++) await writer.create(`c${i}`)
        for (const query of ['', '?limit=2', '?limit=2&after=c1', '?limit=2&after=c5', '?after=zzz', '?limit=1000']) {
          const page = await request(server.baseUrl, `/persons${query}`)
          assert.equal(page.status, 200, query)
          const token = changesToken(page)
          // the moment it was read: nothing after it yet
          assert.deepEqual(await changesSince(server.baseUrl, { since: token }), { changes: [], next: token, complete: true }, query)
        }
        const head = await rawRequest(server.baseUrl, 'HEAD', '/persons?limit=2')
        assert.match(head.headers.get('link') ?? '', /<\/persons\?since=[^>]+>;\s*rel="changes"/)
      })

      it('name a token that, followed after writes, delivers exactly those writes', async () => {
        const page = await request(server.baseUrl, '/persons?limit=3')
        const token = changesToken(page)
        const mark = writer.mark()
        await writer.create('d1')
        await writer.update('c0', 'changed')
        await writer.delete('c3')
        await writer.create('d2')
        await writer.update('d1', 'changed too', true)
        const followed = await followChanges(server.baseUrl, token)
        assert.deepEqual(followed.items, writer.expectedSince(mark))
        assert.deepEqual(
          followed.items.map((i) => i.person_id),
          ['c0', 'c3', 'd2', 'd1'],
        )
      })

      it("paged through while writers write, then followed from the first page's token, give exactly the stored collection", async () => {
        const random = seededRandom(SEED + 1)
        const copy = new Map<string, LiveItem>()
        let path: string | undefined = '/persons?limit=2'
        let token: string | undefined
        while (path !== undefined) {
          const page = await request(server.baseUrl, path)
          token ??= changesToken(page)
          for (const person of page.json as Omit<LiveItem, 'etag'>[]) {
            const stored = await getPerson(server.baseUrl, person.person_id)
            // the page and a later GET may differ: the feed from the token puts it right
            if (stored.status === 200) copy.set(person.person_id, { ...stored.body!, etag: stored.etag! })
          }
          for (let w = 0; w < 3; w++) await writer.randomWrite(random, 'c', 9)
          path = linkTargets(page.headers.get('link')).get('next')
        }
        applyChanges(copy, (await followChanges(server.baseUrl, token!, 4)).items)
        assertCopyEquals(copy, (await storedCollection(server.baseUrl)).persons)
      })
    })

    describe('validators of a feed answer', () => {
      let server: RunningServer
      let writer: Writer

      before(async () => {
        server = await startServer({ driver })
        writer = new Writer(server.baseUrl)
        for (let i = 0; i < 5; i++) await writer.create(`v${i}`)
      })
      after(() => server.close())

      it('are a strong ETag and Cache-Control: no-cache, with Vary: Accept (the same URL answers a stream)', async () => {
        for (const query of [{ since: '0' }, { since: '0', limit: 2 }]) {
          const answer = await readChanges(server.baseUrl, query)
          assert.equal(answer.status, 200)
          assert.match(answer.etag ?? '', STRONG_ETAG)
          assert.equal(answer.headers.get('cache-control'), 'no-cache')
          const vary = (answer.headers.get('vary') ?? '').toLowerCase().split(/\s*,\s*/)
          assert.ok(vary.includes('accept'), `Vary: ${answer.headers.get('vary')}`)
        }
      })

      it('answer If-None-Match with 304 (its ETag, no body) while nothing changed, and 200 after a write', async () => {
        const { next } = await followChanges(server.baseUrl, '0')
        for (const since of ['0', next]) {
          const first = await readChanges(server.baseUrl, { since })
          const etag = first.etag!
          for (const ifNoneMatch of [etag, `"other", ${etag}`, `W/${etag}`]) {
            const raw = await rawRequest(server.baseUrl, 'GET', feedPath({ since }), { 'if-none-match': ifNoneMatch })
            assert.equal(raw.status, 304, `since=${since}, If-None-Match: ${ifNoneMatch}`)
            assert.equal(raw.body.length, 0, 'a 304 has no body')
            assert.equal(raw.headers.get('etag'), etag)
            assert.equal(raw.headers.get('cache-control'), 'no-cache')
          }
          const other = await readChanges(server.baseUrl, { since }, { 'if-none-match': '"not-it"' })
          assert.equal(other.status, 200)
        }
        const before = await readChanges(server.baseUrl, { since: next })
        const beforeZero = await readChanges(server.baseUrl, { since: '0' })
        const written = await writer.update('v2', 'written')
        const after = await readChanges(server.baseUrl, { since: next }, { 'if-none-match': before.etag! })
        assert.equal(after.status, 200, 'a write after the token changes the answer')
        assert.deepEqual(feedBody(after).changes, [written])
        assert.notEqual(after.etag, before.etag)
        const afterZero = await readChanges(server.baseUrl, { since: '0' }, { 'if-none-match': beforeZero.etag! })
        assert.equal(afterZero.status, 200)
      })

      it('are equal only for equal bytes, and each answer is the one its request asked for (identity and gzip, one write at a time over 60 writes)', async () => {
        const bytesByTag = new Map<string, string>()
        const tokens = ['0']
        let answers = 0
        const random = seededRandom(SEED + 2)
        // one write per step, so that every moment of the store is asked about, from every kind of token
        for (let step = 0; step < 60; step++) {
          tokens.push((await followChanges(server.baseUrl, '0')).next)
          const asked = new Set(['0', tokens.at(-1)!, tokens.at(-2)!, tokens[Math.floor(random() * tokens.length)]!])
          for (const since of asked) {
            for (const limit of [undefined, 1, 3]) {
              for (const coding of ['identity', 'gzip']) {
                const path = feedPath(limit === undefined ? { since } : { since, limit })
                const raw = await rawRequest(server.baseUrl, 'GET', path, coding === 'gzip' ? { 'accept-encoding': 'gzip' } : {})
                assert.equal(raw.status, 200)
                const etag = raw.headers.get('etag')!
                assert.match(etag, STRONG_ETAG)
                const bytes = `${raw.headers.get('content-encoding') ?? 'identity'}:${raw.body.toString('base64')}`
                const seen = bytesByTag.get(etag)
                if (seen !== undefined) {
                  assert.equal(bytes, seen, `step ${step}: GET ${path} carries ${etag}, which an answer with other bytes carried before`)
                }
                bytesByTag.set(etag, bytes)
                answers++
                // and the bytes are this request's answer, not another's that shares its tag
                if (coding === 'identity' && (since === '0' || since === tokens.at(-1))) {
                  const body = JSON.parse(raw.body.toString('utf8')) as FeedBody
                  const expected = since === '0' ? writer.expectedSince(0, true).slice(0, limit ?? 100) : []
                  assert.deepEqual(body.changes, expected, `step ${step}: GET ${path} (ETag ${etag})`)
                }
              }
            }
          }
          await writer.randomWrite(random, 'v', 7)
        }
        assert.ok(answers >= 1000, `${answers} answers`)
        // different answers were seen, not one answer many times
        assert.ok(new Set(bytesByTag.values()).size > 100, `${new Set(bytesByTag.values()).size} distinct bodies`)
      })

      it('answer HEAD with exactly the status and headers of GET, and no body', async () => {
        const { next } = await followChanges(server.baseUrl, '0')
        for (const path of [feedPath({ since: '0' }), feedPath({ since: '0', limit: 2 }), feedPath({ since: next })]) {
          const get = await rawRequest(server.baseUrl, 'GET', path)
          const head = await rawRequest(server.baseUrl, 'HEAD', path)
          assert.equal(head.status, 200)
          assert.deepEqual(withoutDate(head.headers), withoutDate(get.headers), path)
          assert.equal(head.body.length, 0)
        }
      })
    })

    describe('bad queries', () => {
      let server: RunningServer
      let writer: Writer
      let personEtag: string
      let current: string
      let old: string
      let ahead: string

      before(async () => {
        server = await startServer({ driver })
        writer = new Writer(server.baseUrl)
        personEtag = (await writer.create('b1')).etag
        old = (await followChanges(server.baseUrl, '0')).next
        await writer.create('b2')
        current = (await followChanges(server.baseUrl, '0')).next
        const parts = tokenParts(current)
        ahead = makeToken({ epoch: parts.epoch, revision: parts.revision + 10 })
      })
      after(() => server.close())

      const cases: readonly (readonly [string, () => string])[] = [
        ['an empty since', () => '/persons?since='],
        ['since=abc', () => '/persons?since=abc'],
        ['since=-1', () => '/persons?since=-1'],
        ['an overlong since', () => `/persons?since=${'A'.repeat(5000)}`],
        ["a person's ETag, quotes and all, as since", () => `/persons?${new URLSearchParams({ since: personEtag }).toString()}`],
        ['since given twice', () => '/persons?since=0&since=0'],
        ['limit=0', () => '/persons?since=0&limit=0'],
        ['limit=1001', () => '/persons?since=0&limit=1001'],
        ['limit=x', () => '/persons?since=0&limit=x'],
        ['wait=0', () => `/persons?since=${current}&wait=0`],
        ['wait=61', () => `/persons?since=${current}&wait=61`],
        ['wait=x', () => `/persons?since=${current}&wait=x`],
        ['since with after', () => '/persons?since=0&after=b1'],
        ['a current token with after', () => `/persons?since=${current}&after=b1`],
      ]
      for (const [name, path] of cases) {
        it(`answers 400 problem+json to ${name}`, async () => {
          const answer = await request(server.baseUrl, path(), { signal: AbortSignal.timeout(10_000) })
          assertProblem(answer, 400, path())
        })
      }

      it('never answers 5xx to random since, limit and wait: only 200, 400 or 410, every error a problem', async () => {
        const text = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.stringMatching(/^[0-9a-zA-Z._~-]{0,20}$/))
        const since = fc.oneof(text, fc.constantFrom('0', old, ahead, `${current}.1`, `${tokenParts(current).epoch}.`, '00', '0.0'))
        const number = fc.oneof(text, fc.integer({ min: -5, max: 2000 }).map(String))
        await fc.assert(
          fc.asyncProperty(since, fc.option(number), fc.option(number), async (s, limit, wait) => {
            const params = new URLSearchParams({ since: s })
            if (limit !== null) params.set('limit', limit)
            if (wait !== null) params.set('wait', wait)
            const path = `/persons?${params.toString()}`
            // every `since` here answers at once, so a held request is a failure, not a wait
            const answer = await request(server.baseUrl, path, { signal: AbortSignal.timeout(10_000) })
            assert.ok([200, 400, 410].includes(answer.status), `${path} answered ${answer.status}: ${answer.text}`)
            if (answer.status !== 200) assertProblem(answer, answer.status, path)
            else feedBody(answer)
          }),
          { numRuns: 300, includeErrorInReport: true },
        )
      })
    })

    describe('a token the database can no longer answer', () => {
      let server: RunningServer
      let writer: Writer

      before(async () => {
        server = await startServer({ driver })
        writer = new Writer(server.baseUrl)
        for (let i = 0; i < 3; i++) await writer.create(`g${i}`)
      })
      after(() => server.close())

      async function assertGone(baseUrl: string, since: string, context: string): Promise<void> {
        const answer = await readChanges(baseUrl, { since })
        assertProblem(answer, 410, context)
        assert.equal(answer.headers.get('cache-control'), 'no-store', `${context}: a 410 is not to be stored`)
        // with If-None-Match and with wait it is still gone, not a 304 nor a held request
        assert.equal((await readChanges(baseUrl, { since, wait: 5 })).status, 410, `${context}, with wait`)
      }

      it('answers 410 to a token from another database', async () => {
        const other = await startServer({ driver })
        try {
          const theirs = (await followChanges(server.baseUrl, '0')).next
          const page = changesToken(await request(server.baseUrl, '/persons'))
          await assertGone(other.baseUrl, theirs, 'a feed token from another database')
          await assertGone(other.baseUrl, page, 'a page token from another database')
          // the fresh database answers its own tokens and since=0
          assert.deepEqual((await changesSince(other.baseUrl, { since: '0' })).changes, [])
        } finally {
          await other.close()
        }
      })

      it('answers 410 to a token ahead of the database', async () => {
        const current = tokenParts((await followChanges(server.baseUrl, '0')).next)
        await assertGone(server.baseUrl, makeToken({ ...current, revision: current.revision + 1 }), 'a token one revision ahead')
        await assertGone(server.baseUrl, makeToken({ ...current, revision: current.revision + 1_000_000 }), 'a token far ahead')
        // the current one itself is fine
        assert.equal((await readChanges(server.baseUrl, { since: makeToken(current) })).status, 200)
      })

      it('answers 410 to a token older than the tombstones still kept, and 200 to one after the purged delete', async () => {
        await writer.create('gone')
        const beforeDelete = (await followChanges(server.baseUrl, '0')).next
        await writer.delete('gone')
        const afterDelete = (await followChanges(server.baseUrl, '0')).next
        const later = await writer.create('after-purge')
        // a purge of every tombstone committed so far, as a retention does once they are old
        await server.store.purgeTombstones(Date.now() + 60_000)
        await assertGone(server.baseUrl, beforeDelete, 'a token from before a purged delete')
        assert.deepEqual((await changesSince(server.baseUrl, { since: afterDelete })).changes, [later])
      })

      it('answers 410, once the retention has passed, to a token from before a delete, on the command started with TOMBSTONE_RETENTION=1s', async (t) => {
        const database = await driver.createDatabase()
        const command = await spawnServer(database.url, [], undefined, { ...database.env, TOMBSTONE_RETENTION: '1s' })
        try {
          const writer = new Writer(command.baseUrl)
          await writer.create('kept')
          await writer.create('deleted')
          const beforeDelete = (await followChanges(command.baseUrl, '0')).next
          await writer.delete('deleted')
          const afterDelete = (await followChanges(command.baseUrl, '0')).next
          // within the retention the delete is still there to be told
          assert.deepEqual((await changesSince(command.baseUrl, { since: beforeDelete })).changes, [{ person_id: 'deleted', deleted: true }])
          const deletedAt = performance.now()
          let status = 200
          while (status === 200) {
            assert.ok(performance.now() - deletedAt < 10_000, 'the tombstone outlived a 1 s retention by 9 s')
            await new Promise((resolve) => setTimeout(resolve, 50))
            status = (await readChanges(command.baseUrl, { since: beforeDelete })).status
          }
          t.diagnostic(`410 after ${(performance.now() - deletedAt).toFixed(0)} ms`)
          await assertGone(command.baseUrl, beforeDelete, 'a token from before a delete past the retention')
          assert.deepEqual(await changesSince(command.baseUrl, { since: afterDelete }), { changes: [], next: afterDelete, complete: true })
        } finally {
          await stopProcess(command)
          await database.cleanup()
        }
      })

      it('still lets a client start again from since=0 after a purge and follow it, limit=2, to the stored collection', async () => {
        // after a 410 the contract sends the client to since=0: that must then get it a whole copy
        const followed = await followChanges(server.baseUrl, '0', 2)
        assertCopyEquals(applyChanges(new Map(), followed.items), (await storedCollection(server.baseUrl)).persons)
      })
    })

    describe('a restart of the server on the same database', () => {
      let database: TestDatabase
      let server: RunningServer | undefined

      before(async () => {
        database = await driver.createDatabase()
      })
      after(async () => {
        await server?.stop()
        await database.cleanup()
      })

      it('keeps tokens valid: one from before the restart answers exactly what changed since', async () => {
        server = await startServer({ driver, database })
        const writer = new Writer(server.baseUrl)
        await writer.create('s1')
        await writer.create('s2')
        const token = (await followChanges(server.baseUrl, '0')).next
        const mark = writer.mark()
        await writer.update('s1', 'before restart')
        const lastBefore = (await followChanges(server.baseUrl, '0')).next
        await server.stop()

        server = await startServer({ driver, database })
        writer.baseUrl = server.baseUrl
        assert.deepEqual(await changesSince(server.baseUrl, { since: lastBefore }), { changes: [], next: lastBefore, complete: true })
        await writer.delete('s2')
        await writer.create('s3')
        assert.deepEqual((await followChanges(server.baseUrl, token)).items, writer.expectedSince(mark))
        assert.deepEqual((await changesSince(server.baseUrl, { since: lastBefore })).changes, writer.expectedSince(mark + 1))
      })
    })
  })
}
