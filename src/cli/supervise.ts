/**
 * The node:cluster primary behind `--workers N`: N `serve` processes share one port, and the
 * primary keeps N of them running until it is told to stop.
 */
import cluster from 'node:cluster'
import { openConfiguredStore } from './open-configured-store.js'
import type { Config } from './read-config.js'

/** How long the primary waits before replacing a worker that died, so a crash loop cannot spin. */
const RESTART_DELAY_MS = 500

/**
 * The node:cluster primary: migrates once, runs N workers, replaces any that die. On SIGTERM or
 * SIGINT it passes SIGTERM to every worker, waits for all of them, and exits 0 when every worker
 * shut down cleanly (1 otherwise).
 */
export async function supervise(config: Config): Promise<void> {
  // create or migrate the schema once, before any worker opens the database
  await (await openConfiguredStore(config)).close()
  let stopping = false
  let listening = 0
  let exitCode = 0
  const fork = (): void => {
    cluster.fork()
  }
  const workerCount = (): number => Object.keys(cluster.workers ?? {}).length
  cluster.on('listening', (_worker, address) => {
    listening++
    if (listening === config.workers) {
      const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${address.port}`
      process.stdout.write(`${JSON.stringify({ level: 30, time: Date.now(), pid: process.pid, msg: 'ifmatch ready', url, workers: config.workers })}\n`)
    }
  })
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (code !== 0) exitCode = 1
      if (workerCount() === 0) process.exit(exitCode)
      return
    }
    process.stderr.write(`ifmatch: worker ${worker.process.pid} exited (${signal ?? code}); starting another\n`)
    setTimeout(fork, RESTART_DELAY_MS)
  })
  const stop = (): void => {
    if (stopping) return
    stopping = true
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM')
    if (workerCount() === 0) process.exit(0)
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  for (let i = 0; i < config.workers; i++) fork()
}
