/**
 * The ifmatch command: reads PORT, HOST, DATABASE_URL, … (or --port, --host, --database, …),
 * opens the store, and listens; with --workers N, a node:cluster primary runs N such processes on
 * one port. `node dist/server.js --help` says how.
 */
import cluster from 'node:cluster'
import { readConfig } from './cli/read-config.js'
import { serve } from './cli/serve.js'
import { supervise } from './cli/supervise.js'
import { USAGE } from './cli/usage.js'

const reading = readConfig(process.argv.slice(2), process.env, { stdoutIsTerminal: process.stdout.isTTY === true })
if (reading.kind === 'usage-error') {
  process.stderr.write(`ifmatch: ${reading.message}\n\n${USAGE}`)
  process.exit(2)
}
if (reading.kind === 'help') {
  process.stdout.write(USAGE)
} else if (reading.config.workers > 1 && cluster.isPrimary) {
  await supervise(reading.config)
} else {
  await serve(reading.config)
}
