/**
 * The wake-up of long polls: many clients hold `GET /persons?since=<now>&wait=s` on one server
 * process, one write commits (through the same process or another on the same database), and each
 * waiter's latency is the time from the write's 2xx to the end of its own answer. The memory a
 * waiting client costs is the server's resident set (and V8 heap) with the waiters held, less
 * without them, per waiter.
 */
import { Agent } from 'node:http'
import { performance } from 'node:perf_hooks'
import { runQueueMs } from './processes.js'
import { keepAliveAgent, linkTargets, rawRequest, type RawResponse } from './raw-request.js'

/** A server process the bench started: its URL, and its resources as /proc reports them. */
export interface ServerProcess {
  readonly url: string
  cpuMs(): number
  rssBytes(): number
  /** Time its main thread waited for a core so far, in ms. */
  runQueueMs(): number
}

export interface WakeUpOptions {
  /** Clients waiting at once. */
  readonly waiters: number
  /** Measured rounds, after one warm-up round that is not reported. */
  readonly rounds: number
  /** The waiters' `wait`: long enough that none answers before the write. */
  readonly waitSeconds: number
  /** Waiters connect in batches this size, each batch once the one before has sent its requests. */
  readonly connectBatch: number
  readonly log: (message: string) => void
  /** Called after each round with the span from the write sent to the last answer, in process.hrtime.bigint() ns (a profiler's clock). */
  readonly onWakeUp?: (fromNs: bigint, toNs: bigint) => void
}

/** One round's figures; latencies in ms from the write's 2xx (negative: answered before it arrived). */
export interface WakeUpRound {
  readonly p50Ms: number
  readonly p99Ms: number
  readonly minMs: number
  readonly maxMs: number
  /** From sending the write to its 2xx. */
  readonly writeMs: number
  /** From the first waiter's connect to the last waiter's request sent. */
  readonly connectMs: number
  /** From the last request sent until the server held them all and its CPU time stopped moving. */
  readonly settleMs: number
  readonly rssPerWaiterBytes: number
  readonly heapPerWaiterBytes: number
  /** CPU of the waiting server while the waiters connected and it registered them (10 ms resolution). */
  readonly connectServerCpuMs: number
  /** CPU of the waiting server, from the write sent to the last answer (10 ms resolution). */
  readonly serverCpuMs: number
  /** CPU of this process (the load generator) over the same span. */
  readonly loadGeneratorCpuMs: number
  /** Over the same span, time the waiting server's main thread was ready to run but had no core (from /proc schedstat). */
  readonly serverRunQueueMs: number
  /** The same for this process: on a shared machine, the time neither side could run. */
  readonly loadGeneratorRunQueueMs: number
  /** Waiters that were not answered 200 with the write in their changes, or not at all. */
  readonly unexpected: number
}

export interface WakeUpResult {
  readonly waiters: number
  /**
   * The warm-up round, the first time this many waiters came to a fresh process: its memory
   * figures are what the process grew by to hold them (later rounds reuse what the first left).
   */
  readonly first: WakeUpRound
  readonly rounds: readonly WakeUpRound[]
  /** Medians over the rounds. */
  readonly minMs: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly maxMs: number
  readonly rssPerWaiterBytes: number
  readonly heapPerWaiterBytes: number
  readonly serverCpuMs: number
  readonly connectServerCpuMs: number
  readonly loadGeneratorCpuMs: number
  readonly serverRunQueueMs: number
  readonly loadGeneratorRunQueueMs: number
  readonly unexpected: number
}

/** The median of `values` (the mean of the middle two when their number is even). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

/** The nearest-rank `p` quantile (0 < p ≤ 1) of ascending `sorted`. */
function quantile(sorted: readonly number[], p: number): number {
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]!
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

function expectStatus(response: RawResponse, expected: number, what: string): void {
  if (response.status !== expected) throw new Error(`${what}: ${response.status} ${response.body.toString('utf8').slice(0, 300)}`)
}

/** V8's used heap of the server, from its Prometheus metrics (NaN when it does not export them). */
async function heapUsedBytes(server: ServerProcess, agent: Agent): Promise<number> {
  const response = await rawRequest(`${server.url}/metrics`, { agent })
  const match = /^nodejs_heap_size_used_bytes (\S+)$/m.exec(response.body.toString('utf8'))
  return match === null ? NaN : Number(match[1])
}

