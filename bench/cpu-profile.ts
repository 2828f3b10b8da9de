/**
 * Reading a server's `--cpu-prof` profile: each sample's own time, by where it was spent (the
 * socket write, the rest of Node's HTTP, Fastify, SQLite, the service's own code, garbage
 * collection), over the whole profile or over given spans of time only.
 */
import { readFileSync } from 'node:fs'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string }
}
interface CpuProfile {
  nodes: ProfileNode[]
  /** µs on the monotonic clock process.hrtime() reads, in every process of the machine. */
  startTime: number
  samples: number[]
  timeDeltas: number[]
}

/** Where a sample's own (self) time counts, from the function and script it was taken in. */
export function category(frame: ProfileNode['callFrame']): string | undefined {
  const { functionName: name, url } = frame
  if (name === '(idle)') return undefined
  if (name === '(garbage collector)') return 'garbage collection'
  if (name === '(program)') return 'V8 and native, unattributed'
  if (url === '' && /^write(v|Latin1String|Utf8String|Buffer)$/.test(name)) return 'socket write (the write system call)'
  if (/node_modules\/(fastify|find-my-way|avvio|@fastify|fast-json-stringify|light-my-request)/.test(url)) return 'Fastify'
  if (
    /node_modules\/(express|router|body-parser|send|finalhandler|etag|fresh|qs|type-is|content-type|mime-types|on-finished|statuses|depd|debug|vary)\//.test(
      url,
    )
  )
    return 'Express'
  if (url.includes('/bench/peers/')) return "the peer's own code"
  if (url.includes('node_modules/prom-client')) return 'prom-client (the /metrics counters)'
  if (/node_modules\/(pino|lru-cache)/.test(url)) return 'pino, lru-cache'
  if (url.includes('node_modules/better-sqlite3')) return 'better-sqlite3 (JavaScript side)'
  if (url.includes('node_modules/pg')) return 'pg, pg-pool, pg-protocol (PostgreSQL client)'
  if (url.includes('/store/postgres/')) return 'PostgreSQL store'
  if (url.includes('/store/sqlite/')) return 'SQLite store (statements run in native code)'
  if (url.includes('/dist/') || url.includes('/bench/bare-server')) return "the service's own code"
  if (url.startsWith('node:internal/modules') || url.startsWith('node:internal/bootstrap')) return 'module loading (start-up)'
  if (url.startsWith('node:')) return 'Node.js core (HTTP parsing, streams, timers)'
  return url === '' ? 'other native' : 'other'
}

/**
 * The profile in `file`, as µs of self time per category divided by `divisor`; with `spans`
 * (process.hrtime.bigint() ns, from and to), only the samples taken within one of them.
 */
export function summarise(file: string, divisor: number, spans?: readonly (readonly [bigint, bigint])[]): Map<string, number> {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const micros = new Map<string, number>()
  const windows = spans?.map(([from, to]) => [Number(from / 1000n), Number(to / 1000n)] as const)
  let at = profile.startTime
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0
    at += delta
    if (windows !== undefined && !windows.some(([from, to]) => at >= from && at <= to)) return
    const where = category(byId.get(id)!.callFrame)
    if (where !== undefined) micros.set(where, (micros.get(where) ?? 0) + delta)
  })
  for (const [where, total] of micros) micros.set(where, total / divisor)
  return micros
}
