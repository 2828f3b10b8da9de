/**
 * The client's changes() iterator and mirror() against the real service over real HTTP, once per
 * driver: in-process servers (startServer) for most, a TCP proxy in front of them when the server
 * behind one address must restart or be swapped for another database, and two spawned server
 * processes sharing one database. What crossed the wire is read from the server's own socket.
 */
import assert from 'node:assert/strict'
import { after, afterEach, before, beforeEach, describe, it } from 'node:test'
import {
  AlreadyExistsError,
  BadRequestError,
  IfMatchClient,
  NotFoundError,
  PreconditionFailedError,
  PreconditionRequiredError,
  ConflictError,
  ProblemError,
  type ChangesBatch,
  type FeedChange,
  type PersonsMirror,
} from '../../src/client/client.js'
import { spawnServer, spawnServers, stopProcess, type ServerProcess } from '../helpers/spawn-server.js'
import { startServer, type RunningServer } from '../helpers/start-server.js'
import { proxyToDatabase, TcpProxy, throughProxy } from '../helpers/tcp-proxy.js'
import { TEST_DRIVERS, type TestDatabase } from '../helpers/test-stores.js'
import { recordWire, type WireLog } from '../helpers/wire-log.js'

// only to turn a hang into a failure, never to judge speed
const BOUND_MS = 15_000
// a long poll held this long would blow BOUND_MS: an answer within the bound is a wake-up, not a timeout
const LONG_WAIT_S = 30
const WRITERS = 4
const OPS_PER_WRITER = 50

interface Seen {
  readonly person_id: string
  readonly person_name: string
  readonly change_date: string
  readonly etag: string
}

/** Rejects with a failure naming `what` when `promise` has not settled within `ms`. */
async function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** The next batch of `feed`, which must come within the bound. */
async function nextBatch(feed: AsyncGenerator<ChangesBatch, void, undefined>): Promise<ChangesBatch> {
  const result = await within(BOUND_MS, feed.next(), 'the next batch')
  assert.equal(result.done, false, 'the feed ended')
  return result.value as ChangesBatch
}

/** Resolves once `condition` holds for the mirror, checked now and after every batch it applies. */
async function until(mirror: PersonsMirror, condition: () => boolean, what: string): Promise<void> {
  let off = (): void => {}
  try {
    await within(
      BOUND_MS,
      new Promise<void>((resolve) => {
        if (condition()) resolve()
        off = mirror.onChange(() => {
          if (condition()) resolve()
        })
      }),
      what,
    )
  } finally {
    off()
  }
}

function byId(a: { person_id: string }, b: { person_id: string }): number {
  // ids are ASCII, so UTF-16 order is the service's code-point order
  return a.person_id < b.person_id ? -1 : a.person_id > b.person_id ? 1 : 0
}

/** The collection as a reader sees it: every page concatenated, each person with the ETag a GET of it answers. */
async function collection(baseUrl: string): Promise<Seen[]> {
  const reader = new IfMatchClient({ baseUrl })
  const persons: Seen[] = []
  for await (const p of reader.list({ limit: 1000 })) {
    const read = await reader.read(p.person_id)
    persons.push({ person_id: p.person_id, person_name: p.person_name, change_date: p.change_date, etag: read.etag })
  }
  return persons
}

/** What the mirror holds, in the collection's order. */
function mirrored(mirror: PersonsMirror): Seen[] {
  return [...mirror.persons.values()].map((p) => ({ person_id: p.person_id, person_name: p.person_name, change_date: p.change_date, etag: p.etag })).sort(byId)
}

/** Every change of `batches`, in order, as `id` or `-id` for a tombstone. */
function ids(batches: readonly ChangesBatch[]): string[] {
  return batches.flatMap((b) => b.changes.map((c: FeedChange) => (c.deleted === true ? `-${c.person_id}` : c.person_id)))
}

/** The answer of the feed to `since`, read without the client. */
async function feedAnswer(baseUrl: string, since: string): Promise<{ status: number; body: { changes: unknown[]; next: string } }> {
  const response = await fetch(`${baseUrl}/persons?since=${encodeURIComponent(since)}`)
  return { status: response.status, body: (await response.json()) as { changes: unknown[]; next: string } }
}

