/**
 * SQLite locking on the real command: one process owns its file by default, and a second one on
 * the same file is turned away with a message that says what to do; with SQLITE_LOCKING=shared (or
 * --sqlite-locking shared) any number run on it. Bad settings are usage errors (exit 2).
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawnServer, stopProcess, type ServerProcess } from '../helpers/spawn-server.js'
import { createPerson } from '../helpers/http-answers.js'
import { TEST_DRIVERS, type TestDriver } from '../helpers/test-stores.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const SQLITE: TestDriver | undefined = TEST_DRIVERS.find((driver) => driver.name === 'sqlite')
const SKIP = SQLITE === undefined ? 'IFMATCH_TEST_DRIVERS leaves SQLite out' : false
// API.md: no error ever exposes a stack trace
const STACK_TRACE = /\n\s+at \S/

interface Finished {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs `node --import tsx src/server.ts ...args` to its exit (a usage error, --help). */
async function runCommand(args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<Finished> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk
  })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk
  })
  const [code] = (await once(child, 'exit')) as [number | null]
  return { code, stdout, stderr }
}

async function status(url: string): Promise<number> {
  const response = await fetch(url)
  await response.arrayBuffer()
  return response.status
}

describe('SQLite locking of the ifmatch command', { skip: SKIP }, () => {
  // the refused server waits out SQLite's 5 s busy timeout before it gives up
  it('turns a second server on a file the first owns away (exit 1, naming SQLITE_LOCKING=shared), and the first goes on', { timeout: 60_000 }, async () => {
    const database = await SQLITE!.createDatabase()
    let first: ServerProcess | undefined
    try {
      first = await spawnServer(database.url)
      await createPerson(first.baseUrl, 'owner-1', 'Name of owner-1')
      await assert.rejects(spawnServer(database.url), (error: Error) => {
        assert.match(error.message, /server exited \(1\) before it was ready/)
        assert.match(error.message, /ifmatch: .* is in use by another process/)
        assert.match(error.message, /SQLITE_LOCKING=shared/)
        assert.doesNotMatch(error.message, STACK_TRACE)
        return true
      })
      assert.equal(first.child.exitCode, null, 'the first server is still running')
      assert.equal(await status(`${first.baseUrl}/persons/owner-1`), 200)
      await createPerson(first.baseUrl, 'owner-2', 'Name of owner-2')
      assert.equal(await status(`${first.baseUrl}/persons/owner-2`), 200)
    } finally {
      await stopProcess(first)
      await database.cleanup()
    }
  })

  it("runs two servers on one file when both say shared (the environment or the flag), each seeing the other's writes", { timeout: 60_000 }, async () => {
    const database = await SQLITE!.createDatabase({ shared: true })
    assert.deepEqual(database.env, { SQLITE_LOCKING: 'shared' })
    let one: ServerProcess | undefined
    let two: ServerProcess | undefined
    try {
      one = await spawnServer(database.url, [], undefined, database.env)
      two = await spawnServer(database.url, ['--sqlite-locking', 'shared'])
      await createPerson(one.baseUrl, 'from-one', 'Name of from-one')
      await createPerson(two.baseUrl, 'from-two', 'Name of from-two')
      for (const server of [one, two]) {
        const response = await fetch(`${server.baseUrl}/persons`)
        assert.equal(response.status, 200)
        const ids = ((await response.json()) as { person_id: string }[]).map((p) => p.person_id)
        assert.deepEqual(ids, ['from-one', 'from-two'], server.baseUrl)
      }
    } finally {
      await stopProcess(one)
      await stopProcess(two)
      await database.cleanup()
    }
  })

  describe('usage errors (exit 2, before any file is opened)', () => {
    const cases: readonly { name: string; args: readonly string[]; env?: Record<string, string>; message: RegExp }[] = [
      { name: '--sqlite-locking bogus', args: ['--sqlite-locking', 'bogus'], message: /--sqlite-locking must be exclusive or shared, got "bogus"/ },
      { name: 'SQLITE_LOCKING=bogus', args: [], env: { SQLITE_LOCKING: 'bogus' }, message: /must be exclusive or shared, got "bogus"/ },
      { name: '--workers 2 --sqlite-locking exclusive', args: ['--workers', '2', '--sqlite-locking', 'exclusive'], message: /exclusive .*--workers/ },
      { name: 'WORKERS=2 with SQLITE_LOCKING=exclusive', args: [], env: { WORKERS: '2', SQLITE_LOCKING: 'exclusive' }, message: /exclusive .*--workers/ },
    ]
    for (const c of cases) {
      it(`${c.name}`, { timeout: 30_000 }, async () => {
        const database = await SQLITE!.createDatabase()
        try {
          const file = database.url.slice('sqlite:'.length)
          const finished = await runCommand([...c.args, '--port', '0'], { DATABASE_URL: database.url, ...c.env })
          assert.equal(finished.code, 2, finished.stderr)
          assert.match(finished.stderr, c.message)
          // and the usage, so that the right spelling is at hand
          assert.match(finished.stderr, /Usage: ifmatch/)
          assert.doesNotMatch(finished.stderr, STACK_TRACE)
          assert.equal(existsSync(file), false, 'no database file was created')
        } finally {
          await database.cleanup()
        }
      })
    }
  })

  it('--help says how to choose the locking mode', { timeout: 30_000 }, async () => {
    const finished = await runCommand(['--help'])
    assert.equal(finished.code, 0, finished.stderr)
    assert.match(finished.stdout, /--sqlite-locking exclusive\|shared/)
    assert.match(finished.stdout, /SQLITE_LOCKING/)
  })
})
