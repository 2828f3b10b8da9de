/**
 * One cell of the benchmark: a warm-up, then fixed-duration autocannon runs against one URL,
 * summarised as requests/s and latency percentiles, with every unexpected status counted. A
 * paired cell alternates short runs against ifmatch and against its ceiling, so that both see the
 * same machine: on a shared machine the speed of a core drifts by tens of percent within minutes.
 */
import autocannon from 'autocannon'

/** What one workload sends; `expect` is the only status it may receive. */
export interface Workload {
  readonly name: string
  readonly path: string
  readonly expect: number
  readonly method?: 'GET' | 'PUT'
  readonly headers?: Record<string, string>
  /** Replaces the requests of each connection, as autocannon's setupClient does. */
  readonly setupClient?: (client: autocannon.Client) => void
  /** Runs before the warm-up and again before the measured run: learn the current ETags. */
  readonly prepare?: () => Promise<void>
}

export interface LoadOptions {
  readonly connections: number
  readonly durationSeconds: number
  readonly warmupSeconds: number
  /** The measured seconds are split into this many runs; the best one is reported. */
  readonly rounds: number
}

/** The numbers one cell reports. */
export interface Measurement {
  readonly requestsPerSecond: number
  readonly latencyP50Ms: number
  readonly latencyP99Ms: number
  readonly requests: number
  /** Responses whose status was not `expect`, plus connection errors and timeouts. */
  readonly unexpected: number
  readonly statuses: Record<string, number>
  /** Server CPU time (user + system, all its processes) per answered request, in µs. */
  readonly serverCpuMicrosPerRequest: number
  /** The database's processes' CPU time per answered request, in µs, where a side counts it (PostgreSQL). */
  readonly databaseCpuMicrosPerRequest?: number
}

function run(baseUrl: string, workload: Workload, options: LoadOptions, seconds: number): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: baseUrl + workload.path,
        method: workload.method ?? 'GET',
        headers: workload.headers ?? {},
        connections: options.connections,
        pipelining: 1,
        duration: seconds,
        // autocannon stops at the first sample tick after the duration: with its default tick (1 s),
        // a 0.5 s run would last a whole second
        sampleInt: 100,
        ...(workload.setupClient === undefined ? {} : { setupClient: workload.setupClient }),
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    )
    instance.on('error', reject)
  })
}

/** Warms up, then measures `workload` for the configured duration. */
export async function measure(baseUrl: string, workload: Workload, options: LoadOptions, serverCpuMs: () => number): Promise<Measurement> {
  if (options.warmupSeconds > 0) {
    await workload.prepare?.()
    await run(baseUrl, workload, options, options.warmupSeconds)
  }
  // the measured time is split into rounds and the best round counts: on a shared machine a
  // neighbour's burst slows one round, and the best one is the least disturbed
  const rounds: Measurement[] = []
  for (let i = 0; i < options.rounds; i++) {
    // the last requests of the run before were answered to closed connections: let them land
    await new Promise((resolve) => setTimeout(resolve, 200))
    await workload.prepare?.()
    rounds.push(await measureOnce(baseUrl, workload, options.durationSeconds / options.rounds, options, serverCpuMs))
  }
  const best = rounds.reduce((a, b) => (b.requestsPerSecond > a.requestsPerSecond ? b : a))
  // every round must have answered as expected, not just the best one
  return { ...best, unexpected: rounds.reduce((sum, r) => sum + r.unexpected, 0) }
}

/** One side of a paired cell: a server, what to send it, and how much CPU its processes used so far. */
export interface Side {
  readonly baseUrl: string
  readonly workload: Workload
  readonly serverCpuMs: () => number
  /** CPU ms used so far by the database's own processes, where there are any (PostgreSQL). */
  readonly databaseCpuMs?: () => number
}

export interface PairedMeasurement {
  /** The round whose ratio is the median: ifmatch's figures in it. */
  readonly ours: Measurement
  /** The ceiling's figures in that same round. */
  readonly ceiling: Measurement
  /** Requests/s of ifmatch over the ceiling's, round by round. */
  readonly ratios: readonly number[]
  /** The median of `ratios`. */
  readonly ratio: number
  /** The median, over rounds, of the ceiling's server CPU per request over ifmatch's. */
  readonly cpuRatio: number
}

/** The median of `values` (the mean of the middle two for an even count). */
export const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

/**
 * Warms both sides up, then runs `options.rounds` rounds, each a run against each side back to
 * back (ABBA: which goes first alternates), and reports the median round. Every run of ours must
 * have answered as expected.
 */
export async function measurePaired(ours: Side, ceiling: Side, options: LoadOptions): Promise<PairedMeasurement> {
  for (const side of [ceiling, ours]) {
    await side.workload.prepare?.()
    if (options.warmupSeconds > 0) await run(side.baseUrl, side.workload, options, options.warmupSeconds)
  }
  const seconds = options.durationSeconds / options.rounds
  const rounds: { ours: Measurement; ceiling: Measurement; ratio: number; cpuRatio: number }[] = []
  for (let i = 0; i < options.rounds; i++) {
    const measured = new Map<Side, Measurement>()
    for (const side of i % 2 === 0 ? [ceiling, ours] : [ours, ceiling]) {
      // the last requests of the run before were answered to closed connections: let them land
      await new Promise((resolve) => setTimeout(resolve, 200))
      await side.workload.prepare?.()
      measured.set(side, await measureOnce(side.baseUrl, side.workload, seconds, options, side.serverCpuMs))
    }
    const o = measured.get(ours)!
    const c = measured.get(ceiling)!
    rounds.push({ ours: o, ceiling: c, ratio: o.requestsPerSecond / c.requestsPerSecond, cpuRatio: c.serverCpuMicrosPerRequest / o.serverCpuMicrosPerRequest })
  }
  const ratio = median(rounds.map((r) => r.ratio))
  const middle = rounds.find((r) => r.ratio === ratio) ?? rounds.reduce((a, b) => (Math.abs(b.ratio - ratio) < Math.abs(a.ratio - ratio) ? b : a))
  return {
    ours: { ...middle.ours, unexpected: rounds.reduce((sum, r) => sum + r.ours.unexpected, 0) },
    ceiling: middle.ceiling,
    ratios: rounds.map((r) => r.ratio),
    ratio,
    cpuRatio: median(rounds.map((r) => r.cpuRatio)),
  }
}

