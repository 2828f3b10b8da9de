/**
 * Starts the real `ifmatch` command as a child process (as `npm start` does, from the TypeScript
 * sources through tsx) on an ephemeral port, and waits until it says it is ready.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { after } from 'node:test'
import { fileURLToPath } from 'node:url'
import { settleKeeping } from './settle.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** The children spawned by this test file that have not exited yet. */
const running = new Set<ChildProcess>()

// A server left running keeps this test file's process alive for ever (its pipes hold the event
// loop), and the whole run with it. Once every test of the file is done, any still running is
// killed, and the file fails, naming the leak.
after(() => {
  const left = [...running]
  for (const child of left) child.kill('SIGKILL')
  if (left.length > 0) {
    throw new Error(`the tests left ${left.length} server process(es) running (pids ${left.map((c) => c.pid).join(', ')}); killed`)
  }
})

export interface ServerProcess {
  readonly baseUrl: string
  readonly child: ChildProcess
  /** Everything the process wrote so far, stdout and stderr. */
  output(): string
  /** Sends a signal and waits for the process to exit; resolves with its exit code or signal. */
  stop(signal?: NodeJS.Signals): Promise<number | NodeJS.Signals | null>
}

/**
 * Spawns `node --import tsx src/server.ts ...args` with DATABASE_URL set, on port 0 by default;
 * `env` adds or overrides environment variables (LOG_REQUESTS, API_TOKEN, …).
 */
export async function spawnServer(
  databaseUrl: string,
  args: readonly string[] = [],
  timeoutMs = 20_000,
  env: Readonly<Record<string, string>> = {},
): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts', '--port', '0', ...args], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: databaseUrl, LOG_LEVEL: 'info', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  running.add(child)
  child.once('exit', () => running.delete(child))
  let text = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    text += chunk
  })
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    text += chunk
  })
  const exited = once(child, 'exit')
  const baseUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`server not ready after ${timeoutMs} ms (killed):\n${text}`))
    }, timeoutMs)
    const check = (): void => {
      const match = /"msg":"ifmatch ready"[^\n]*"url":"([^"]+)"/.exec(text) ?? /"url":"([^"]+)"[^\n]*"msg":"ifmatch ready"/.exec(text)
      if (match !== null) {
        clearTimeout(timer)
        resolve(match[1]!)
      }
    }
    child.stdout!.on('data', check)
    void exited.then(([code]) => {
      clearTimeout(timer)
      reject(new Error(`server exited (${String(code)}) before it was ready:\n${text}`))
    })
  })
  return {
    baseUrl,
    child,
    output: () => text,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode ?? child.signalCode
      child.kill(signal)
      const [code, sig] = (await exited) as [number | null, NodeJS.Signals | null]
      return code ?? sig
    },
  }
}

/**
 * Starts one server per entry of `argsList` on `database`, all at once (concurrent starts on one
 * new database must not race its migration), and adds each that starts to `started` before any
 * failure is thrown, so that the caller's `after` stops every process that did start.
 */
export async function spawnServers(
  database: { readonly url: string; readonly env: Readonly<Record<string, string>> },
  argsList: readonly (readonly string[])[],
  started: ServerProcess[],
): Promise<ServerProcess[]> {
  const { values, failures } = await settleKeeping(
    argsList.map((args) => spawnServer(database.url, args, undefined, database.env)),
    started,
  )
  if (failures.length > 0) throw failures[0]
  return values
}

// only to turn a hang into a failure, never to judge speed
const STOP_TIMEOUT_MS = 10_000

/** Stops a spawned process (none if `undefined`); if SIGTERM does not end it in time, SIGKILL does. */
export async function stopProcess(server: ServerProcess | undefined): Promise<void> {
  if (server === undefined) return
  let timer: NodeJS.Timeout | undefined
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), STOP_TIMEOUT_MS)
  })
  const result = await Promise.race([server.stop('SIGTERM'), timedOut])
  clearTimeout(timer)
  if (result === 'timeout') {
    process.stderr.write(`!!! server process ${server.child.pid} ignored SIGTERM for ${STOP_TIMEOUT_MS} ms; killing it\n`)
    await server.stop('SIGKILL')
  }
}
