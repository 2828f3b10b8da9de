/**
 * The command's configuration, read from argv and an environment without starting a process:
 * every flag and variable, flags over variables, and every value refused with its exact message
 * (the command prints it after `ifmatch: ` and above the usage text, and exits 2).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readConfig, type Config, type ConfigReading, type Environment } from '../../src/cli/read-config.js'

const POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432/ifmatch'

const DEFAULT_STORE_OPTIONS = { poolSize: undefined, sqliteSynchronous: undefined, sqliteLocking: undefined }

// README.md, "Configuration": the defaults an operator reads there
const DEFAULTS: Config = {
  port: 5000,
  host: '127.0.0.1',
  databaseUrl: 'sqlite:./data/ifmatch.sqlite',
  workers: 1,
  storeOptions: DEFAULT_STORE_OPTIONS,
  logLevel: 'info',
  prettyLogs: false,
  logRequests: false,
  apiToken: undefined,
  protectReads: false,
  shutdownTimeoutMs: 10_000,
  corsOrigins: undefined,
  tombstoneRetentionMs: undefined,
}

interface Row {
  readonly name: string
  readonly argv?: readonly string[]
  readonly env?: Environment
}

function read(row: Row, stdoutIsTerminal = false): ConfigReading {
  return readConfig(row.argv ?? [], row.env ?? {}, { stdoutIsTerminal })
}

function storeOptions(options: Config['storeOptions']): Config['storeOptions'] {
  return { ...DEFAULT_STORE_OPTIONS, ...options }
}

const HOUR_MS = 3_600_000
const DAY_MS = 24 * HOUR_MS

const ACCEPTED: ReadonlyArray<Row & { readonly expected: Partial<Config> }> = [
  { name: '--port 8080 listens on 8080', argv: ['--port', '8080'], expected: { port: 8080 } },
  { name: 'PORT=8080 listens on 8080', env: { PORT: '8080' }, expected: { port: 8080 } },
  { name: '--port 0 takes any free port', argv: ['--port', '0'], expected: { port: 0 } },
  { name: '--port=65535 takes the highest port', argv: ['--port=65535'], expected: { port: 65535 } },
  { name: '--host ::1 binds IPv6 loopback', argv: ['--host', '::1'], expected: { host: '::1' } },
  { name: 'HOST=0.0.0.0 binds every IPv4 address', env: { HOST: '0.0.0.0' }, expected: { host: '0.0.0.0' } },
  { name: '--database names a PostgreSQL database', argv: ['--database', POSTGRES_URL], expected: { databaseUrl: POSTGRES_URL } },
  { name: 'DATABASE_URL names a SQLite file', env: { DATABASE_URL: 'sqlite:/tmp/a.sqlite' }, expected: { databaseUrl: 'sqlite:/tmp/a.sqlite' } },
  {
    name: '--workers 4 runs four processes, sharing the SQLite file',
    argv: ['--workers', '4'],
    expected: { workers: 4, storeOptions: storeOptions({ sqliteLocking: 'shared' }) },
  },
  { name: 'WORKERS=256 runs the most processes', env: { WORKERS: '256' }, expected: { workers: 256, storeOptions: storeOptions({ sqliteLocking: 'shared' }) } },
  { name: '--pool-size 20 opens up to 20 connections', argv: ['--pool-size', '20'], expected: { storeOptions: storeOptions({ poolSize: 20 }) } },
  {
    name: 'DATABASE_POOL_SIZE=1000 opens up to 1000 connections',
    env: { DATABASE_POOL_SIZE: '1000' },
    expected: { storeOptions: storeOptions({ poolSize: 1000 }) },
  },
  {
    name: '--sqlite-synchronous full is FULL, in any case',
    argv: ['--sqlite-synchronous', 'full'],
    expected: { storeOptions: storeOptions({ sqliteSynchronous: 'FULL' }) },
  },
  {
    name: 'SQLITE_SYNCHRONOUS=NORMAL is NORMAL',
    env: { SQLITE_SYNCHRONOUS: 'NORMAL' },
    expected: { storeOptions: storeOptions({ sqliteSynchronous: 'NORMAL' }) },
  },
  {
    name: '--sqlite-locking SHARED is shared, in any case',
    argv: ['--sqlite-locking', 'SHARED'],
    expected: { storeOptions: storeOptions({ sqliteLocking: 'shared' }) },
  },
  {
    name: 'SQLITE_LOCKING=exclusive is exclusive',
    env: { SQLITE_LOCKING: 'exclusive' },
    expected: { storeOptions: storeOptions({ sqliteLocking: 'exclusive' }) },
  },
  {
    name: '--sqlite-locking exclusive goes with --workers on PostgreSQL, where it means nothing',
    argv: ['--sqlite-locking', 'exclusive', '--workers', '3', '--database', POSTGRES_URL],
    expected: { workers: 3, databaseUrl: POSTGRES_URL, storeOptions: storeOptions({ sqliteLocking: 'exclusive' }) },
  },
  { name: '--cors-origins * lets any origin in', argv: ['--cors-origins', '*'], expected: { corsOrigins: '*' } },
  {
    name: 'CORS_ORIGINS lists origins, comma-separated',
    env: { CORS_ORIGINS: 'https://a.example/, http://localhost:8080' },
    expected: { corsOrigins: ['https://a.example', 'http://localhost:8080'] },
  },
  { name: 'CORS_ORIGINS empty leaves CORS off', env: { CORS_ORIGINS: '' }, expected: { corsOrigins: undefined } },
  { name: '--tombstone-retention 30d is thirty days', argv: ['--tombstone-retention', '30d'], expected: { tombstoneRetentionMs: 30 * DAY_MS } },
  { name: '--tombstone-retention 12h is twelve hours', argv: ['--tombstone-retention', '12h'], expected: { tombstoneRetentionMs: 12 * HOUR_MS } },
  { name: '--tombstone-retention 15m is fifteen minutes', argv: ['--tombstone-retention', '15m'], expected: { tombstoneRetentionMs: 900_000 } },
  { name: '--tombstone-retention 10s is ten seconds', argv: ['--tombstone-retention', '10s'], expected: { tombstoneRetentionMs: 10_000 } },
  { name: '--tombstone-retention 500ms is half a second', argv: ['--tombstone-retention', '500ms'], expected: { tombstoneRetentionMs: 500 } },
  { name: '--tombstone-retention 1ms is the shortest', argv: ['--tombstone-retention', '1ms'], expected: { tombstoneRetentionMs: 1 } },
  {
    name: '--tombstone-retention 36500d (a hundred years) is the longest',
    argv: ['--tombstone-retention', '36500d'],
    expected: { tombstoneRetentionMs: 36_500 * DAY_MS },
  },
  { name: 'TOMBSTONE_RETENTION ignores surrounding spaces', env: { TOMBSTONE_RETENTION: ' 10s ' }, expected: { tombstoneRetentionMs: 10_000 } },
  { name: 'LOG_LEVEL=debug logs debug lines', env: { LOG_LEVEL: 'debug' }, expected: { logLevel: 'debug' } },
  { name: 'LOG_LEVEL=silent logs nothing', env: { LOG_LEVEL: 'silent' }, expected: { logLevel: 'silent' } },
  { name: 'LOG_FORMAT=pretty logs coloured lines', env: { LOG_FORMAT: 'pretty' }, expected: { prettyLogs: true } },
  { name: 'LOG_FORMAT=json logs JSON lines', env: { LOG_FORMAT: 'json' }, expected: { prettyLogs: false } },
  { name: 'LOG_REQUESTS=1 logs every request', env: { LOG_REQUESTS: '1' }, expected: { logRequests: true } },
  { name: 'LOG_REQUESTS=true logs every request', env: { LOG_REQUESTS: 'true' }, expected: { logRequests: true } },
  { name: 'LOG_REQUESTS=yes leaves request logs off (only 1 and true turn it on)', env: { LOG_REQUESTS: 'yes' }, expected: { logRequests: false } },
  { name: 'API_TOKEN protects writes', env: { API_TOKEN: 's3cr3t-To.k_e~n+/==' }, expected: { apiToken: 's3cr3t-To.k_e~n+/==' } },
  {
    name: 'API_TOKEN_READS=1 with API_TOKEN protects reads too',
    env: { API_TOKEN: 'token', API_TOKEN_READS: '1' },
    expected: { apiToken: 'token', protectReads: true },
  },
  {
    name: 'API_TOKEN_READS=true protects reads too',
    env: { API_TOKEN: 'token', API_TOKEN_READS: 'true' },
    expected: { apiToken: 'token', protectReads: true },
  },
  { name: 'SHUTDOWN_TIMEOUT_MS=0 cuts requests off at once', env: { SHUTDOWN_TIMEOUT_MS: '0' }, expected: { shutdownTimeoutMs: 0 } },
  { name: 'SHUTDOWN_TIMEOUT_MS=600000 waits ten minutes at most', env: { SHUTDOWN_TIMEOUT_MS: '600000' }, expected: { shutdownTimeoutMs: 600_000 } },
  { name: 'variables the command does not know are ignored', env: { IFMATCH_PORT: '1', NODE_ENV: 'production' }, expected: {} },
]

// each flag with a different value in its variable: the flag's value is the one used
const FLAG_OVER_VARIABLE: ReadonlyArray<Row & { readonly expected: Partial<Config> }> = [
  { name: '--port over PORT', argv: ['--port', '8080'], env: { PORT: '9090' }, expected: { port: 8080 } },
  { name: '--port over a PORT that would be refused', argv: ['--port', '8080'], env: { PORT: 'abc' }, expected: { port: 8080 } },
  { name: '--host over HOST', argv: ['--host', '::1'], env: { HOST: '0.0.0.0' }, expected: { host: '::1' } },
  {
    name: '--database over DATABASE_URL',
    argv: ['--database', POSTGRES_URL],
    env: { DATABASE_URL: 'sqlite:/tmp/a.sqlite' },
    expected: { databaseUrl: POSTGRES_URL },
  },
  { name: '--workers over WORKERS', argv: ['--workers', '1'], env: { WORKERS: '8' }, expected: { workers: 1 } },
  {
    name: '--pool-size over DATABASE_POOL_SIZE',
    argv: ['--pool-size', '5'],
    env: { DATABASE_POOL_SIZE: '50' },
    expected: { storeOptions: storeOptions({ poolSize: 5 }) },
  },
  {
    name: '--sqlite-synchronous over SQLITE_SYNCHRONOUS',
    argv: ['--sqlite-synchronous', 'FULL'],
    env: { SQLITE_SYNCHRONOUS: 'NORMAL' },
    expected: { storeOptions: storeOptions({ sqliteSynchronous: 'FULL' }) },
  },
  {
    name: '--sqlite-locking over SQLITE_LOCKING',
    argv: ['--sqlite-locking', 'shared'],
    env: { SQLITE_LOCKING: 'exclusive' },
    expected: { storeOptions: storeOptions({ sqliteLocking: 'shared' }) },
  },
  {
    name: '--cors-origins over CORS_ORIGINS',
    argv: ['--cors-origins', 'https://a.example'],
    env: { CORS_ORIGINS: '*' },
    expected: { corsOrigins: ['https://a.example'] },
  },
  {
    name: '--tombstone-retention over TOMBSTONE_RETENTION',
    argv: ['--tombstone-retention', '10s'],
    env: { TOMBSTONE_RETENTION: '30d' },
    expected: { tombstoneRetentionMs: 10_000 },
  },
]

const WHOLE = (name: string, min: number, max: number, got: string): string =>
  `${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(got)}`
const DURATION = (got: string): string =>
  `--tombstone-retention must be a duration such as 30d, 12h, 15m, 10s or 500ms (at least 1ms), got ${JSON.stringify(got)}`
const BEARER = 'API_TOKEN must be a bearer token (RFC 6750): letters, digits and - . _ ~ + /, then optional =; unset it to leave writes open'
const LOG_LEVEL = (got: string): string => `LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got ${JSON.stringify(got)}`
const EXCLUSIVE_WORKERS = '--sqlite-locking exclusive lets one process in, so it cannot go with --workers above 1'
const NOT_AN_ORIGIN = (got: string): string => `CORS_ORIGINS: ${JSON.stringify(got)} is not an origin like https://a.example or http://localhost:8080`

const REFUSED: ReadonlyArray<Row & { readonly message: string }> = [
  { name: 'an option the command does not know', argv: ['--bogus'], message: "Unknown option '--bogus'" },
  { name: 'an argument that is not an option', argv: ['serve'], message: "Unexpected argument 'serve'. This command does not take positional arguments" },
  { name: 'an option without its value', argv: ['--port'], message: "Option '--port <value>' argument missing" },
  { name: '--help with a value', argv: ['--help=yes'], message: "Option '-h, --help' does not take an argument" },
  { name: '--port above 65535', argv: ['--port', '65536'], message: WHOLE('--port', 0, 65535, '65536') },
  { name: '--port below 0', argv: ['--port=-1'], message: WHOLE('--port', 0, 65535, '-1') },
  { name: '--port with a fraction', argv: ['--port', '80.5'], message: WHOLE('--port', 0, 65535, '80.5') },
  { name: '--port in hexadecimal', argv: ['--port', '0x50'], message: WHOLE('--port', 0, 65535, '0x50') },
  { name: '--port in exponent notation', argv: ['--port', '1e3'], message: WHOLE('--port', 0, 65535, '1e3') },
  { name: '--port with seven digits', argv: ['--port', '0008080'], message: WHOLE('--port', 0, 65535, '0008080') },
  { name: 'PORT that is a word (named as the flag)', env: { PORT: 'abc' }, message: WHOLE('--port', 0, 65535, 'abc') },
  { name: 'PORT empty', env: { PORT: '' }, message: WHOLE('--port', 0, 65535, '') },
  { name: 'PORT with a space', env: { PORT: ' 80' }, message: WHOLE('--port', 0, 65535, ' 80') },
  { name: '--workers 0', argv: ['--workers', '0'], message: WHOLE('--workers', 1, 256, '0') },
  { name: '--workers above 256', argv: ['--workers', '257'], message: WHOLE('--workers', 1, 256, '257') },
  { name: 'WORKERS that is a word', env: { WORKERS: 'two' }, message: WHOLE('--workers', 1, 256, 'two') },
  { name: '--pool-size 0', argv: ['--pool-size', '0'], message: WHOLE('--pool-size', 1, 1000, '0') },
  { name: '--pool-size above 1000', argv: ['--pool-size', '1001'], message: WHOLE('--pool-size', 1, 1000, '1001') },
  { name: 'DATABASE_POOL_SIZE that is a word', env: { DATABASE_POOL_SIZE: 'ten' }, message: WHOLE('--pool-size', 1, 1000, 'ten') },
  { name: 'SHUTDOWN_TIMEOUT_MS below 0', env: { SHUTDOWN_TIMEOUT_MS: '-1' }, message: WHOLE('SHUTDOWN_TIMEOUT_MS', 0, 600_000, '-1') },
  { name: 'SHUTDOWN_TIMEOUT_MS above ten minutes', env: { SHUTDOWN_TIMEOUT_MS: '600001' }, message: WHOLE('SHUTDOWN_TIMEOUT_MS', 0, 600_000, '600001') },
  { name: 'SHUTDOWN_TIMEOUT_MS as a duration', env: { SHUTDOWN_TIMEOUT_MS: '10s' }, message: WHOLE('SHUTDOWN_TIMEOUT_MS', 0, 600_000, '10s') },
  { name: '--tombstone-retention 0s', argv: ['--tombstone-retention', '0s'], message: DURATION('0s') },
  { name: '--tombstone-retention 0ms', argv: ['--tombstone-retention', '0ms'], message: DURATION('0ms') },
  { name: '--tombstone-retention with a fraction, 1.5h', argv: ['--tombstone-retention', '1.5h'], message: DURATION('1.5h') },
  { name: '--tombstone-retention that is a word, abc', argv: ['--tombstone-retention', 'abc'], message: DURATION('abc') },
  { name: '--tombstone-retention without a unit', argv: ['--tombstone-retention', '10'], message: DURATION('10') },
  { name: '--tombstone-retention in weeks', argv: ['--tombstone-retention', '1w'], message: DURATION('1w') },
  { name: '--tombstone-retention in capitals', argv: ['--tombstone-retention', '30D'], message: DURATION('30D') },
  { name: '--tombstone-retention with a space before the unit', argv: ['--tombstone-retention', '10 s'], message: DURATION('10 s') },
  { name: '--tombstone-retention negative', argv: ['--tombstone-retention=-1s'], message: DURATION('-1s') },
  { name: '--tombstone-retention over a hundred years', argv: ['--tombstone-retention', '36501d'], message: DURATION('36501d') },
  { name: '--tombstone-retention with ten digits', argv: ['--tombstone-retention', '1000000000ms'], message: DURATION('1000000000ms') },
  { name: 'TOMBSTONE_RETENTION empty', env: { TOMBSTONE_RETENTION: '' }, message: DURATION('') },
  { name: '--sqlite-synchronous OFF', argv: ['--sqlite-synchronous', 'OFF'], message: '--sqlite-synchronous must be NORMAL or FULL, got "OFF"' },
  { name: 'SQLITE_SYNCHRONOUS EXTRA', env: { SQLITE_SYNCHRONOUS: 'EXTRA' }, message: '--sqlite-synchronous must be NORMAL or FULL, got "EXTRA"' },
  { name: '--sqlite-locking none', argv: ['--sqlite-locking', 'none'], message: '--sqlite-locking must be exclusive or shared, got "none"' },
  { name: '--sqlite-locking exclusive with --workers 2 on SQLite', argv: ['--sqlite-locking', 'exclusive', '--workers', '2'], message: EXCLUSIVE_WORKERS },
  {
    name: 'SQLITE_LOCKING=exclusive with WORKERS=2 on a SQLite DATABASE_URL',
    env: { SQLITE_LOCKING: 'EXCLUSIVE', WORKERS: '2', DATABASE_URL: 'sqlite:/tmp/a.sqlite' },
    message: EXCLUSIVE_WORKERS,
  },
  { name: 'LOG_LEVEL that pino does not know', env: { LOG_LEVEL: 'loud' }, message: LOG_LEVEL('loud') },
  { name: 'LOG_LEVEL in capitals', env: { LOG_LEVEL: 'INFO' }, message: LOG_LEVEL('INFO') },
  { name: 'LOG_LEVEL empty', env: { LOG_LEVEL: '' }, message: LOG_LEVEL('') },
  { name: 'LOG_FORMAT xml', env: { LOG_FORMAT: 'xml' }, message: 'LOG_FORMAT must be json or pretty, got "xml"' },
  { name: 'LOG_FORMAT in capitals', env: { LOG_FORMAT: 'JSON' }, message: 'LOG_FORMAT must be json or pretty, got "JSON"' },
  { name: 'API_TOKEN with spaces', env: { API_TOKEN: 'has spaces in it' }, message: BEARER },
  { name: 'API_TOKEN empty', env: { API_TOKEN: '' }, message: BEARER },
  { name: 'API_TOKEN with = before its end', env: { API_TOKEN: 'a=b' }, message: BEARER },
  { name: 'API_TOKEN with a letter outside ASCII', env: { API_TOKEN: 'tökén' }, message: BEARER },
  { name: 'CORS_ORIGINS that is not a URL', env: { CORS_ORIGINS: 'not a url' }, message: NOT_AN_ORIGIN('not a url') },
  { name: '--cors-origins with a path', argv: ['--cors-origins', 'https://a.example/app'], message: NOT_AN_ORIGIN('https://a.example/app') },
  { name: '--cors-origins * among origins', argv: ['--cors-origins', '*,https://a.example'], message: 'CORS_ORIGINS is either * alone or a list of origins' },
  { name: 'a bad flag whatever its variable says', argv: ['--port', 'abc'], env: { PORT: '8080' }, message: WHOLE('--port', 0, 65535, 'abc') },
]

describe('readConfig', () => {
  describe('with no flags and no variables', () => {
    it('serves ./data/ifmatch.sqlite on 127.0.0.1:5000 in one process, logging JSON lines, writes open, CORS off', () => {
      assert.deepEqual(read({ name: 'defaults' }), { kind: 'config', config: DEFAULTS })
    })

    it('logs pretty lines when stdout is a terminal', () => {
      assert.deepEqual(read({ name: 'on a terminal' }, true), { kind: 'config', config: { ...DEFAULTS, prettyLogs: true } })
    })

    it('logs JSON lines on a terminal when LOG_FORMAT=json says so', () => {
      assert.deepEqual(read({ name: 'json on a terminal', env: { LOG_FORMAT: 'json' } }, true), { kind: 'config', config: DEFAULTS })
    })

    it("reads only the environment it is given, not the process's own", () => {
      const saved = process.env.PORT
      process.env.PORT = '1234'
      try {
        assert.deepEqual(read({ name: 'empty environment' }), { kind: 'config', config: DEFAULTS })
      } finally {
        if (saved === undefined) delete process.env.PORT
        else process.env.PORT = saved
      }
    })
  })

  describe('with one setting, as a flag or as its variable', () => {
    for (const row of ACCEPTED) {
      it(row.name, () => {
        assert.deepEqual(read(row), { kind: 'config', config: { ...DEFAULTS, ...row.expected } })
      })
    }
  })

  describe('with a flag and its variable both set, the flag wins', () => {
    for (const row of FLAG_OVER_VARIABLE) {
      it(row.name, () => {
        assert.deepEqual(read(row), { kind: 'config', config: { ...DEFAULTS, ...row.expected } })
      })
    }
  })

  describe('with --help or -h', () => {
    it('asks for the help text', () => {
      assert.deepEqual(read({ name: '--help', argv: ['--help'] }), { kind: 'help' })
      assert.deepEqual(read({ name: '-h', argv: ['-h'] }), { kind: 'help' })
    })

    it('asks for the help text even beside values it would refuse', () => {
      const row = { name: 'help and bad values', argv: ['--port', '70000', '-h'], env: { LOG_LEVEL: 'loud', API_TOKEN: 'has spaces' } }
      assert.deepEqual(read(row), { kind: 'help' })
    })
  })

  describe('with a value the command cannot run with, it is a usage error saying what is wrong', () => {
    for (const row of REFUSED) {
      it(row.name, () => {
        assert.deepEqual(read(row), { kind: 'usage-error', message: row.message })
      })
    }
  })
})