async function measureOnce(
  baseUrl: string,
  workload: Workload,
  seconds: number,
  options: LoadOptions,
  serverCpuMs: () => number,
  databaseCpuMs?: () => number,
): Promise<Measurement> {
  const cpuBefore = serverCpuMs()
  const databaseBefore = databaseCpuMs?.()
  const result = await run(baseUrl, workload, options, seconds)
  const cpuMs = serverCpuMs() - cpuBefore
  const databaseMs = databaseBefore === undefined ? undefined : databaseCpuMs!() - databaseBefore
  const statuses: Record<string, number> = {}
  for (const [code, stat] of Object.entries(result.statusCodeStats ?? {})) statuses[code] = stat.count ?? 0
  const expected = statuses[String(workload.expect)] ?? 0
  const answered = Object.values(statuses).reduce((a, b) => a + b, 0)
  return {
    requestsPerSecond: answered / result.duration,
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
    requests: answered,
    unexpected: answered - expected + result.errors + result.timeouts,
    statuses,
    serverCpuMicrosPerRequest: answered === 0 ? NaN : (cpuMs * 1000) / answered,
    ...(databaseMs === undefined ? {} : { databaseCpuMicrosPerRequest: answered === 0 ? NaN : (databaseMs * 1000) / answered }),
  }
}

/** One target of an interleaved cell, by name. */
export interface NamedSide extends Side {
  readonly name: string
}

/** What an interleaved cell measured: every side's run in every round. */
export interface InterleavedMeasurement {
  readonly names: readonly string[]
  /** rounds[i][j]: side j in round i. */
  readonly rounds: readonly (readonly Measurement[])[]
}

/**
 * Warms every side up, then runs `options.rounds` rounds, each a short run against every side back
 * to back, in the given order in even rounds and reversed in odd ones (ABC CBA ABC: each side is
 * as often early as late). Ratios between any two sides are then taken round by round
 * (`roundRatios`), so that the machine's drift over a cell cancels.
 */
export async function measureInterleaved(sides: readonly NamedSide[], options: LoadOptions): Promise<InterleavedMeasurement> {
  for (const side of sides) {
    await side.workload.prepare?.()
    if (options.warmupSeconds > 0) await run(side.baseUrl, side.workload, options, options.warmupSeconds)
  }
  const seconds = options.durationSeconds / options.rounds
  const rounds: Measurement[][] = []
  for (let i = 0; i < options.rounds; i++) {
    const measured: Measurement[] = new Array<Measurement>(sides.length)
    const order = sides.map((_, j) => j)
    if (i % 2 === 1) order.reverse()
    for (const j of order) {
      const side = sides[j]!
      // the last requests of the run before were answered to closed connections: let them land
      await new Promise((resolve) => setTimeout(resolve, 200))
      await side.workload.prepare?.()
      measured[j] = await measureOnce(side.baseUrl, side.workload, seconds, options, side.serverCpuMs, side.databaseCpuMs)
    }
    rounds.push(measured)
  }
  return { names: sides.map((s) => s.name), rounds }
}

/** Requests/s of side `a` over side `b`, round by round. */
export function roundRatios(m: InterleavedMeasurement, a: string, b: string): number[] {
  const i = m.names.indexOf(a)
  const j = m.names.indexOf(b)
  if (i < 0 || j < 0) throw new Error(`no side ${i < 0 ? a : b} in ${m.names.join(', ')}`)
  return m.rounds.map((round) => round[i]!.requestsPerSecond / round[j]!.requestsPerSecond)
}

/**
 * One side's figures over an interleaved cell: its median round (by requests/s), with the median
 * CPU per request of all its rounds and the unexpected answers of all of them.
 */
export function sideSummary(m: InterleavedMeasurement, name: string): Measurement {
  const j = m.names.indexOf(name)
  if (j < 0) throw new Error(`no side ${name} in ${m.names.join(', ')}`)
  const runs = m.rounds.map((round) => round[j]!)
  const rate = median(runs.map((r) => r.requestsPerSecond))
  const middle = runs.reduce((a, b) => (Math.abs(b.requestsPerSecond - rate) < Math.abs(a.requestsPerSecond - rate) ? b : a))
  const statuses: Record<string, number> = {}
  for (const r of runs) for (const [code, n] of Object.entries(r.statuses)) statuses[code] = (statuses[code] ?? 0) + n
  return {
    ...middle,
    requestsPerSecond: rate,
    unexpected: runs.reduce((sum, r) => sum + r.unexpected, 0),
    statuses,
    serverCpuMicrosPerRequest: median(runs.map((r) => r.serverCpuMicrosPerRequest)),
    ...(runs[0]!.databaseCpuMicrosPerRequest === undefined
      ? {}
      : { databaseCpuMicrosPerRequest: median(runs.map((r) => r.databaseCpuMicrosPerRequest ?? NaN)) }),
  }
}