/** Counts the feed requests with `wait` that `server` has received and not answered yet. */
function heldPolls(server: RunningServer): { count(): number } {
  let held = 0
  server.app.server.on('request', (request, response) => {
    if (!(request.url ?? '').includes('wait=')) return
    held++
    response.on('close', () => {
      held--
    })
  })
  return { count: () => held }
}

/** A fetch for the client that counts its requests with `wait` whose answer has not arrived yet. */
function countingFetch(): { fetch: typeof fetch; inFlight(): number } {
  let inFlight = 0
  return {
    fetch: async (input, init) => {
      const polling = String(input instanceof Request ? input.url : input).includes('wait=')
      if (polling) inFlight++
      try {
        return await fetch(input, init)
      } finally {
        if (polling) inFlight--
      }
    },
    inFlight: () => inFlight,
  }
}

function portOf(baseUrl: string): number {
  return Number(new URL(baseUrl).port)
}

/**
 * One writer's random work on a shared set of ids, through its own client: creates, replaces with
 * the ETag it last saw, updates (read, change, write) and deletes. Collisions with the other
 * writers are the point; the answers they give (409, 412, 404, 428) are expected and skipped.
 */
async function randomWrites(client: IfMatchClient, pool: readonly string[], ops: number, label: string): Promise<void> {
  for (let i = 0; i < ops; i++) {
    const id = pool[Math.floor(Math.random() * pool.length)]!
    const roll = Math.random()
    try {
      if (roll < 0.3) await client.create({ person_id: id, person_name: `${label} created ${i}` })
      else if (roll < 0.55) await client.replace(id, { person_name: `${label} replaced ${i}` })
      else if (roll < 0.8) await client.update(id, (p) => ({ person_name: `${p.person_name.slice(0, 150)} +${label}${i}` }), { maxAttempts: 3 })
      else await client.remove(id, { etag: (await client.read(id)).etag })
    } catch (error) {
      const expected =
        error instanceof AlreadyExistsError ||
        error instanceof NotFoundError ||
        error instanceof PreconditionFailedError ||
        error instanceof PreconditionRequiredError ||
        error instanceof ConflictError
      if (!expected) throw error
    }
  }
}

/** Runs the writers at once, then writes `sentinel` last: once a mirror holds it, it holds everything before it. */
async function writeConcurrently(baseUrl: string, prefix: string, sentinel: string): Promise<void> {
  const pool = Array.from({ length: 12 }, (_, i) => `${prefix}${i}`)
  await Promise.all(Array.from({ length: WRITERS }, (_, w) => randomWrites(new IfMatchClient({ baseUrl }), pool, OPS_PER_WRITER, `w${w}`)))
  await new IfMatchClient({ baseUrl }).create({ person_id: sentinel, person_name: 'the last write' })
}

