/**
 * One cell of the benchmark: a warm-up, then a fixed-duration autocannon run against one URL,
 * summarised as requests/s and latency percentiles, with every unexpected status counted.
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
}

function run(baseUrl: string, workload: Workload, options: LoadOptions, seconds: number): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const instance = autocannon({
      url: baseUrl + workload.path,
      method: workload.method ?? 'GET',
      headers: workload.headers ?? {},
      connections: options.connections,
      pipelining: 1,
      duration: seconds,
      ...(workload.setupClient === undefined ? {} : { setupClient: workload.setupClient }),
    }, (error, result) => error ? reject(error) : resolve(result))
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

async function measureOnce(baseUrl: string, workload: Workload, seconds: number, options: LoadOptions, serverCpuMs: () => number): Promise<Measurement> {
  const cpuBefore = serverCpuMs()
  const result = await run(baseUrl, workload, options, seconds)
  const cpuMs = serverCpuMs() - cpuBefore
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
    serverCpuMicrosPerRequest: answered === 0 ? NaN : cpuMs * 1000 / answered,
  }
}
