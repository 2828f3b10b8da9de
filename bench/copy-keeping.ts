/**
 * Two clients keep a copy of the whole collection current while writes arrive, and every byte
 * each one moves is counted at its socket: client A polls, re-reading every page each second with
 * If-None-Match (a page whose ETag has not changed costs a 304, headers only); client B follows
 * the changes feed by long polling. At the end both copies are compared with the server's.
 */
import { performance } from 'node:perf_hooks'
import type { Agent } from 'node:http'
import { WireCounter, keepAliveAgent, linkTargets, rawRequest, type RawResponse } from './raw-request.js'

/** What a copy holds of one person: what a page shows of it. */
interface CopiedPerson {
  readonly name: string
  readonly changeDate: string
}

type Copy = Map<string, CopiedPerson>

interface PersonJson {
  person_id: string
  person_name: string
  change_date: string
  etag?: string
}

interface FeedJson {
  changes: (PersonJson | { person_id: string; deleted: true })[]
  next: string
  complete: boolean
}

/** Bytes and requests of one client over one phase. */
export interface WireFigures {
  readonly requests: number
  readonly statuses: Record<string, number>
  readonly bytesIn: number
  readonly bytesOut: number
  /** Of bytesIn, the response bodies; the rest is status lines and header fields (and chunk framing). */
  readonly bodyBytesIn: number
  /** bytesIn + bytesOut. */
  readonly bytes: number
  readonly connections: number
}

export interface CopyKeepingOptions {
  /** Seconds of writes. */
  readonly durationSeconds: number
  readonly writesPerSecond: number
  /** Client A reads the whole collection this often. */
  readonly pollIntervalMs: number
  /** The `limit` of every page and feed request. */
  readonly limit: number
  /** Client B's `wait`. */
  readonly waitSeconds: number
  /** Sent by both clients as Accept-Encoding, when given. */
  readonly acceptEncoding?: string | undefined
  readonly log: (message: string) => void
}

export interface CopyKeepingResult {
  readonly durationSeconds: number
  readonly writesPerSecond: number
  readonly writes: { readonly update: number; readonly create: number; readonly delete: number; readonly failed: number }
  readonly personsAtStart: number
  readonly personsAtEnd: number
  /** Client A: the first full read, then the rest of the run. */
  readonly polling: {
    readonly initial: WireFigures
    readonly keeping: WireFigures
    readonly rounds: number
    readonly equal: boolean
    readonly differences: number
  }
  /** Client B: following the feed from 0, then the rest of the run. */
  readonly feed: { readonly initial: WireFigures; readonly keeping: WireFigures; readonly equal: boolean; readonly differences: number }
  /** Client B's keeping bytes over client A's. */
  readonly byteRatio: number
}

function figures(counter: WireCounter): WireFigures {
  return {
    requests: counter.requests,
    statuses: { ...counter.statuses },
    bytesIn: counter.bytesIn,
    bytesOut: counter.bytesOut,
    bodyBytesIn: counter.bodyBytes,
    bytes: counter.bytesIn + counter.bytesOut,
    connections: counter.connections,
  }
}

function since(later: WireFigures, earlier: WireFigures): WireFigures {
  const statuses: Record<string, number> = {}
  for (const [status, n] of Object.entries(later.statuses)) {
    const d = n - (earlier.statuses[status] ?? 0)
    if (d !== 0) statuses[status] = d
  }
  return {
    requests: later.requests - earlier.requests,
    statuses,
    bytesIn: later.bytesIn - earlier.bytesIn,
    bytesOut: later.bytesOut - earlier.bytesOut,
    bodyBytesIn: later.bodyBytesIn - earlier.bodyBytesIn,
    bytes: later.bytes - earlier.bytes,
    connections: later.connections - earlier.connections,
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)))

function expectStatus(response: RawResponse, expected: readonly number[], what: string): void {
  if (!expected.includes(response.status)) {
    throw new Error(`${what}: ${response.status} ${response.body.toString('utf8').slice(0, 300)}`)
  }
}

