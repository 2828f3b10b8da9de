/**
 * The processes the benchmark drives: ifmatch as a user starts it (`node dist/server.js`), and the
 * bare node:http ceiling. Each runs pinned to its own cores when `taskset` is available.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { once } from 'node:events'
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('..', import.meta.url))

/** True when `taskset` runs here and there are at least two cores to split. */
export const CAN_PIN = availableParallelism() >= 2 && spawnSync('taskset', ['-c', '0', 'true']).status === 0

/** Pins every thread of this process (the load generator) to `cpus`, e.g. '1'. */
export function pinSelf(cpus: string): boolean {
  if (!CAN_PIN) return false
  return spawnSync('taskset', ['-a', '-c', '-p', cpus, String(process.pid)], { stdio: 'ignore' }).status === 0
}

export interface RunningProcess {
  readonly url: string
  readonly child: ChildProcess
  /** CPU time (user + system, ms) used so far by the process and its children (cluster workers). */
  cpuMs(): number
  /** Resident memory of the process itself (not its children), in bytes, from /proc (NaN where absent). */
  rssBytes(): number
  /** Time its main thread spent ready to run but waiting for a core, in ms so far (NaN where /proc has no schedstat). */
  runQueueMs(): number
  stop(): Promise<void>
}

interface StatFields {
  /** The command name, as /proc/PID/stat gives it between parentheses. */
  readonly name: string
  readonly ppid: string
  /** utime + stime, in clock ticks (100 per second on Linux). */
  readonly ticks: number
  /** cutime + cstime: the ticks of the ended children this process has waited for. */
  readonly reapedTicks: number
}

// /proc/PID/stat: the name in parentheses, then from the state on (fields 3, …): ppid is field 4,
// utime, stime, cutime and cstime fields 14 to 17
function statFields(pid: string): StatFields | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const close = text.lastIndexOf(') ')
    const fields = text.slice(close + 2).split(' ')
    return {
      name: text.slice(text.indexOf('(') + 1, close),
      ppid: fields[1]!,
      ticks: Number(fields[11]) + Number(fields[12]),
      reapedTicks: Number(fields[13]) + Number(fields[14]),
    }
  } catch {
    // absent, or the process ended between the listing and the read
    return undefined
  }
}

/** The ids of the processes running now, from /proc (none where /proc is absent). */
function processIds(): string[] {
  try {
    return readdirSync('/proc').filter((name) => /^\d+$/.test(name))
  } catch {
    return []
  }
}

/** CPU ms of `pid` and its direct children, from /proc (0 where /proc is absent). */
function processTreeCpuMs(pid: number): number {
  let ticks = statFields(String(pid))?.ticks ?? 0
  for (const name of processIds()) {
    const stat = statFields(name)
    if (stat?.ppid === String(pid)) ticks += stat.ticks
  }
  return ticks * 10
}

/**
 * CPU ms used so far by every process named postgres on this machine (the server and all its
 * backends, whoever they serve: on a shared machine, other databases' work counts too), with the
 * ended backends' time that the server has reaped (cutime, cstime): without it, a pooled
 * connection closed during a cell took its CPU time out of the sum, which once went negative.
 */
export function postgresCpuMs(): number {
  let ticks = 0
  for (const name of processIds()) {
    const stat = statFields(name)
    if (stat?.name === 'postgres') ticks += stat.ticks + stat.reapedTicks
  }
  return ticks * 10
}

/** VmRSS of `pid` in bytes, from /proc/PID/status. */
function residentBytes(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match === null ? NaN : Number(match[1]) * 1024
  } catch {
    return NaN
  }
}

/**
 * Time the main thread of `pid` (the one running JavaScript) spent ready to run but waiting for
 * a core, in ms: the second field of /proc/PID/schedstat (ns). NaN where /proc has no schedstat.
 */
export function runQueueMs(pid: number | 'self'): number {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1]) / 1e6
  } catch {
    return NaN
  }
}

