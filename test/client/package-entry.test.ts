/**
 * The client as another project gets it: `npm run build`, then a fresh script in a directory of its
 * own imports `ifmatch/client` (resolved through package.json "exports" to dist/client/) and uses
 * it against a running server; and a fresh TypeScript file type-checks against the emitted types.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import { startServer, type RunningServer } from '../helpers/start-server.js'
import { tempDir } from '../helpers/test-stores.js'

const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')

const SCRIPT = `
import { IfMatchClient, ConflictError, NotFoundError } from 'ifmatch/client'
const client = new IfMatchClient({ baseUrl: process.argv[2] })
await client.create({ person_id: 'fresh', person_name: '0' })
await Promise.all(Array.from({ length: 16 }, () =>
  client.update('fresh', (p) => ({ person_name: String(Number(p.person_name) + 1) }))))
let notFound = false
try { await client.get('nobody') } catch (error) { notFound = error instanceof NotFoundError && error.status === 404 }
const mirror = client.mirror({ wait: 1 })
await mirror.ready
const mirrored = mirror.persons.get('fresh')
await mirror.close()
console.log(JSON.stringify({
  name: (await client.get('fresh')).person_name, notFound, conflictIsClass: typeof ConflictError === 'function',
  mirrored: mirrored?.person_name, mirroredEtagIsCurrent: mirrored?.etag === client.etagOf('fresh'),
}))
`

const TYPED = `
import { IfMatchClient, ConflictError, type ChangesBatch, type Person, type PersonsMirror } from 'ifmatch/client'
const client = new IfMatchClient({ baseUrl: 'http://127.0.0.1:5000', maxAttempts: 3 })
export async function rename(id: string, name: string): Promise<Person> {
  try {
    return await client.update(id, (current: Person) => ({ person_name: name + current.person_name }))
  } catch (error) {
    if (error instanceof ConflictError) return error.current.value
    throw error
  }
}
// @ts-expect-error person_name must be a string
void client.replace('1', { person_name: 42 })
export async function copy(since: string, signal: AbortSignal): Promise<Map<string, string>> {
  const names = new Map<string, string>()
  for await (const batch of client.changes({ since, signal, wait: 30 })) {
    const b: ChangesBatch = batch
    if (b.reset) names.clear()
    for (const change of b.changes) {
      if (change.deleted === true) names.delete(change.person_id)
      else names.set(change.person_id, change.etag)
    }
  }
  return names
}
export const mirror: PersonsMirror = client.mirror()
// @ts-expect-error the mirror's map is read-only: the feed alone changes it
mirror.persons.set('1', { person_id: '1', person_name: 'x', change_date: '', etag: '"x"' })
`

describe('the package entry point ifmatch/client', () => {
  let server: RunningServer
  let dir: ReturnType<typeof tempDir>

  before(async () => {
    await run(process.execPath, [TSC, '-p', join(ROOT, 'tsconfig.build.json')], { cwd: ROOT })
    dir = tempDir('ifmatch-consumer-')
    // a project that depends on ifmatch, as npm would link a local dependency
    mkdirSync(join(dir.path, 'node_modules'))
    symlinkSync(ROOT, join(dir.path, 'node_modules', 'ifmatch'), 'dir')
    writeFileSync(join(dir.path, 'package.json'), JSON.stringify({ type: 'module', private: true }))
    server = await startServer()
  })
  after(async () => {
    await server?.close()
    dir?.cleanup()
  })

  it('is importable from the built package by a fresh script, which can update a counter 16 times in parallel and mirror the collection', async () => {
    writeFileSync(join(dir.path, 'script.mjs'), SCRIPT)
    const { stdout } = await run(process.execPath, ['script.mjs', server.baseUrl], { cwd: dir.path })
    assert.deepEqual(JSON.parse(stdout), { name: '16', notFound: true, conflictIsClass: true, mirrored: '16', mirroredEtagIsCurrent: true })
  })

  it('comes with types that a strict TypeScript project checks against', async () => {
    writeFileSync(join(dir.path, 'typed.ts'), TYPED)
    const result = await run(
      process.execPath,
      [TSC, '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--lib', 'es2023,dom', 'typed.ts'],
      { cwd: dir.path },
    ).then(
      () => 'ok',
      (error: { stdout: string }) => error.stdout,
    )
    assert.equal(result, 'ok')
  })
})
