/**
 * One ifmatch server process: the store, the app, the port, and a graceful shutdown on SIGTERM or
 * SIGINT. Run alone, or as one of the workers `supervise` starts.
 */
import cluster from 'node:cluster'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../http/app.js'
import type { PersonStore } from '../store/person-store.js'
import { openConfiguredStore } from './open-configured-store.js'
import type { Config } from './read-config.js'

/**
 * One server process: open the store, listen, and on SIGTERM/SIGINT stop accepting, finish the
 * requests in flight, close the store and exit 0. Requests still running after
 * `shutdownTimeoutMs` are cut off, and the exit code is then 1.
 */
export async function serve(config: Config): Promise<void> {
  const store = await openConfiguredStore(config)
  const app = buildApp({
    store,
    logger: loggerOptions(config),
    logRequests: config.logRequests,
    apiToken: config.apiToken,
    protectReads: config.protectReads,
    processMetrics: true,
    corsOrigins: config.corsOrigins,
    tombstoneRetentionMs: config.tombstoneRetentionMs,
  })
  let closing = false
  const shutdown = async (signal: string): Promise<void> => {
    if (closing) return
    closing = true
    app.log.info({ signal }, 'shutting down: finishing in-flight requests')
    const exitCode = await closeGracefully(app, store, config.shutdownTimeoutMs)
    app.log.info({ exitCode }, 'stopped')
    // pino flushes its transport (pino-pretty) on exit
    process.exit(exitCode)
  }
  process.on('SIGTERM', (signal) => void shutdown(signal))
  process.on('SIGINT', (signal) => void shutdown(signal))
  const url = await app.listen({ port: config.port, host: config.host })
  // a worker stays quiet: its primary says ready once every worker listens
  if (cluster.isPrimary) {
    app.log.info({ driver: store.driver, url, workers: 1, writeProtection: config.apiToken !== undefined, docs: `${url}/docs` }, 'ifmatch ready')
  }
}

/** pino options: JSON lines on stdout, or pino-pretty's coloured lines when a person is reading. */
function loggerOptions(config: Config): Record<string, unknown> {
  const options: Record<string, unknown> = { level: config.logLevel }
  if (config.prettyLogs) {
    options.transport = { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } }
  }
  return options
}

/**
 * Stops accepting, waits for the requests in flight (cutting their connections after `timeoutMs`),
 * then closes the store; resolves with the exit code: 0 when all of it went cleanly, else 1.
 */
async function closeGracefully(app: FastifyInstance, store: PersonStore, timeoutMs: number): Promise<number> {
  let exitCode = 0
  const deadline = setTimeout(() => {
    exitCode = 1
    app.log.error({ timeoutMs }, 'requests still in flight after the shutdown timeout: closing their connections')
    app.server.closeAllConnections()
  }, timeoutMs)
  try {
    await app.close()
  } catch (error) {
    exitCode = 1
    app.log.error({ err: error }, 'error while closing the server')
  }
  clearTimeout(deadline)
  try {
    await store.close()
  } catch (error) {
    exitCode = 1
    app.log.error({ err: error }, 'error while closing the store')
  }
  return exitCode
}