/** Counts the persons on which two copies differ (missing on one side, or another name or date). */
function differences(a: Copy, b: Copy): number {
  let count = 0
  for (const [id, person] of a) {
    const other = b.get(id)
    if (other === undefined || other.name !== person.name || other.changeDate !== person.changeDate) count++
  }
  for (const id of b.keys()) if (!a.has(id)) count++
  return count
}

/** A reproducible stream of numbers in [0, 1), so every run makes the same kinds of writes. */
function random(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
  }
}

/** Client A: every page of the collection, each revalidated with the ETag it last had. */
class PagePoller {
  readonly counter = new WireCounter()
  private readonly agent = keepAliveAgent()
  private pages = new Map<string, { etag: string; persons: PersonJson[]; next: string | undefined }>()
  copy: Copy = new Map()
  rounds = 0

  constructor(
    private readonly base: string,
    private readonly limit: number,
    private readonly headers: Record<string, string>,
  ) {}

  /** Reads the collection page by page, from the first page to the last. */
  async round(): Promise<void> {
    const seen = new Map<string, { etag: string; persons: PersonJson[]; next: string | undefined }>()
    let path: string | undefined = `/persons?limit=${this.limit}`
    while (path !== undefined) {
      const cached = this.pages.get(path)
      const response = await rawRequest(this.base + path, {
        agent: this.agent,
        counter: this.counter,
        headers: { ...this.headers, ...(cached === undefined ? {} : { 'if-none-match': cached.etag }) },
      })
      expectStatus(response, cached === undefined ? [200] : [200, 304], `GET ${path}`)
      const page =
        response.status === 304
          ? cached!
          : {
              etag: String(response.headers.etag),
              persons: JSON.parse(response.body.toString('utf8')) as PersonJson[],
              next: linkTargets(response.headers.link).get('next'),
            }
      seen.set(path, page)
      if (page.next === undefined) break
      const next = new URL(page.next, this.base)
      path = next.pathname + next.search
    }
    // pages no longer in the chain (their first id moved) are forgotten: the client keeps only what it shows
    this.pages = seen
    const copy: Copy = new Map()
    for (const page of seen.values()) {
      for (const p of page.persons) copy.set(p.person_id, { name: p.person_name, changeDate: p.change_date })
    }
    this.copy = copy
    this.rounds++
  }

  close(): void {
    this.agent.destroy()
  }
}

/** Client B: the changes feed, from `since=0`, then long polls with If-None-Match. */
class FeedFollower {
  readonly counter = new WireCounter()
  private readonly agent = keepAliveAgent()
  readonly copy: Copy = new Map()
  token = '0'
  private lastUrl = ''
  private lastEtag: string | undefined

  constructor(
    private readonly base: string,
    private readonly limit: number,
    private readonly headers: Record<string, string>,
  ) {}

  /** One feed request; true when the answer was complete (nothing more to fetch right now). */
  async step(waitSeconds: number | undefined, signal?: AbortSignal): Promise<boolean> {
    const path = `/persons?since=${encodeURIComponent(this.token)}&limit=${this.limit}${waitSeconds === undefined ? '' : `&wait=${waitSeconds}`}`
    const response = await rawRequest(this.base + path, {
      agent: this.agent,
      counter: this.counter,
      ...(signal === undefined ? {} : { signal }),
      headers: { ...this.headers, ...(path === this.lastUrl && this.lastEtag !== undefined ? { 'if-none-match': this.lastEtag } : {}) },
    })
    expectStatus(response, [200, 304], `GET ${path}`)
    if (response.status === 304) return true
    const feed = JSON.parse(response.body.toString('utf8')) as FeedJson
    for (const change of feed.changes) {
      if ('deleted' in change) this.copy.delete(change.person_id)
      else this.copy.set(change.person_id, { name: change.person_name, changeDate: change.change_date })
    }
    this.token = feed.next
    this.lastUrl = path
    this.lastEtag = typeof response.headers.etag === 'string' ? response.headers.etag : undefined
    return feed.complete
  }

