/**
 * The ifmatch command: reads PORT, HOST, DATABASE_URL, … (or --port, --host, --database, …),
 * opens the store, and listens; with --workers N, a node:cluster primary runs N such processes on
 * one port. `node dist/server.js --help` says how.
 */
import cluster from 'node:cluster'
import { parseArgs } from 'node:util'
import { buildApp } from './http/app.js'
import { isValidBearerToken } from './http/bearer-auth.js'
import { CorsOriginsError, parseCorsOrigins, type CorsOrigins } from './http/cors.js'
import { StoreUnavailableError } from './store/person-store.js'
import { DEFAULT_DATABASE_URL, DatabaseUrlError, openStore, type StoreOptions } from './store/open-store.js'
import { SqliteInUseError, type SqliteLocking } from './store/sqlite/sqlite-person-store.js'

const USAGE = `Usage: ifmatch [--port N] [--host ADDR] [--database URL] [--workers N] [--pool-size N] [--cors-origins LIST]
               [--sqlite-synchronous NORMAL|FULL] [--sqlite-locking exclusive|shared]
               [--tombstone-retention DURATION]

Serves the persons API with ETags and conditional requests (see README.md).

Options (each overrides its environment variable):
  --port N          TCP port to listen on             (PORT, default 5000)
  --host ADDR       address to bind                   (HOST, default 127.0.0.1)
  --database URL    where the data lives              (DATABASE_URL, default ${DEFAULT_DATABASE_URL})
                      sqlite:PATH           an embedded SQLite file, created if absent
                      postgres://USER@HOST:PORT/DB   a PostgreSQL database shared by any number of processes
  --workers N       server processes on this machine, one port (WORKERS, default 1)
  --pool-size N     PostgreSQL connections per process (DATABASE_POOL_SIZE, default 10)
  --cors-origins LIST
                    origins whose scripts may call the API: comma-separated, or *
                                                      (CORS_ORIGINS, default none: CORS off)
  --sqlite-synchronous NORMAL|FULL
                    SQLite commit durability (SQLITE_SYNCHRONOUS, default NORMAL): NORMAL survives
                    any process crash or kill, FULL also a power loss (one fsync per write)
  --sqlite-locking exclusive|shared
                    who may open the SQLite file (SQLITE_LOCKING, default exclusive; shared with
                    --workers): exclusive lets this one process in and reads faster, shared lets
                    any number of processes in, every one of which must say shared
  --tombstone-retention DURATION
                    how long the changes feed remembers deletes (TOMBSTONE_RETENTION, default
                    for ever), as 30d, 12h, 15m, 10s or 500ms; a feed token older than that gets
                    410 Gone and its client starts again from since=0
  -h, --help        print this help and exit

Environment only:
  LOG_LEVEL         fatal, error, warn, info (default), debug
  LOG_FORMAT        json (default when stdout is not a terminal) or pretty (default on a terminal)
  LOG_REQUESTS=1    log every request and its answer (off by default: it costs more than a 304)
  API_TOKEN         when set, writes need Authorization: Bearer <API_TOKEN>
  API_TOKEN_READS=1 with API_TOKEN, reads need it too
  SHUTDOWN_TIMEOUT_MS  how long SIGTERM/SIGINT waits for in-flight requests (default 10000)
`

interface Config {
  port: number
  host: string
  databaseUrl: string
  workers: number
  storeOptions: StoreOptions
  logLevel: string
  prettyLogs: boolean
  logRequests: boolean
  apiToken: string | undefined
  protectReads: boolean
  shutdownTimeoutMs: number
  corsOrigins: CorsOrigins | undefined
  tombstoneRetentionMs: number | undefined
}

