/**
 * The ifmatch command's configuration: flags over environment variables over defaults, every value
 * checked before anything is opened. A pure function of its inputs, so tests need no process.
 */
import { parseArgs } from 'node:util'
import { isValidBearerToken } from '../http/bearer-auth.js'
import { CorsOriginsError, parseCorsOrigins, type CorsOrigins } from '../http/cors.js'
import { DEFAULT_DATABASE_URL, type StoreOptions } from '../store/open-store.js'
import type { SqliteLocking } from '../store/sqlite/sqlite-person-store.js'

/** Everything one run of the command needs to know, checked. */
export interface Config {
  readonly port: number
  readonly host: string
  readonly databaseUrl: string
  readonly workers: number
  readonly storeOptions: StoreOptions
  readonly logLevel: string
  readonly prettyLogs: boolean
  readonly logRequests: boolean
  readonly apiToken: string | undefined
  readonly protectReads: boolean
  readonly shutdownTimeoutMs: number
  readonly corsOrigins: CorsOrigins | undefined
  readonly tombstoneRetentionMs: number | undefined
}

/** What the command line and environment ask for: a run, the help text, or a usage error to print. */
export type ConfigReading =
  | { readonly kind: 'config'; readonly config: Config }
  | { readonly kind: 'help' }
  | { readonly kind: 'usage-error'; readonly message: string }

/** The environment, as `process.env` gives it. */
export type Environment = Readonly<Record<string, string | undefined>>

/** pino's level names, most severe first. */
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

const DURATION_UNITS_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

const OPTIONS = {
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
} as const

/** A value the command cannot run with; its message is printed above the usage text. */
class UsageError extends Error {}

/**
 * Reads the command line (`process.argv.slice(2)`) and the environment into a checked `Config`.
 * `stdoutIsTerminal` picks the default LOG_FORMAT: pretty for a person, JSON lines for a machine.
 *
 * @example
 * readConfig(['--port', '8080'], { DATABASE_URL: 'sqlite:/tmp/a.sqlite' }) // { kind: 'config', config: { port: 8080, … } }
 */
export function readConfig(argv: readonly string[], env: Environment, { stdoutIsTerminal = false } = {}): ConfigReading {
  try {
    const { values } = parseArgs({ args: [...argv], options: OPTIONS, strict: true })
    if (values.help === true) return { kind: 'help' }
    return { kind: 'config', config: checkedConfig(values, env, stdoutIsTerminal) }
  } catch (error) {
    if (error instanceof UsageError || isParseArgsError(error)) return { kind: 'usage-error', message: error.message }
    throw error
  }
}

type Flags = Readonly<Partial<Record<Exclude<keyof typeof OPTIONS, 'help'>, string>>>

// the order of the checks decides which of several bad values is reported: keep it
function checkedConfig(flags: Flags, env: Environment, stdoutIsTerminal: boolean): Config {
  const logLevel = env.LOG_LEVEL ?? 'info'
  if (!LOG_LEVELS.includes(logLevel)) throw new UsageError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`)
  const logFormat = env.LOG_FORMAT ?? (stdoutIsTerminal ? 'pretty' : 'json')
  if (logFormat !== 'json' && logFormat !== 'pretty') throw new UsageError(`LOG_FORMAT must be json or pretty, got ${JSON.stringify(logFormat)}`)
  if (env.API_TOKEN !== undefined && !isValidBearerToken(env.API_TOKEN)) {
    throw new UsageError('API_TOKEN must be a bearer token (RFC 6750): letters, digits and - . _ ~ + /, then optional =; unset it to leave writes open')
  }
  const workers = wholeNumber('--workers', flags.workers ?? env.WORKERS, 1, 256) ?? 1
  const databaseUrl = flags.database ?? env.DATABASE_URL ?? DEFAULT_DATABASE_URL
  return {
    logLevel,
    prettyLogs: logFormat === 'pretty',
    logRequests: isOn(env.LOG_REQUESTS),
    apiToken: env.API_TOKEN,
    protectReads: isOn(env.API_TOKEN_READS),
    shutdownTimeoutMs: wholeNumber('SHUTDOWN_TIMEOUT_MS', env.SHUTDOWN_TIMEOUT_MS, 0, 600_000) ?? 10_000,
    port: wholeNumber('--port', flags.port ?? env.PORT, 0, 65535) ?? 5000,
    host: flags.host ?? env.HOST ?? '127.0.0.1',
    databaseUrl,
    workers,
    storeOptions: {
      poolSize: wholeNumber('--pool-size', flags['pool-size'] ?? env.DATABASE_POOL_SIZE, 1, 1000),
      sqliteSynchronous: synchronousMode(flags['sqlite-synchronous'] ?? env.SQLITE_SYNCHRONOUS),
      sqliteLocking: lockingMode(flags['sqlite-locking'] ?? env.SQLITE_LOCKING, workers, databaseUrl),
    },
    corsOrigins: corsOrigins(flags['cors-origins'] ?? env.CORS_ORIGINS),
    tombstoneRetentionMs: duration('--tombstone-retention', flags['tombstone-retention'] ?? env.TOMBSTONE_RETENTION),
  }
}

/** node:util parseArgs reports an unknown option, a missing value or a positional with these codes. */
function isParseArgsError(error: unknown): error is Error {
  return error instanceof TypeError && String((error as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS_')
}

function isOn(raw: string | undefined): boolean {
  return raw === '1' || raw === 'true'
}

function wholeNumber(name: string, raw: string | undefined, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined
  const value = /^\d{1,6}$/.test(raw) ? Number(raw) : NaN
  if (!(value >= min && value <= max)) throw new UsageError(`${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`)
  return value
}

/** A duration such as `30d`, `12h`, `15m`, `10s` or `500ms`, in ms, at most a hundred years. */
function duration(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined
  const match = /^([0-9]{1,9})(ms|s|m|h|d)$/.exec(raw.trim())
  const ms = match === null ? NaN : Number(match[1]) * DURATION_UNITS_MS[match[2]!]!
  if (!(ms >= 1 && ms <= 100 * 365 * 86_400_000)) {
    throw new UsageError(`${name} must be a duration such as 30d, 12h, 15m, 10s or 500ms (at least 1ms), got ${JSON.stringify(raw)}`)
  }
  return ms
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