/** Long polls the server holds now, from its Prometheus metrics (NaN when it does not export them). */
async function waitingPolls(server: ServerProcess, agent: Agent): Promise<number> {
  const response = await rawRequest(`${server.url}/metrics`, { agent })
  const match = /^ifmatch_changes_waiting\{kind="long-poll"\} (\S+)$/m.exec(response.body.toString('utf8'))
  return match === null ? NaN : Number(match[1])
}

/** Waits until the server says it holds `count` long polls (or does not say), at most `timeoutMs`. */
async function allHeld(server: ServerProcess, agent: Agent, count: number, timeoutMs = 15_000): Promise<void> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const held = await waitingPolls(server, agent)
    if (Number.isNaN(held) || held === count) return
    if (performance.now() > deadline)
      throw new Error(`the server at ${server.url} holds ${held} long polls, not ${count}, ${timeoutMs} ms after they were sent`)
    await sleep(50)
  }
}

/**
 * Waits until the server's CPU time has not moved for `quietMs`: it has read and parsed every
 * request sent to it and is idle (a client's connect completes in the kernel before the server
 * has accepted it, so the client side alone cannot tell). At most `timeoutMs`.
 */
async function settle(server: ServerProcess, quietMs = 300, timeoutMs = 15_000): Promise<number> {
  const start = performance.now()
  let last = server.cpuMs()
  let quietSince = performance.now()
  while (performance.now() - start < timeoutMs) {
    await sleep(50)
    const now = server.cpuMs()
    if (now !== last) {
      last = now
      quietSince = performance.now()
    } else if (performance.now() - quietSince >= quietMs) {
      return performance.now() - start
    }
  }
  throw new Error(`the server at ${server.url} did not go idle within ${timeoutMs} ms`)
}

/** The feed token of the present, from the changes link every collection page carries. */
async function currentToken(server: ServerProcess, agent: Agent): Promise<string> {
  const response = await rawRequest(`${server.url}/persons?limit=1`, { agent })
  expectStatus(response, 200, 'GET /persons?limit=1')
  const changes = linkTargets(response.headers.link).get('changes')
  const token = changes === undefined ? null : new URL(changes, server.url).searchParams.get('since')
  if (token === null) throw new Error(`GET /persons?limit=1 has no rel="changes" link: ${String(response.headers.link)}`)
  return token
}

