/**
 * `node --import tsx bench/changes.ts` (after `npm run build`): the changes-feed benchmark alone;
 * `npm run bench` runs it after the request-rate tables. See changes-bench.ts.
 *
 *   --quick            a 20 s copy and 3 wake-up rounds, written to .bench/
 *   --duration S       seconds of writes while the copies are kept (default 60; 20 with --quick)
 *   --waiters N        long polls woken at once (default 1000)
 *   --rounds N         measured wake-up rounds per setup (default 5; 3 with --quick)
 *   --encoding CODING  Accept-Encoding of both copy-keeping clients (default: none, identity)
 *   --no-postgres      skip the two-process PostgreSQL wake-up
 */
import { parseArgs } from 'node:util'
import { changesBench, changesBenchDefaults, type ChangesBenchOptions } from './changes-bench.js'

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    duration: { type: 'string' },
    waiters: { type: 'string' },
    rounds: { type: 'string' },
    encoding: { type: 'string' },
    'no-postgres': { type: 'boolean', default: false },
  },
})

const defaults = changesBenchDefaults(flags.quick === true)
const options: ChangesBenchOptions = {
  ...defaults,
  copySeconds: Number(flags.duration ?? defaults.copySeconds),
  waiters: Number(flags.waiters ?? defaults.waiters),
  rounds: Number(flags.rounds ?? defaults.rounds),
  noPostgres: flags['no-postgres'] === true,
  acceptEncoding: flags.encoding,
}
if (!(await changesBench(options))) process.exitCode = 1
