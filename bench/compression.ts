/**
 * The 1,000-person page identity, gzip and br: bytes on the wire and requests/s from ifmatch
 * (which compresses a page once per ETag and coding, and serves it from its cache after), beside
 * the same page from Fastify with @fastify/compress (which compresses every response); how long
 * compressing that page takes with ifmatch's own parameters; and how long ifmatch's event loop
 * stalls while a burst of first requests for pages not yet cached is answered.
 */
import { performance } from 'node:perf_hooks'
import { CodedRepresentations, type ContentCoding } from '../src/http/content-coding.js'
import { RepresentationCache } from '../src/http/representation-cache.js'
import { measureInterleaved, median, roundRatios, sideSummary, type LoadOptions, type Measurement, type NamedSide } from './load.js'
import type { RunningProcess } from './processes.js'
import { WireCounter, keepAliveAgent, rawRequest } from './raw-request.js'
import { PAGE } from './workloads.js'

const CODINGS = ['identity', 'gzip', 'br'] as const
type Coding = (typeof CODINGS)[number]

/** One page answer as it crossed the wire. */
export interface WireAnswer {
  readonly server: string
  readonly coding: Coding
  /** Content-Encoding of the answer ('identity' when absent). */
  readonly sent: string
  /** Every byte of the answer: status line, header fields, body. */
  readonly bytes: number
  readonly bodyBytes: number
  readonly etag: string
  readonly vary: string
  /** The status of the same request with If-None-Match: this answer's ETag. */
  readonly revalidated: number
}

/** One server and coding over the interleaved rounds. */
export interface CodingRate extends Measurement {
  readonly server: string
  readonly coding: Coding
  /** Requests/s over the same server's identity page, round by round, and their median. */
  readonly ratios: readonly number[]
  readonly ratio: number
}

export interface CompressionResult {
  readonly answers: WireAnswer[]
  readonly rates: CodingRate[]
  /** ms to compress the identity page, each coding: median and max of `count` runs. */
  readonly compressMs: Record<'gzip' | 'br', { median: number; max: number; count: number }>
  readonly pageBytes: number
  /** The bursts, on each server they were measured on. */
  readonly bursts: BurstResult[]
}

export interface BurstResult {
  /** Which server: how many cores its threads (the event loop and libuv's pool) could use. */
  readonly label: string
  readonly pages: number
  readonly rounds: number
  /** The event loop's longest delay during a burst (ms), median and max over rounds. */
  readonly identity: { median: number; max: number; all: number[] }
  readonly compressed: { median: number; max: number; all: number[] }
  /** Served from the cache: the same compressed requests again, with nothing written between. */
  readonly cached: { median: number; max: number; all: number[] }
}

const acceptOf = (coding: Coding): Record<string, string> => (coding === 'identity' ? {} : { 'accept-encoding': coding })

async function wireAnswer(server: string, base: string, coding: Coding): Promise<WireAnswer> {
  // a socket of its own, so that its byte count is this answer's
  const agent = keepAliveAgent()
  try {
    const counter = new WireCounter()
    const r = await rawRequest(base + PAGE, { agent, headers: acceptOf(coding), counter })
    const bytes = counter.bytesIn
    const etag = String(r.headers.etag ?? '')
    const again = await rawRequest(base + PAGE, { agent, headers: { ...acceptOf(coding), 'if-none-match': etag } })
    return {
      server,
      coding,
      sent: String(r.headers['content-encoding'] ?? 'identity'),
      bytes,
      bodyBytes: r.body.length,
      etag,
      vary: String(r.headers.vary ?? ''),
      revalidated: again.status,
    }
  } finally {
    agent.destroy()
  }
}

async function compressTimes(base: string, count: number): Promise<CompressionResult['compressMs']> {
  const agent = keepAliveAgent()
  const page = await rawRequest(base + PAGE, { agent })
  agent.destroy()
  const coded = new CodedRepresentations(new RepresentationCache())
  const times: Record<'gzip' | 'br', number[]> = { gzip: [], br: [] }
  for (let i = 0; i < count + 2; i++) {
    for (const coding of ['gzip', 'br'] as const satisfies readonly ContentCoding[]) {
      // a new tag each time: the cache would answer a second request for the same one
      const identity = { body: page.body, headers: { etag: `"bench.${i}"`, 'content-type': 'application/json' } }
      const t0 = performance.now()
      await coded.code(identity, coding)
      // the first two are warm-up (the thread pool's threads start, the code compiles)
      if (i >= 2) times[coding].push(performance.now() - t0)
    }
  }
  const summary = (values: number[]): { median: number; max: number; count: number } => ({
    median: median(values),
    max: Math.max(...values),
    count: values.length,
  })
  return { gzip: summary(times.gzip), br: summary(times.br) }
}

