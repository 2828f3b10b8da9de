/**
 * SQLite's group commit on a real file: what a write returns for after its commit is applied only
 * once its transaction has committed (another connection can already read the write), exactly once
 * per committed write, and never for a write, or a group, that was rolled back.
 */
import { after, afterEach, before, beforeEach, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { StoreUnavailableError } from '../../src/store/person-store.js'
import { SqliteGroupCommit, type Written } from '../../src/store/sqlite/sqlite-group-commit.js'
import { TEST_DRIVERS, tempDir } from '../helpers/test-stores.js'

const SKIP = TEST_DRIVERS.some((driver) => driver.name === 'sqlite') ? false : 'IFMATCH_TEST_DRIVERS leaves SQLite out'

/** A WAL file with one table, the committer on one connection and a second connection to look with. */
function openFile(dir: string) {
  const file = join(dir, `group-${Math.random().toString(36).slice(2)}.sqlite`)
  const db = new Database(file)
  db.pragma('journal_mode = WAL')
  db.exec('CREATE TABLE items (id TEXT PRIMARY KEY)')
  const observer = new Database(file, { readonly: true })
  const count = observer.prepare<[], { n: number }>('SELECT count(*) AS n FROM items')
  const insert = db.prepare<[string]>('INSERT INTO items (id) VALUES (?)')
  /** What each apply was given, and how many rows another connection saw at that moment. */
  const applied: { committed: string[]; visible: number }[] = []
  let announced = 0
  const commits = new SqliteGroupCommit<string>(db, {
    apply: (committed) => applied.push({ committed: [...committed], visible: count.get()!.n }),
    announce: () => announced++,
  })
  /** A write that inserts `id` and, once committed, has memory learn `id`. */
  const add = (id: string) =>
    commits.write((): Written<string, string> => {
      insert.run(id)
      return { result: `added ${id}`, committed: id }
    })
  /** A write that inserts `id`, then throws before returning: a bug, a full disk. */
  const addThenThrow = (id: string) =>
    commits.write((): Written<string, string> => {
      insert.run(id)
      throw new Error(`${id} failed`)
    })
  return {
    db,
    commits,
    applied,
    add,
    addThenThrow,
    announced: () => announced,
    rows: () =>
      observer
        .prepare<[], { id: string }>('SELECT id FROM items ORDER BY id')
        .all()
        .map((r) => r.id),
    close: () => {
      observer.close()
      if (db.open) db.close()
    },
  }
}

/** No row reached the file, and nothing was applied or announced. */
function assertNothingCommitted(file: ReturnType<typeof openFile>): void {
  assert.deepEqual(file.applied, [])
  assert.equal(file.announced(), 0)
  assert.deepEqual(file.rows(), [])
}

describe('SQLite group commit', { skip: SKIP }, () => {
  let dir: ReturnType<typeof tempDir>
  let file: ReturnType<typeof openFile>

  before(() => {
    dir = tempDir('ifmatch-group-commit-')
  })

  after(() => dir.cleanup())

  // a fresh file per test: each counts its own applies and announcements
  beforeEach(() => {
    file = openFile(dir.path)
  })

  afterEach(() => file.close())

  describe('a group whose writes all succeed', () => {
    it('applies what the writes returned once, in queue order, when another connection already reads them; acknowledges each and announces once', async () => {
      // queued in one turn of the event loop: one group, one transaction
      const results = await Promise.all([file.add('a'), file.add('b'), file.add('c')])
      assert.deepEqual(results, ['added a', 'added b', 'added c'])
      assert.deepEqual(file.applied, [{ committed: ['a', 'b', 'c'], visible: 3 }])
      assert.equal(file.announced(), 1)
    })

    it('leaves out a write that changed nothing memory must learn', async () => {
      const unchanged = file.commits.write(() => ({ result: 'read only' }))
      assert.deepEqual(await Promise.all([unchanged, file.add('x')]), ['read only', 'added x'])
      assert.deepEqual(file.applied, [{ committed: ['x'], visible: 1 }])
    })
  })

  describe('a group in which one write throws', () => {
    it('applies nothing of the rolled back group: each other write commits alone and is applied exactly once, the failing one never', async () => {
      const [a, failing, c] = await Promise.allSettled([file.add('a'), file.addThenThrow('b'), file.add('c')])
      assert.deepEqual(a, { status: 'fulfilled', value: 'added a' })
      assert.deepEqual(c, { status: 'fulfilled', value: 'added c' })
      assert.equal(failing.status, 'rejected')
      assert.match(String((failing as PromiseRejectedResult).reason), /b failed/)
      // 'a' returned its value inside the group before 'b' threw; applying it then would apply it twice
      assert.deepEqual(file.applied, [
        { committed: ['a'], visible: 1 },
        { committed: ['c'], visible: 2 },
      ])
      assert.equal(file.announced(), 2)
      assert.deepEqual(file.rows(), ['a', 'c'])
    })

    it('rejects a lone failing write with its own error, and applies and announces nothing', async () => {
      await assert.rejects(file.addThenThrow('alone'), (error: unknown) => {
        assert.ok(!(error instanceof StoreUnavailableError), String(error))
        assert.match(String(error), /alone failed/)
        return true
      })
      assertNothingCommitted(file)
    })
  })

  describe('a group that cannot commit at all', () => {
    it('rejects every write with StoreUnavailableError, without trying them alone, and applies and announces nothing', async () => {
      const writes = Promise.allSettled([file.add('a'), file.add('b')])
      // the database goes away before the group's turn comes
      file.db.close()
      for (const result of await writes) {
        assert.equal(result.status, 'rejected')
        assert.ok((result as PromiseRejectedResult).reason instanceof StoreUnavailableError, String((result as PromiseRejectedResult).reason))
      }
      assertNothingCommitted(file)
    })
  })

  describe('flushed before the database closes', () => {
    it('commits, applies and acknowledges the queued writes at once', async () => {
      const writes = Promise.all([file.add('a'), file.add('b')])
      file.commits.flush()
      assert.deepEqual(file.applied, [{ committed: ['a', 'b'], visible: 2 }])
      file.db.close()
      assert.deepEqual(await writes, ['added a', 'added b'])
    })
  })
})