  close(): void {
    this.agent.destroy()
  }
}

/** The writer: random updates, creates and deletes, each with its precondition, at a steady rate. */
class Writer {
  private readonly agent = keepAliveAgent()
  private readonly live: string[] = []
  private readonly etags = new Map<string, string>()
  private readonly next = random(42)
  private created = 0
  readonly done = { update: 0, create: 0, delete: 0, failed: 0 }

  constructor(
    private readonly base: string,
    ids: Iterable<string>,
  ) {
    this.live.push(...ids)
  }

  private pick(): { id: string; index: number } {
    const index = Math.floor(this.next() * this.live.length)
    return { id: this.live[index]!, index }
  }

  private async etagOf(id: string): Promise<string> {
    const known = this.etags.get(id)
    if (known !== undefined) return known
    const response = await rawRequest(`${this.base}/persons/${id}`, { agent: this.agent })
    expectStatus(response, [200], `GET /persons/${id}`)
    return String(response.headers.etag)
  }

  /** One write: 60 % updates, 20 % creates, 20 % deletes, so the collection keeps its size. */
  async write(): Promise<void> {
    const dice = this.next()
    if (dice < 0.2 || this.live.length === 0) {
      // a new id lands anywhere in the order (p01234-7 sorts after p01234), so any page may grow
      const id = `p${String(Math.floor(this.next() * 10_000)).padStart(5, '0')}-${++this.created}`
      const response = await rawRequest(`${this.base}/persons`, {
        agent: this.agent,
        method: 'POST',
        body: JSON.stringify({ person_id: id, person_name: `New ${this.created}` }),
      })
      expectStatus(response, [201], `POST /persons ${id}`)
      this.etags.set(id, String(response.headers.etag))
      this.live.push(id)
      this.done.create++
    } else if (dice < 0.4) {
      const { id, index } = this.pick()
      const response = await rawRequest(`${this.base}/persons/${id}`, { agent: this.agent, method: 'DELETE', headers: { 'if-match': await this.etagOf(id) } })
      expectStatus(response, [204], `DELETE /persons/${id}`)
      this.etags.delete(id)
      this.live[index] = this.live[this.live.length - 1]!
      this.live.pop()
      this.done.delete++
    } else {
      const { id } = this.pick()
      const response = await rawRequest(`${this.base}/persons/${id}`, {
        agent: this.agent,
        method: 'PUT',
        headers: { 'if-match': await this.etagOf(id) },
        body: JSON.stringify({ person_name: `Renamed ${Math.floor(this.next() * 1e9)}` }),
      })
      expectStatus(response, [200], `PUT /persons/${id}`)
      this.etags.set(id, String(response.headers.etag))
      this.done.update++
    }
  }

  /** Writes at `perSecond` until `until` (performance.now()); a write that fails ends the run. */
  async run(perSecond: number, until: number): Promise<void> {
    const start = performance.now()
    for (let k = 0; ; k++) {
      const due = start + (k * 1000) / perSecond
      if (due >= until) return
      await sleep(due - performance.now())
      await this.write()
    }
  }

  get size(): number {
    return this.live.length
  }

  close(): void {
    this.agent.destroy()
  }
}

/** The server's collection and the feed token of that moment, read page by page while nothing is written. */
async function serverCollection(base: string, limit: number): Promise<{ copy: Copy; token: string | undefined }> {
  const agent: Agent = keepAliveAgent()
  try {
    const copy: Copy = new Map()
    let token: string | undefined
    let path: string | undefined = `/persons?limit=${limit}`
    while (path !== undefined) {
      const response = await rawRequest(base + path, { agent })
      expectStatus(response, [200], `GET ${path}`)
      const links = linkTargets(response.headers.link)
      if (token === undefined) {
        const changes = links.get('changes')
        token = changes === undefined ? undefined : (new URL(changes, base).searchParams.get('since') ?? undefined)
      }
      for (const p of JSON.parse(response.body.toString('utf8')) as PersonJson[]) {
        copy.set(p.person_id, { name: p.person_name, changeDate: p.change_date })
      }
      const next = links.get('next')
      path = next === undefined ? undefined : new URL(next, base).pathname + new URL(next, base).search
    }
    return { copy, token }
  } finally {
    agent.destroy()
  }
}

