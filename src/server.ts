/**
 * The ifmatch command: reads PORT, HOST and DATABASE_URL (or --port, --host, --database),
 * opens the store, and listens. `node dist/server.js --help` says how.
 */
import { parseArgs } from 'node:util'
import { buildApp } from './http/app.js'
import { DEFAULT_DATABASE_URL, DatabaseUrlError, openStore } from './store/open-store.js'

const USAGE = `Usage: ifmatch [--port N] [--host ADDR] [--database URL]

Serves the persons API with ETags and conditional requests (see README.md).

Options (each overrides its environment variable):
  --port N          TCP port to listen on             (PORT, default 5000)
  --host ADDR       address to bind                   (HOST, default 127.0.0.1)
  --database URL    where the data lives              (DATABASE_URL, default ${DEFAULT_DATABASE_URL})
                    sqlite:PATH   an embedded SQLite file, created if absent
  -h, --help        print this help and exit

LOG_LEVEL sets the log level (fatal, error, warn, info, debug; default info).
`

interface Config {
  port: number
  host: string
  databaseUrl: string
}

function readConfig(argv: string[]): Config | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      database: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  })
  if (values.help === true) return 'help'
  const rawPort = values.port ?? process.env.PORT ?? '5000'
  const port = /^\d{1,5}$/.test(rawPort) ? Number(rawPort) : NaN
  if (!(port >= 0 && port <= 65535)) throw new UsageError(`port must be a number from 0 to 65535, got ${JSON.stringify(rawPort)}`)
  return {
    port,
    host: values.host ?? process.env.HOST ?? '127.0.0.1',
    databaseUrl: values.database ?? process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL,
  }
}

class UsageError extends Error {}

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
  let store
  try {
    store = await openStore(config.databaseUrl)
  } catch (error) {
    if (error instanceof DatabaseUrlError) {
      process.stderr.write(`ifmatch: ${error.message}\n`)
      process.exit(2)
    }
    throw error
  }
  const app = buildApp({ store, logger: { level: process.env.LOG_LEVEL ?? 'info' } })
  let closing = false
  const shutdown = async (signal: string): Promise<void> => {
    if (closing) return
    closing = true
    app.log.info({ signal }, 'shutting down: finishing in-flight requests')
    await app.close()
    await store.close()
    process.exit(0)
  }
  process.on('SIGTERM', (signal) => void shutdown(signal))
  process.on('SIGINT', (signal) => void shutdown(signal))
  await app.listen({ port: config.port, host: config.host })
  app.log.info({ driver: store.driver }, 'ifmatch ready')
}

await main()