for (const driver of TEST_DRIVERS) {
  describe(`changes() and mirror() against the service on ${driver.name}`, () => {
    let n = 0
    /** A fresh id prefix per test, so tests can tell their persons apart. */
    const newPrefix = (): string => `c${++n}-${Date.now().toString(36)}-`
    let controller: AbortController
    let mirrors: PersonsMirror[]
    /** Ends every iterator and mirror of the test; called before any server they follow stops. */
    const stopFollowing = async (): Promise<void> => {
      controller.abort()
      await Promise.all(mirrors.map((m) => m.close()))
    }

    beforeEach(() => {
      controller = new AbortController()
      mirrors = []
    })
    afterEach(stopFollowing)

    describe('one server', () => {
      let server: RunningServer
      let wire: WireLog
      let client: IfMatchClient

      before(async () => {
        server = await startServer({ driver })
        wire = recordWire(server)
      })
      after(async () => server.close())
      beforeEach(() => {
        client = new IfMatchClient({ baseUrl: server.baseUrl })
      })

      it('yields, from 0, batches that together are the whole collection, each person with the ETag a GET answers', async () => {
        const prefix = newPrefix()
        for (let i = 0; i < 7; i++) await client.create({ person_id: `${prefix}${i}`, person_name: `name ${i}` })
        const feed = client.changes({ limit: 3, signal: controller.signal })
        const batches: ChangesBatch[] = []
        do batches.push(await nextBatch(feed))
        while (!batches.at(-1)!.complete)

        assert.ok(batches.length >= 3, `7 persons at 3 a batch take 3 batches at least, got ${batches.length}`)
        assert.deepEqual(
          batches.map((b) => b.complete),
          [...batches.slice(1).map(() => false), true],
        )
        assert.equal(batches[0]!.since, '0')
        for (let i = 1; i < batches.length; i++) assert.equal(batches[i]!.since, batches[i - 1]!.next)
        assert.ok(
          batches.every((b) => !b.reset && b.changes.every((c) => c.deleted !== true)),
          'from 0: live persons only',
        )
        const fromFeed = batches
          .flatMap((b) => b.changes as Seen[])
          .map((p) => ({ person_id: p.person_id, person_name: p.person_name, change_date: p.change_date, etag: p.etag }))
        assert.deepEqual(fromFeed.sort(byId), await collection(server.baseUrl))
      })

      it('resumes from a kept next with only what was written since, deletes as tombstones, in commit order', async () => {
        const prefix = newPrefix()
        const [a, b, c] = [`${prefix}a`, `${prefix}b`, `${prefix}c`]
        for (const id of [a, b]) await client.create({ person_id: id, person_name: id })
        let feed = client.changes({ signal: controller.signal })
        let batch = await nextBatch(feed)
        while (!batch.complete) batch = await nextBatch(feed)
        const kept = batch.next
        await feed.return()

        await client.replace(b, { person_name: 'b renamed' })
        await client.create({ person_id: c, person_name: c })
        await client.remove(a)
        feed = client.changes({ since: kept, signal: controller.signal })
        batch = await nextBatch(feed)
        assert.equal(batch.since, kept)
        assert.equal(batch.complete, true)
        assert.deepEqual(
          batch.changes.map((ch) => (ch.deleted === true ? `-${ch.person_id}` : `${ch.person_id}=${ch.person_name}`)),
          [`${b}=b renamed`, `${c}=${c}`, `-${a}`],
        )
        assert.deepEqual(batch.changes[2], { person_id: a, deleted: true })
      })

      it('keeps a mirror equal to the collection, dropping the persons that are deleted', async () => {
        const prefix = newPrefix()
        for (let i = 0; i < 5; i++) await client.create({ person_id: `${prefix}${i}`, person_name: `name ${i}` })
        const mirror = client.mirror({ wait: 2, signal: controller.signal })
        mirrors.push(mirror)
        await within(BOUND_MS, mirror.ready, 'the mirror catching up')
        assert.equal(mirror.caughtUp, true)
        assert.deepEqual(mirrored(mirror), await collection(server.baseUrl))

        const events: ChangesBatch[] = []
        mirror.onChange((batch) => events.push(batch))
        await client.remove(`${prefix}1`)
        await client.remove(`${prefix}3`)
        await until(mirror, () => !mirror.persons.has(`${prefix}1`) && !mirror.persons.has(`${prefix}3`), 'the deletes reaching the mirror')
        assert.ok(mirror.persons.has(`${prefix}0`))
        assert.deepEqual(
          ids(events).filter((id) => id.startsWith('-')),
          [`-${prefix}1`, `-${prefix}3`],
        )
        assert.deepEqual(mirrored(mirror), await collection(server.baseUrl))
      })

      it('answers a long poll as soon as a write commits, long before its wait runs out', async () => {
        const feed = client.changes({ wait: LONG_WAIT_S, signal: controller.signal })
        let batch = await nextBatch(feed)
        while (!batch.complete) batch = await nextBatch(feed)
        wire.clear()
        const held = heldPolls(server)
        const pending = nextBatch(feed)
        // the long poll must be held by the server before the write, or this tests nothing
        await within(
          BOUND_MS,
          (async () => {
            while (held.count() === 0) await new Promise((r) => setTimeout(r, 10))
          })(),
          'the long poll reaching the server',
        )
        const id = `${newPrefix()}woken`
        await new IfMatchClient({ baseUrl: server.baseUrl }).create({ person_id: id, person_name: 'wake up' })
        batch = await pending
        assert.deepEqual(ids([batch]), [id])
        const polls = (await wire.entries()).filter((e) => e.url.includes('since='))
        assert.ok(
          polls.some((e) => e.url.includes(`wait=${LONG_WAIT_S}`) && e.status === 200),
          JSON.stringify(polls),
        )
      })

      it('revalidates idle long polls with If-None-Match, and the server answers them 304', async () => {
        const feed = client.changes({ wait: 1, signal: controller.signal })
        let batch = await nextBatch(feed)
        while (!batch.complete) batch = await nextBatch(feed)
        wire.clear()
        // nothing is written: the iterator keeps polling without yielding, and the wire shows how
        void feed.next().catch(() => {})
        const notModified = await within(
          BOUND_MS,
          (async () => {
            for (;;) {
              const polls = (await wire.entries()).filter((e) => e.url.includes('since=') && e.ifNoneMatch !== undefined && e.status === 304)
              if (polls.length >= 2) return polls
              await new Promise((r) => setTimeout(r, 50))
            }
          })(),
          'two 304 answers to idle long polls',
        )
        for (const poll of notModified) {
          assert.match(poll.url, /[?&]wait=1(&|$)/)
          assert.match(poll.url, new RegExp(`[?&]since=${encodeURIComponent(batch.next).replace(/[.]/g, '\\.')}(&|$)`))
        }
      })

      it('ends, without an error, when its signal aborts in the middle of a long poll', async () => {
        const feed = client.changes({ wait: LONG_WAIT_S, signal: controller.signal })
        let batch = await nextBatch(feed)
        while (!batch.complete) batch = await nextBatch(feed)
        const pending = feed.next()
        controller.abort()
        assert.deepEqual(await within(BOUND_MS, pending, 'the feed ending'), { done: true, value: undefined })
      })

      it('throws a BadRequestError typed from the problem for a malformed token', async () => {
        const feed = client.changes({ since: 'not a token!', signal: controller.signal })
        const error = await within(BOUND_MS, feed.next(), 'the answer').then(
          () => undefined,
          (e: unknown) => e,
        )
        assert.ok(error instanceof BadRequestError, String(error))
        assert.equal(error.status, 400)
      })

      it(`keeps a mirror equal to the collection through ${WRITERS} writers x ${OPS_PER_WRITER} random writes at once`, async () => {
        const mirror = client.mirror({ wait: 5, signal: controller.signal })
        mirrors.push(mirror)
        await within(BOUND_MS, mirror.ready, 'the mirror catching up')
        const prefix = newPrefix()
        const sentinel = `${prefix}sentinel`
        await within(60_000, writeConcurrently(server.baseUrl, prefix, sentinel), 'the writers')
        await until(mirror, () => mirror.persons.has(sentinel), 'the last write reaching the mirror')
        assert.deepEqual((await feedAnswer(server.baseUrl, mirror.next!)).body.changes, [], "nothing after the mirror's token")
        assert.deepEqual(mirrored(mirror), await collection(server.baseUrl))
      })
    })

    describe('a server that restarts on the same database behind the same address', () => {
      let database: TestDatabase
      let server: RunningServer | undefined
      let proxy: TcpProxy | undefined

      before(async () => {
        database = await driver.createDatabase()
        server = await startServer({ database })
        proxy = await TcpProxy.start({ host: '127.0.0.1', port: portOf(server.baseUrl) })
      })
      after(async () => {
        await proxy?.close()
        await server?.stop()
        await database.cleanup()
      })

      it('is followed across the restart from the last next it yielded: nothing lost, nothing repeated', async () => {
        const address = `http://127.0.0.1:${proxy!.port}`
        const client = new IfMatchClient({ baseUrl: address })
        const prefix = newPrefix()
        const id = (s: string): string => `${prefix}${s}`
        for (const s of ['a1', 'a2', 'a3']) await client.create({ person_id: id(s), person_name: s })
        const retries: unknown[] = []
        const feed = client.changes({ wait: LONG_WAIT_S, baseDelayMs: 20, maxDelayMs: 200, signal: controller.signal, onRetry: (e) => retries.push(e) })
        const batches: ChangesBatch[] = []
        const seen = (s: string): boolean => ids(batches).includes(s)
        // consumed in the background, as an application would, while the server goes away and comes back
        const consuming = (async () => {
          for await (const batch of feed) batches.push(batch)
        })()
        const waitFor = (s: string): Promise<void> =>
          within(
            BOUND_MS,
            (async () => {
              while (!seen(s)) await new Promise((r) => setTimeout(r, 10))
            })(),
            `${s} reaching the consumer`,
          )

        await waitFor(id('a3'))
        await client.create({ person_id: id('b1'), person_name: 'b1' })
        await client.create({ person_id: id('b2'), person_name: 'b2' })
        await client.remove(id('a1'))
        // the restart: the address stops answering, the server stops, another starts on the same database
        await proxy!.close()
        await server!.stop()
        server = await startServer({ database })
        proxy = await TcpProxy.start({ host: '127.0.0.1', port: portOf(server.baseUrl) }, proxy!.port)
        await new IfMatchClient({ baseUrl: server.baseUrl }).create({ person_id: id('c1'), person_name: 'c1' })
        await waitFor(id('c1'))
        controller.abort()
        await within(BOUND_MS, consuming, 'the consumer ending')

        assert.deepEqual(
          ids(batches),
          ['a1', 'a2', 'a3', 'b1', 'b2', '-a1', 'c1'].map((s) => (s.startsWith('-') ? `-${id(s.slice(1))}` : id(s))),
        )
        for (let i = 1; i < batches.length; i++) assert.equal(batches[i]!.since, batches[i - 1]!.next, 'each batch follows the one before')
        assert.ok(batches.every((b) => !b.reset))
        assert.ok(retries.length >= 1, 'the iterator met the server gone and retried')
      })
    })

    describe('a token the database does not know (another database behind the same address)', () => {
      let first: RunningServer | undefined
      let second: RunningServer | undefined
      let proxy: TcpProxy | undefined

      beforeEach(async () => {
        first = await startServer({ driver })
        second = await startServer({ driver })
        proxy = await TcpProxy.start({ host: '127.0.0.1', port: portOf(first.baseUrl) })
      })
      afterEach(async () => {
        await stopFollowing()
        await proxy?.close()
        await first?.close()
        await second?.close()
      })

      it('is answered 410, and the iterator starts again from 0 with a batch that says reset', async () => {
        const one = new IfMatchClient({ baseUrl: first!.baseUrl })
        await one.create({ person_id: 'only-in-first', person_name: 'first' })
        const feed = one.changes({ signal: controller.signal })
        const token = (await nextBatch(feed)).next
        await feed.return()
        const gone = await fetch(`${second!.baseUrl}/persons?since=${encodeURIComponent(token)}`)
        assert.equal(gone.status, 410)

        const two = new IfMatchClient({ baseUrl: second!.baseUrl })
        await two.create({ person_id: 'only-in-second', person_name: 'second' })
        const restarted = two.changes({ since: token, signal: controller.signal })
        const batch = await nextBatch(restarted)
        assert.equal(batch.reset, true)
        assert.equal(batch.since, '0')
        assert.equal(batch.complete, true)
        assert.deepEqual(ids([batch]), ['only-in-second'])
        await new IfMatchClient({ baseUrl: second!.baseUrl }).create({ person_id: 'later', person_name: 'later' })
        const following = await nextBatch(restarted)
        assert.equal(following.reset, false)
        assert.deepEqual(ids([following]), ['later'])
      })

      it('makes a mirror clear itself and copy the other database, ending equal to its collection', async () => {
        const client = new IfMatchClient({ baseUrl: `http://127.0.0.1:${proxy!.port}` })
        for (const s of ['x', 'y', 'z']) await client.create({ person_id: `first-${s}`, person_name: s })
        const mirror = client.mirror({ wait: 2, baseDelayMs: 20, maxDelayMs: 200, signal: controller.signal })
        mirrors.push(mirror)
        await within(BOUND_MS, mirror.ready, 'the mirror catching up')
        assert.deepEqual([...mirror.persons.keys()].sort(), ['first-x', 'first-y', 'first-z'])
        const events: ChangesBatch[] = []
        mirror.onChange((batch) => events.push(batch))

        const other = new IfMatchClient({ baseUrl: second!.baseUrl })
        for (const s of ['p', 'q']) await other.create({ person_id: `second-${s}`, person_name: s })
        // the same address now serves another database: the mirror's token means nothing there
        const port = proxy!.port
        await proxy!.close()
        proxy = await TcpProxy.start({ host: '127.0.0.1', port: portOf(second!.baseUrl) }, port)
        await until(mirror, () => mirror.persons.has('second-q') && mirror.caughtUp, 'the mirror copying the other database')

        assert.equal(events[0]?.reset, true, 'the first batch after the switch says reset')
        assert.deepEqual(mirrored(mirror), await collection(second!.baseUrl))
        assert.ok(!mirror.persons.has('first-x'))
      })
    })
  })

  if (driver.name === 'postgres') {
    // a real 503: the server's connections to PostgreSQL cut by a proxy between them
    describe('a server whose PostgreSQL goes away for a while and comes back', () => {
      let database: TestDatabase
      let dbProxy: TcpProxy | undefined
      let server: ServerProcess | undefined
      let controller: AbortController

      before(async () => {
        database = await driver.createDatabase()
        dbProxy = await proxyToDatabase(database.url)
        server = await spawnServer(throughProxy(database.url, dbProxy))
      })
      after(async () => {
        controller?.abort()
        await stopProcess(server)
        await dbProxy?.close()
        await database?.cleanup()
      })

      it('is followed through its 503 answers with backoff, from the same token: nothing lost, nothing repeated', async () => {
        controller = new AbortController()
        const client = new IfMatchClient({ baseUrl: server!.baseUrl })
        await client.create({ person_id: 'before', person_name: 'before the outage' })
        const retried: unknown[] = []
        const feed = client.changes({ wait: 2, baseDelayMs: 20, maxDelayMs: 200, signal: controller.signal, onRetry: (e) => retried.push(e) })
        const batches: ChangesBatch[] = []
        const consuming = (async () => {
          for await (const batch of feed) batches.push(batch)
        })()
        const eventually = (what: string, condition: () => boolean): Promise<void> =>
          within(
            BOUND_MS,
            (async () => {
              while (!condition()) await new Promise((r) => setTimeout(r, 10))
            })(),
            what,
          )

        await eventually('the first batch', () => ids(batches).includes('before'))
        await dbProxy!.close()
        await eventually('a 503 retried', () => retried.some((e) => e instanceof ProblemError && e.status === 503))
        await dbProxy!.open()
        // the server's pool may need a try or two to reconnect: what a writer would do
        await within(
          BOUND_MS,
          (async () => {
            for (;;) {
              try {
                await client.create({ person_id: 'after', person_name: 'after the outage' })
                return
              } catch (error) {
                if (!(error instanceof ProblemError && error.status === 503)) throw error
                await new Promise((r) => setTimeout(r, 100))
              }
            }
          })(),
          'a write after the outage',
        )
        await eventually('the write after the outage', () => ids(batches).includes('after'))
        controller.abort()
        await within(BOUND_MS, consuming, 'the consumer ending')

        assert.deepEqual(ids(batches), ['before', 'after'])
        for (let i = 1; i < batches.length; i++) assert.equal(batches[i]!.since, batches[i - 1]!.next)
      })
    })
  }

  describe(`mirror() against two server processes sharing one ${driver.name} database`, () => {
    let database: TestDatabase
    const processes: ServerProcess[] = []
    let controller: AbortController

    before(async () => {
      database = await driver.createDatabase({ shared: true })
      await spawnServers(database, [[], []], processes)
    })
    after(async () => {
      await Promise.all(processes.map(stopProcess))
      await database?.cleanup()
    })
    beforeEach(() => {
      controller = new AbortController()
    })
    afterEach(() => controller.abort())

    it('wakes on a write made through the other process, and ends equal to the collection after concurrent random writes there', async () => {
      const [reading, writing] = [processes[0]!.baseUrl, processes[1]!.baseUrl]
      const counting = countingFetch()
      const mirror = new IfMatchClient({ baseUrl: reading, fetch: counting.fetch }).mirror({ wait: LONG_WAIT_S, signal: controller.signal })
      try {
        await within(BOUND_MS, mirror.ready, 'the mirror catching up')
        // write only once a long poll is out, so that it is the write that answers it
        await within(
          BOUND_MS,
          (async () => {
            while (counting.inFlight() === 0) await new Promise((r) => setTimeout(r, 10))
          })(),
          'a long poll going out',
        )
        await new IfMatchClient({ baseUrl: writing }).create({ person_id: 'first', person_name: 'across processes' })
        await until(mirror, () => mirror.persons.has('first'), 'a write in the other process waking the long poll')

        await within(60_000, writeConcurrently(writing, 'shared-', 'sentinel'), 'the writers')
        await until(mirror, () => mirror.persons.has('sentinel'), 'the last write reaching the mirror')
        assert.deepEqual((await feedAnswer(reading, mirror.next!)).body.changes, [], "nothing after the mirror's token")
        const fromWriter = await collection(writing)
        assert.deepEqual(mirrored(mirror), fromWriter)
        assert.deepEqual(await collection(reading), fromWriter)
      } finally {
        await mirror.close()
      }
    })
  })
}