async function round(waitOn: ServerProcess, writeThrough: ServerProcess, personId: string, options: WakeUpOptions, label: string): Promise<WakeUpRound> {
  const control = keepAliveAgent()
  const waiterAgent = new Agent({ keepAlive: true, maxSockets: options.waiters + 10, maxFreeSockets: options.waiters + 10 })
  try {
    await settle(waitOn)
    const rssBefore = waitOn.rssBytes()
    const heapBefore = await heapUsedBytes(waitOn, control)

    const token = await currentToken(waitOn, control)
    const feedPath = `/persons?since=${encodeURIComponent(token)}&limit=100`
    const probe = await rawRequest(waitOn.url + feedPath, { agent: control })
    expectStatus(probe, 200, `GET ${feedPath}`)
    const feedEtag = String(probe.headers.etag)
    const person = await rawRequest(`${writeThrough.url}/persons/${personId}`, { agent: control })
    expectStatus(person, 200, `GET /persons/${personId}`)

    // the waiters, as clients that caught up with the feed and revalidate what they last read
    const answers: Promise<RawResponse | Error>[] = []
    const connectStart = performance.now()
    const connectCpuBefore = waitOn.cpuMs()
    for (let sent = 0; sent < options.waiters; sent += options.connectBatch) {
      const batch: Promise<void>[] = []
      for (let i = sent; i < Math.min(options.waiters, sent + options.connectBatch); i++) {
        batch.push(
          new Promise<void>((resolve, reject) => {
            const answer = rawRequest(`${waitOn.url}${feedPath}&wait=${options.waitSeconds}`, {
              agent: waiterAgent,
              headers: { 'if-none-match': feedEtag },
              onSent: resolve,
            })
            answers.push(
              answer.catch((error: unknown) => {
                reject(error instanceof Error ? error : new Error(String(error)))
                return error instanceof Error ? error : new Error(String(error))
              }),
            )
          }),
        )
      }
      await Promise.all(batch)
    }
    const connectMs = performance.now() - connectStart
    await allHeld(waitOn, control, options.waiters)
    await settle(waitOn)
    const settleMs = performance.now() - connectStart - connectMs
    const connectServerCpuMs = waitOn.cpuMs() - connectCpuBefore
    const rssAfter = waitOn.rssBytes()
    const heapAfter = await heapUsedBytes(waitOn, control)
    let early = 0
    for (const answer of answers)
      void answer.then(() => {
        early++
      })
    await sleep(0)
    if (early > 0) throw new Error(`${early} waiters were answered before the write`)

    const cpuBefore = waitOn.cpuMs()
    const ownBefore = process.cpuUsage()
    const queuedBefore = waitOn.runQueueMs()
    const ownQueuedBefore = runQueueMs('self')
    const writeSentNs = process.hrtime.bigint()
    const writeSent = performance.now()
    const write = await rawRequest(`${writeThrough.url}/persons/${personId}`, {
      agent: control,
      method: 'PUT',
      headers: { 'if-match': String(person.headers.etag) },
      body: JSON.stringify({ person_name: `Woken ${label}` }),
    })
    expectStatus(write, 200, `PUT /persons/${personId}`)
    const writeEtag = String(write.headers.etag)
    const acknowledged = write.headersAt

    let timer: NodeJS.Timeout | undefined
    const results = await Promise.race([
      Promise.all(answers),
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`waiters not all answered ${options.waitSeconds + 10} s after the write`)), (options.waitSeconds + 10) * 1000)
      }),
    ]).finally(() => clearTimeout(timer))
    options.onWakeUp?.(writeSentNs, process.hrtime.bigint())
    const own = process.cpuUsage(ownBefore)
    const serverCpuMs = waitOn.cpuMs() - cpuBefore
    const serverRunQueueMs = waitOn.runQueueMs() - queuedBefore
    const loadGeneratorRunQueueMs = runQueueMs('self') - ownQueuedBefore

    const latencies: number[] = []
    let unexpected = 0
    for (const result of results) {
      if (result instanceof Error || result.status !== 200) {
        unexpected++
        continue
      }
      const body = JSON.parse(result.body.toString('utf8')) as { changes: { person_id: string; etag?: string }[] }
      if (!body.changes.some((c) => c.person_id === personId && c.etag === writeEtag)) unexpected++
      latencies.push(result.endAt - acknowledged)
    }
    latencies.sort((a, b) => a - b)
    return {
      p50Ms: quantile(latencies, 0.5),
      p99Ms: quantile(latencies, 0.99),
      minMs: latencies[0]!,
      maxMs: latencies[latencies.length - 1]!,
      writeMs: acknowledged - writeSent,
      connectMs,
      settleMs,
      connectServerCpuMs,
      rssPerWaiterBytes: (rssAfter - rssBefore) / options.waiters,
      heapPerWaiterBytes: (heapAfter - heapBefore) / options.waiters,
      serverCpuMs,
      loadGeneratorCpuMs: (own.user + own.system) / 1000,
      serverRunQueueMs,
      loadGeneratorRunQueueMs,
      unexpected,
    }
  } finally {
    waiterAgent.destroy()
    control.destroy()
  }
}

function describeRound(name: string, r: WakeUpRound): string {
  return (
    `    ${name}: min ${r.minMs.toFixed(1)} ms  p50 ${r.p50Ms.toFixed(1)} ms  p99 ${r.p99Ms.toFixed(1)} ms  max ${r.maxMs.toFixed(1)} ms  (write ${r.writeMs.toFixed(1)} ms, ` +
    `server CPU ${r.serverCpuMs} ms (${r.connectServerCpuMs} ms to take the waiters in), load generator CPU ${r.loadGeneratorCpuMs.toFixed(0)} ms; ` +
    `waiting for a core: server ${r.serverRunQueueMs.toFixed(0)} ms, load generator ${r.loadGeneratorRunQueueMs.toFixed(0)} ms)  ` +
    `memory per waiter: RSS ${(r.rssPerWaiterBytes / 1024).toFixed(1)} KiB, heap ${(r.heapPerWaiterBytes / 1024).toFixed(1)} KiB` +
    (r.unexpected > 0 ? `  UNEXPECTED: ${r.unexpected}` : '')
  )
}

