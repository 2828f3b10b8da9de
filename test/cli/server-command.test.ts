/**
 * The entry point, `src/server.ts`, as an operator meets it before anything listens: `--help`
 * prints the usage text, and a value it cannot run with is one line, the usage text and exit 2.
 */
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { USAGE } from '../../src/cli/usage.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
// only to turn a hang into a failure
const COMMAND_TIMEOUT_MS = 30_000

const FLAGS_AND_VARIABLES = [
  ['--port', 'PORT'],
  ['--host', 'HOST'],
  ['--database', 'DATABASE_URL'],
  ['--workers', 'WORKERS'],
  ['--pool-size', 'DATABASE_POOL_SIZE'],
  ['--cors-origins', 'CORS_ORIGINS'],
  ['--sqlite-synchronous', 'SQLITE_SYNCHRONOUS'],
  ['--sqlite-locking', 'SQLITE_LOCKING'],
  ['--tombstone-retention', 'TOMBSTONE_RETENTION'],
]
const ENVIRONMENT_ONLY = ['LOG_LEVEL', 'LOG_FORMAT', 'LOG_REQUESTS', 'API_TOKEN', 'API_TOKEN_READS', 'SHUTDOWN_TIMEOUT_MS']

/** Runs `node --import tsx src/server.ts ...args` to its exit with only PATH and `env` for an environment. */
function runCommand(args: readonly string[], env: Readonly<Record<string, string>> = {}) {
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/server.ts', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    encoding: 'utf8',
    timeout: COMMAND_TIMEOUT_MS,
  })
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

describe('the ifmatch command', () => {
  describe('with --help', () => {
    it('prints the usage text on stdout, and nothing else, and exits 0', () => {
      assert.deepEqual(runCommand(['--help']), { code: 0, stdout: USAGE, stderr: '' })
    })

    it('names every flag beside the variable it overrides, and every variable read only from the environment', () => {
      // an option's entry runs from its line to the next line that starts with an option
      const entries = USAGE.split(/\n(?= {2}-)/)
      for (const [flag, variable] of FLAGS_AND_VARIABLES) {
        const entry = entries.find((text) => text.startsWith(`  ${flag} `))
        assert.ok(entry?.includes(`(${variable}, default`), `${flag} and ${variable}`)
      }
      for (const variable of ENVIRONMENT_ONLY) assert.match(USAGE, new RegExp(`^  ${variable}`, 'm'), variable)
    })
  })

  describe('with a value it cannot run with', () => {
    it('prints what is wrong and the usage text on stderr, nothing on stdout, and exits 2', () => {
      assert.deepEqual(runCommand(['--port', '0'], { TOMBSTONE_RETENTION: '1.5h' }), {
        code: 2,
        stdout: '',
        stderr: `ifmatch: --tombstone-retention must be a duration such as 30d, 12h, 15m, 10s or 500ms (at least 1ms), got "1.5h"\n\n${USAGE}`,
      })
    })
  })
})