/** Runs both clients against the server at `base` while the writer writes, and compares their copies with it. */
export async function keepCopies(base: string, options: CopyKeepingOptions): Promise<CopyKeepingResult> {
  const headers: Record<string, string> = options.acceptEncoding === undefined ? {} : { 'accept-encoding': options.acceptEncoding }
  const polling = new PagePoller(base, options.limit, headers)
  const feed = new FeedFollower(base, options.limit, headers)
  const start = await serverCollection(base, options.limit)
  const writer = new Writer(base, start.copy.keys())
  const stop = new AbortController()
  try {
    // the first copy: every page for A, the feed from 0 for B; counted apart from keeping it current
    await polling.round()
    while (!(await feed.step(undefined))) {
      /* the next part of the first copy */
    }
    const pollingInitial = figures(polling.counter)
    const feedInitial = figures(feed.counter)
    options.log(
      `  first copy: polling ${pollingInitial.requests} requests, ${pollingInitial.bytes} bytes; feed ${feedInitial.requests} requests, ${feedInitial.bytes} bytes`,
    )

    const until = performance.now() + options.durationSeconds * 1000
    let writesStoppedAt = Infinity
    const writing = writer.run(options.writesPerSecond, until).finally(() => {
      writesStoppedAt = performance.now()
    })

    const pollingLoop = (async () => {
      const first = performance.now()
      for (let k = 1; ; k++) {
        await sleep(first + k * options.pollIntervalMs - performance.now())
        const startedAt = performance.now()
        await polling.round()
        // the round that started after the last write has seen it: the copy is as current as it gets
        if (startedAt > writesStoppedAt) return
      }
    })()

    const feedLoop = (async () => {
      try {
        for (;;) await feed.step(options.waitSeconds, stop.signal)
      } catch (error) {
        if (!stop.signal.aborted) throw error
      }
    })()

    // a failure is reported by the race below; the others then fail too as their sockets close
    for (const task of [writing, pollingLoop, feedLoop]) task.catch(() => {})
    // a failure of any of the three ends the run at once rather than after the others' timeouts
    await Promise.race([
      writing,
      pollingLoop.then(() => writing),
      feedLoop.then(() => {
        throw new Error('the feed client stopped')
      }),
    ])
    await writing
    await Promise.race([
      pollingLoop,
      feedLoop.then(() => {
        throw new Error('the feed client stopped')
      }),
    ])

    const end = await serverCollection(base, options.limit)
    // B has caught up when its token is the one the collection names as its present
    const deadline = performance.now() + 10_000
    while (end.token !== undefined && feed.token !== end.token && performance.now() < deadline) await sleep(20)
    stop.abort()
    await feedLoop

    const pollingKeeping = since(figures(polling.counter), pollingInitial)
    const feedKeeping = since(figures(feed.counter), feedInitial)
    const pollingDiff = differences(end.copy, polling.copy)
    const feedDiff = differences(end.copy, feed.copy)
    return {
      durationSeconds: options.durationSeconds,
      writesPerSecond: options.writesPerSecond,
      writes: { ...writer.done },
      personsAtStart: start.copy.size,
      personsAtEnd: end.copy.size,
      polling: { initial: pollingInitial, keeping: pollingKeeping, rounds: polling.rounds - 1, equal: pollingDiff === 0, differences: pollingDiff },
      feed: { initial: feedInitial, keeping: feedKeeping, equal: feedDiff === 0, differences: feedDiff },
      byteRatio: feedKeeping.bytes / pollingKeeping.bytes,
    }
  } finally {
    stop.abort()
    polling.close()
    feed.close()
    writer.close()
  }
}