/** Spawns `node ...args` (under `taskset -c cpus` when possible) and waits for its URL on stdout. */
async function startProcess(
  args: readonly string[],
  cpus: string | undefined,
  env: NodeJS.ProcessEnv,
  findUrl: (line: string) => string | undefined,
): Promise<RunningProcess> {
  const command = cpus !== undefined && CAN_PIN ? 'taskset' : process.execPath
  const argv = cpus !== undefined && CAN_PIN ? ['-c', cpus, process.execPath, ...args] : [...args]
  const child = spawn(command, argv, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk
  })
  const exited = once(child, 'exit')
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      // never leave a server behind that this run cannot use
      child.kill('SIGKILL')
      reject(new Error(`${args.join(' ')} not ready after 20 s:\n${output}`))
    }, 20_000)
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk
      for (const line of output.split('\n')) {
        const found = findUrl(line)
        if (found !== undefined) {
          clearTimeout(timer)
          resolve(found)
          return
        }
      }
    })
    void exited.then(([code]) => {
      clearTimeout(timer)
      reject(new Error(`${args.join(' ')} exited (${String(code)}) before it was ready:\n${output}`))
    })
  })
  // drain the pipes for the rest of the run so that the child never blocks on a full one
  child.stdout!.resume()
  return {
    url,
    child,
    cpuMs: () => processTreeCpuMs(child.pid!),
    // taskset execs node in place, so the child's pid is the server's own
    rssBytes: () => residentBytes(child.pid!),
    runQueueMs: () => runQueueMs(child.pid!),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      await exited
    },
  }
}

function readyUrl(line: string): string | undefined {
  if (!line.includes('"msg":"ifmatch ready"')) return undefined
  return /"url":"([^"]+)"/.exec(line)?.[1]
}

/** Starts `node dist/server.js` on port 0 over `databaseUrl` with `workers` processes. */
export function startIfmatch(
  databaseUrl: string,
  workers: number,
  cpus: string | undefined,
  env: NodeJS.ProcessEnv = {},
  nodeArgs: readonly string[] = [],
): Promise<RunningProcess> {
  return startProcess(
    [...nodeArgs, 'dist/server.js', '--port', '0', '--host', '127.0.0.1', '--database', databaseUrl, '--workers', String(workers)],
    cpus,
    { LOG_LEVEL: 'info', ...env },
    readyUrl,
  )
}

/** Starts the bare node:http ceiling server; `/page` answers `pageBytes` bytes. */
export function startBare(pageBytes: number, cpus: string | undefined, nodeArgs: readonly string[] = []): Promise<RunningProcess> {
  return startProcess([...nodeArgs, 'bench/bare-server.mjs', String(pageBytes)], cpus, {}, (line) => {
    if (!line.startsWith('{"url"')) return undefined
    return (JSON.parse(line) as { url: string }).url
  })
}

/** Starts the bare node:http ceiling of the changes feed's wake-up (bench/bare-long-poll.mjs). */
export function startBareLongPoll(cpus: string | undefined): Promise<RunningProcess> {
  return startProcess(['bench/bare-long-poll.mjs'], cpus, {}, (line) => {
    if (!line.startsWith('{"url"')) return undefined
    return (JSON.parse(line) as { url: string }).url
  })
}

/** The peers of the benchmark: the same persons API written with another framework (bench/peers/). */
export type PeerKind = 'fastify' | 'express'

/**
 * Starts a peer server (bench/peers/<kind>-peer.mjs) holding `persons` persons in memory;
 * `args` are its own options (--compress for the Fastify one).
 */
export function startPeer(
  kind: PeerKind,
  persons: number,
  cpus: string | undefined,
  args: readonly string[] = [],
  nodeArgs: readonly string[] = [],
): Promise<RunningProcess> {
  return startProcess([...nodeArgs, `bench/peers/${kind}-peer.mjs`, String(persons), ...args], cpus, { NODE_ENV: 'production' }, (line) => {
    if (!line.startsWith('{"url"')) return undefined
    return (JSON.parse(line) as { url: string }).url
  })
}

/**
 * The machine a report's figures come from: CPU, cores, memory, Node, platform, and the load
 * average when the run began (`loadBefore`, from loadavg()) and now.
 */
export function machineFigures(loadBefore: readonly number[]): Record<string, unknown> {
  const rounded = (load: readonly number[]): number[] => load.map((x) => Number(x.toFixed(2)))
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    loadAverageBefore: rounded(loadBefore),
    loadAverageAfter: rounded(loadavg()),
  }
}