const DURATION_UNITS_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** A duration such as `30d`, `12h`, `15m`, `10s` or `500ms`, in ms. */
function duration(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined
  const match = /^([0-9]{1,9})(ms|s|m|h|d)$/.exec(raw.trim())
  const ms = match === null ? NaN : Number(match[1]) * DURATION_UNITS_MS[match[2]!]!
  if (!(ms >= 1 && ms <= 100 * 365 * 86_400_000)) {
    throw new UsageError(`${name} must be a duration such as 30d, 12h, 15m, 10s or 500ms (at least 1ms), got ${JSON.stringify(raw)}`)
  }
  return ms
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

class UsageError extends Error {}

function wholeNumber(name: string, raw: string | undefined, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined
  const value = /^\d{1,6}$/.test(raw) ? Number(raw) : NaN
  if (!(value >= min && value <= max)) throw new UsageError(`${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`)
  return value
}

function synchronousMode(raw: string | undefined): 'FULL' | 'NORMAL' | undefined {
  if (raw === undefined) return undefined
  const mode = raw.toUpperCase()
  if (mode !== 'FULL' && mode !== 'NORMAL') throw new UsageError(`--sqlite-synchronous must be NORMAL or FULL, got ${JSON.stringify(raw)}`)
  return mode
}

function lockingMode(raw: string | undefined, workers: number, databaseUrl: string): SqliteLocking | undefined {
  if (raw === undefined) return workers > 1 ? 'shared' : undefined
  const mode = raw.toLowerCase()
  if (mode !== 'exclusive' && mode !== 'shared') throw new UsageError(`--sqlite-locking must be exclusive or shared, got ${JSON.stringify(raw)}`)
  // on PostgreSQL the setting means nothing, and neither does the conflict
  if (mode === 'exclusive' && workers > 1 && databaseUrl.startsWith('sqlite:')) {
    throw new UsageError('--sqlite-locking exclusive lets one process in, so it cannot go with --workers above 1')
  }
  return mode
}

function corsOrigins(raw: string | undefined): CorsOrigins | undefined {
  try {
    return parseCorsOrigins(raw)
  } catch (error) {
    if (error instanceof CorsOriginsError) throw new UsageError(error.message)
    throw error
  }
}

function readConfig(argv: string[]): Config | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      database: { type: 'string' },
      workers: { type: 'string' },
      'pool-size': { type: 'string' },
      'sqlite-synchronous': { type: 'string' },
      'sqlite-locking': { type: 'string' },
      'cors-origins': { type: 'string' },
      'tombstone-retention': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  })
  if (values.help === true) return 'help'
  const env = process.env
  const logLevel = env.LOG_LEVEL ?? 'info'
  if (!LOG_LEVELS.includes(logLevel)) throw new UsageError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`)
  const logFormat = env.LOG_FORMAT ?? (process.stdout.isTTY ? 'pretty' : 'json')
  if (logFormat !== 'json' && logFormat !== 'pretty') throw new UsageError(`LOG_FORMAT must be json or pretty, got ${JSON.stringify(logFormat)}`)
  if (env.API_TOKEN !== undefined && !isValidBearerToken(env.API_TOKEN)) {
    throw new UsageError('API_TOKEN must be a bearer token (RFC 6750): letters, digits and - . _ ~ + /, then optional =; unset it to leave writes open')
  }
  const workers = wholeNumber('--workers', values.workers ?? process.env.WORKERS, 1, 256) ?? 1
  const databaseUrl = values.database ?? process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL
  return {
    logLevel,
    prettyLogs: logFormat === 'pretty',
    logRequests: env.LOG_REQUESTS === '1' || env.LOG_REQUESTS === 'true',
    apiToken: env.API_TOKEN,
    protectReads: env.API_TOKEN_READS === '1' || env.API_TOKEN_READS === 'true',
    shutdownTimeoutMs: wholeNumber('SHUTDOWN_TIMEOUT_MS', env.SHUTDOWN_TIMEOUT_MS, 0, 600_000) ?? 10_000,
    port: wholeNumber('--port', values.port ?? process.env.PORT, 0, 65535) ?? 5000,
    host: values.host ?? process.env.HOST ?? '127.0.0.1',
    databaseUrl,
    workers,
    storeOptions: {
      poolSize: wholeNumber('--pool-size', values['pool-size'] ?? process.env.DATABASE_POOL_SIZE, 1, 1000),
      sqliteSynchronous: synchronousMode(values['sqlite-synchronous'] ?? process.env.SQLITE_SYNCHRONOUS),
      sqliteLocking: lockingMode(values['sqlite-locking'] ?? process.env.SQLITE_LOCKING, workers, databaseUrl),
    },
    corsOrigins: corsOrigins(values['cors-origins'] ?? process.env.CORS_ORIGINS),
    tombstoneRetentionMs: duration('--tombstone-retention', values['tombstone-retention'] ?? process.env.TOMBSTONE_RETENTION),
  }
}

async function openConfiguredStore(config: Config) {
  try {
    return await openStore(config.databaseUrl, config.storeOptions)
  } catch (error) {
    if (error instanceof DatabaseUrlError) {
      process.stderr.write(`ifmatch: ${error.message}\n`)
      process.exit(2)
    }
    if (error instanceof SqliteInUseError) {
      process.stderr.write(`ifmatch: ${error.message}\n`)
      process.exit(1)
    }
    if (error instanceof StoreUnavailableError) {
      const cause = error.cause instanceof Error ? `: ${error.cause.message}` : ''
      process.stderr.write(`ifmatch: cannot open the database${cause}\n`)
      process.exit(1)
    }
    throw error
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
 * One server process: open the store, listen, and on SIGTERM/SIGINT stop accepting, finish the
 * requests in flight, close the store and exit 0. Requests still running after
 * `shutdownTimeoutMs` are cut off, and the exit code is then 1.
 */
async function serve(config: Config): Promise<void> {
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
    let exitCode = 0
    const deadline = setTimeout(() => {
      exitCode = 1
      app.log.error({ timeoutMs: config.shutdownTimeoutMs }, 'requests still in flight after the shutdown timeout: closing their connections')
      app.server.closeAllConnections()
    }, config.shutdownTimeoutMs)
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
    app.log.info({ exitCode }, 'stopped')
    // pino flushes its transport (pino-pretty) on exit
    process.exit(exitCode)
  }
  process.on('SIGTERM', (signal) => void shutdown(signal))
  process.on('SIGINT', (signal) => void shutdown(signal))
  const url = await app.listen({ port: config.port, host: config.host })
  if (cluster.isPrimary) {
    app.log.info({ driver: store.driver, url, workers: 1, writeProtection: config.apiToken !== undefined, docs: `${url}/docs` }, 'ifmatch ready')
  }
}

/**
 * The node:cluster primary: migrates once, runs N workers, replaces any that die. On SIGTERM or
 * SIGINT it passes SIGTERM to every worker, waits for all of them, and exits 0 when every worker
 * shut down cleanly (1 otherwise).
 */
async function supervise(config: Config): Promise<void> {
  // create or migrate the schema once, before any worker opens the database
  await (await openConfiguredStore(config)).close()
  let stopping = false
  let listening = 0
  let exitCode = 0
  const fork = (): void => {
    cluster.fork()
  }
  cluster.on('listening', (_worker, address) => {
    listening++
    if (listening === config.workers) {
      const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${address.port}`
      process.stdout.write(JSON.stringify({ level: 30, time: Date.now(), pid: process.pid, msg: 'ifmatch ready', url, workers: config.workers }) + '\n')
    }
  })
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (code !== 0) exitCode = 1
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(exitCode)
      return
    }
    process.stderr.write(`ifmatch: worker ${worker.process.pid} exited (${signal ?? code}); starting another\n`)
    setTimeout(fork, 500)
  })
  const stop = (): void => {
    if (stopping) return
    stopping = true
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM')
    if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0)
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  for (let i = 0; i < config.workers; i++) fork()
}

async function main(): Promise<void> {
  let config: Config | 'help'
  try {
    config = readConfig(process.argv.slice(2))
  } catch (error) {
    process.stderr.write(`ifmatch: ${(error as Error).message}\n\n${USAGE}`)
    process.exit(2)
  }
  if (config === 'help') {
    process.stdout.write(USAGE)
    return
  }
  if (config.workers > 1 && cluster.isPrimary) await supervise(config)
  else await serve(config)
}

await main()