async function lagMaxMs(base: string): Promise<number> {
  const agent = keepAliveAgent()
  const r = await rawRequest(`${base}/metrics`, { agent })
  agent.destroy()
  const match = /^nodejs_eventloop_lag_max_seconds(?:\{[^}]*\})? (\S+)$/m.exec(r.body.toString('utf8'))
  if (match === null) throw new Error('/metrics has no nodejs_eventloop_lag_max_seconds')
  return Number(match[1]) * 1000
}

/**
 * The event loop's longest delay (from /metrics, whose histogram each scrape resets) while
 * `pages` distinct pages of about 1,000 persons are asked for at once, right after a write made
 * every page's ETag new: each page twice in identity, then each page in gzip and in br (as many
 * answers, so the difference is the compression's share of the event loop); and the compressed
 * burst again with nothing written between (all cached).
 */
async function eventLoopBursts(label: string, base: string, writePerson: string, pages: number, rounds: number): Promise<BurstResult> {
  const agent = keepAliveAgent(2 * pages)
  const paths = Array.from({ length: pages }, (_, k) => `/persons?limit=${1000 - k}`)
  const write = async (): Promise<void> => {
    const read = await rawRequest(`${base}/persons/${writePerson}`, { agent })
    const r = await rawRequest(`${base}/persons/${writePerson}`, {
      agent,
      method: 'PUT',
      headers: { 'if-match': String(read.headers.etag) },
      body: JSON.stringify({ person_name: `burst ${Date.now()}` }),
    })
    if (r.status !== 200) throw new Error(`PUT /persons/${writePerson}: ${r.status}`)
  }
  const burst = async (codings: readonly Coding[], invalidate: boolean): Promise<number> => {
    if (invalidate) await write()
    await lagMaxMs(base)
    await new Promise((resolve) => setTimeout(resolve, 50))
    await Promise.all(
      paths.flatMap((path) =>
        codings.map(async (coding) => {
          const r = await rawRequest(base + path, { agent, headers: acceptOf(coding) })
          if (r.status !== 200) throw new Error(`GET ${path}: ${r.status}`)
        }),
      ),
    )
    return lagMaxMs(base)
  }
  const identity: number[] = []
  const compressed: number[] = []
  const cached: number[] = []
  try {
    // one of each first: connections opened, code compiled
    await burst(['identity', 'identity'], true)
    await burst(['gzip', 'br'], true)
    for (let i = 0; i < rounds; i++) {
      // twice each, so that both bursts ask for as many answers: the difference is the compression's
      identity.push(await burst(['identity', 'identity'], true))
      compressed.push(await burst(['gzip', 'br'], true))
      cached.push(await burst(['gzip', 'br'], false))
    }
  } finally {
    agent.destroy()
  }
  const summary = (all: number[]): { median: number; max: number; all: number[] } => ({ median: median(all), max: Math.max(...all), all })
  return { label, pages, rounds, identity: summary(identity), compressed: summary(compressed), cached: summary(cached) }
}

/**
 * Runs the compression cells: `ifmatch` (SQLite, 1,000 persons) and `fastify` (the Fastify peer
 * with @fastify/etag and @fastify/compress) each answering the page in every coding, interleaved;
 * then the bursts on `ifmatch` and on each of `burstServers` (ifmatch too, started otherwise).
 */
export async function measureCompression(
  ifmatch: RunningProcess,
  fastify: RunningProcess,
  load: LoadOptions,
  burstRounds: number,
  burstServers: readonly { readonly label: string; readonly server: RunningProcess }[],
): Promise<CompressionResult> {
  const servers = [
    ['ifmatch', ifmatch],
    ['fastify', fastify],
  ] as const
  const answers: WireAnswer[] = []
  for (const [name, server] of servers) for (const coding of CODINGS) answers.push(await wireAnswer(name, server.url, coding))
  const sides: NamedSide[] = servers.flatMap(([name, server]) =>
    CODINGS.map((coding) => ({
      name: `${name} ${coding}`,
      baseUrl: server.url,
      serverCpuMs: () => server.cpuMs(),
      workload: { name: `list200 ${coding}`, path: PAGE, expect: 200, headers: acceptOf(coding) },
    })),
  )
  const measured = await measureInterleaved(sides, load)
  const rates: CodingRate[] = servers.flatMap(([name]) =>
    CODINGS.map((coding) => {
      const ratios = roundRatios(measured, `${name} ${coding}`, `${name} identity`)
      return { server: name, coding, ...sideSummary(measured, `${name} ${coding}`), ratios, ratio: median(ratios) }
    }),
  )
  const compressMs = await compressTimes(ifmatch.url, 20)
  const bursts: BurstResult[] = []
  for (const { label, server } of burstServers) bursts.push(await eventLoopBursts(label, server.url, 'p00999', 8, burstRounds))
  return { answers, rates, compressMs, pageBytes: answers.find((a) => a.server === 'ifmatch' && a.coding === 'identity')!.bodyBytes, bursts }
}