function summariseRounds(waiters: number, first: WakeUpRound, rounds: readonly WakeUpRound[]): WakeUpResult {
  return {
    waiters,
    first,
    rounds,
    minMs: median(rounds.map((r) => r.minMs)),
    p50Ms: median(rounds.map((r) => r.p50Ms)),
    p99Ms: median(rounds.map((r) => r.p99Ms)),
    maxMs: median(rounds.map((r) => r.maxMs)),
    rssPerWaiterBytes: median(rounds.map((r) => r.rssPerWaiterBytes)),
    heapPerWaiterBytes: median(rounds.map((r) => r.heapPerWaiterBytes)),
    serverCpuMs: median(rounds.map((r) => r.serverCpuMs)),
    connectServerCpuMs: median(rounds.map((r) => r.connectServerCpuMs)),
    loadGeneratorCpuMs: median(rounds.map((r) => r.loadGeneratorCpuMs)),
    serverRunQueueMs: median(rounds.map((r) => r.serverRunQueueMs)),
    loadGeneratorRunQueueMs: median(rounds.map((r) => r.loadGeneratorRunQueueMs)),
    unexpected: rounds.reduce((sum, r) => sum + r.unexpected, 0),
  }
}

/**
 * A warm-up round, then `options.rounds` rounds of: `options.waiters` long polls held on
 * `waitOn`, one `PUT` of `personId` through `writeThrough`, every waiter's answer timed.
 */
export async function measureWakeUp(waitOn: ServerProcess, writeThrough: ServerProcess, personId: string, options: WakeUpOptions): Promise<WakeUpResult> {
  const first = await round(waitOn, writeThrough, personId, options, 'warm-up')
  options.log(describeRound('warm-up', first))
  const rounds: WakeUpRound[] = []
  for (let i = 1; i <= options.rounds; i++) {
    const r = await round(waitOn, writeThrough, personId, options, `round ${i}`)
    options.log(describeRound(`round ${i}`, r))
    rounds.push(r)
  }
  return summariseRounds(options.waiters, first, rounds)
}

/** The wake-up on one server process and on its ceiling, round by round. */
export interface PairedWakeUp {
  readonly ours: WakeUpResult
  readonly ceiling: WakeUpResult
  /** Of each round, our p99 over the ceiling's; and their median. */
  readonly p99Ratios: readonly number[]
  readonly p99Ratio: number
}

/**
 * The wake-up on `ours` (waiters and write on the same process) paired with `ceiling` (the bare
 * long-poll server): a warm-up round of each, then rounds against each back to back, which goes
 * first alternating, so that both see the same machine.
 */
export async function measureWakeUpPaired(ours: ServerProcess, ceiling: ServerProcess, personId: string, options: WakeUpOptions): Promise<PairedWakeUp> {
  const ceilingFirst = await round(ceiling, ceiling, personId, { ...options, onWakeUp: undefined }, 'warm-up')
  options.log(describeRound('warm-up, bare node:http', ceilingFirst))
  const oursFirst = await round(ours, ours, personId, options, 'warm-up')
  options.log(describeRound('warm-up, ifmatch', oursFirst))
  const oursRounds: WakeUpRound[] = []
  const ceilingRounds: WakeUpRound[] = []
  for (let i = 1; i <= options.rounds; i++) {
    for (const side of i % 2 === 1 ? [ceiling, ours] : [ours, ceiling]) {
      const mine = side === ours
      const r = await round(side, side, personId, mine ? options : { ...options, onWakeUp: undefined }, `round ${i}`)
      options.log(describeRound(`round ${i}, ${mine ? 'ifmatch' : 'bare node:http'}`, r))
      if (mine) oursRounds.push(r)
      else ceilingRounds.push(r)
    }
  }
  const p99Ratios = oursRounds.map((r, i) => r.p99Ms / ceilingRounds[i]!.p99Ms)
  return {
    ours: summariseRounds(options.waiters, oursFirst, oursRounds),
    ceiling: summariseRounds(options.waiters, ceilingFirst, ceilingRounds),
    p99Ratios,
    p99Ratio: median(p99Ratios),
  }
}
