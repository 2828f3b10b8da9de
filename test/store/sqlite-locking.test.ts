/**
 * The SQLite store's locking modes and what rests on them: exclusive (the default) lets one
 * connection own the file and keeps the validators it read or committed in memory, shared lets many
 * stores (processes) work on one file; the immediate validator reads of both; and group commit,
 * where one write that throws must not take the others of its group down with it.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { StoreUnavailableError, type PersonStore, type StoredPerson, type WriteResult } from '../../src/store/person-store.js'
import { SqliteInUseError, SqlitePersonStore } from '../../src/store/sqlite/sqlite-person-store.js'
import { TEST_DRIVERS, type TestDatabase, type TestDriver } from '../helpers/test-stores.js'

const SQLITE: TestDriver | undefined = TEST_DRIVERS.find((driver) => driver.name === 'sqlite')
const SKIP = SQLITE === undefined ? 'IFMATCH_TEST_DRIVERS leaves SQLite out' : false

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

// the second open waits this long for the lock before it gives up: short, so the refusal is quick
const SHORT_BUSY_TIMEOUT_MS = 200

/** The file a SQLite test database lives in (its URL is sqlite:PATH). */
function fileOf(database: TestDatabase): string {
  assert.ok(database.url.startsWith('sqlite:'))
  return database.url.slice('sqlite:'.length)
}

function mustWrite(result: WriteResult): StoredPerson {
  assert.ok(result.ok, JSON.stringify(result))
  return result.person
}

/** Adds, over a connection of its own, a trigger that makes every insert of person `boom` fail. */
function addFailingTrigger(file: string): void {
  const db = new Database(file)
  try {
    db.pragma('busy_timeout = 5000')
    db.exec(`CREATE TRIGGER refuse_boom BEFORE INSERT ON persons WHEN NEW.person_id = 'boom'
             BEGIN SELECT RAISE(ABORT, 'boom is refused'); END`)
  } finally {
    db.close()
  }
}

/**
 * A fresh database (exclusive by default) holding person `first`, with the failing trigger added
 * before a test opens its store: while an exclusive store is open no other connection can add it.
 */
async function exclusiveWithFailingTrigger(): Promise<{ database: TestDatabase; first: StoredPerson }> {
  const database = await SQLITE!.createDatabase()
  const migrate = await database.openStore()
  const first = mustWrite(await migrate.create('first', 'Before the group'))
  await migrate.close()
  addFailingTrigger(fileOf(database))
  return { database, first }
}

/**
 * Starts another process that opens `file` (new, in SQLite's first journal mode), takes its write
 * lock with BEGIN IMMEDIATE, and commits and exits `holdMs` later; resolves once the lock is held,
 * with the Date.now() at which it committed once it has exited.
 */
async function holdWriteLock(file: string, holdMs: number): Promise<{ committedAt: Promise<number> }> {
  const code = `
    const db = new (require('better-sqlite3'))(process.argv[1])
    db.exec('BEGIN IMMEDIATE')
    db.exec('CREATE TABLE IF NOT EXISTS held (id INTEGER)')
    process.stdout.write('held\\n')
    setTimeout(() => {
      const at = Date.now()
      db.exec('COMMIT')
      db.close()
      process.stdout.write('committed ' + at + '\\n')
    }, Number(process.argv[2]))`
  const child = spawn(process.execPath, ['-e', code, file, String(holdMs)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] })
  let output = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk
  })
  // 'close', not 'exit': by then everything it wrote has been read
  const closed = once(child, 'close')
  const held = await Promise.race([once(child.stdout!, 'data').then(() => true), closed.then(() => false)])
  assert.ok(held, 'the writer process took its lock')
  const committedAt = closed.then(() => {
    const at = /committed (\d+)/.exec(output)
    assert.ok(at !== null, `the writer committed: ${output}`)
    return Number(at[1])
  })
  return { committedAt }
}

function assertUnavailable(read: () => unknown, what: string): void {
  assert.throws(read, (error: unknown) => {
    assert.ok(error instanceof StoreUnavailableError, `${what}: got ${String(error)}`)
    return true
  })
}

describe('SQLite locking', { skip: SKIP }, () => {
  describe('exclusive, the default', () => {
    let database: TestDatabase
    let owner: SqlitePersonStore | undefined

    before(async () => {
      database = await SQLITE!.createDatabase()
    })

    after(async () => {
      await owner?.close()
      await database.cleanup()
    })

    it('refuses a second store on the file, naming SQLITE_LOCKING=shared, and lets it in once the first has closed', async () => {
      const file = fileOf(database)
      owner = SqlitePersonStore.open(file)
      const kept = mustWrite(await owner.create('owned', 'By the first store'))
      for (const locking of [undefined, 'exclusive', 'shared'] as const) {
        assert.throws(
          () => SqlitePersonStore.open(file, { busyTimeoutMs: SHORT_BUSY_TIMEOUT_MS, ...(locking === undefined ? {} : { locking }) }),
          (error: unknown) => {
            assert.ok(error instanceof SqliteInUseError, `${locking ?? 'default'}: got ${String(error)}`)
            assert.equal(error.name, 'SqliteInUseError')
            assert.equal(error.path, file)
            assert.match(error.message, /SQLITE_LOCKING=shared/)
            return true
          },
        )
      }
      // the refused opens changed nothing for the owner
      assert.deepEqual(await owner.read('owned'), kept)
      const more = mustWrite(await owner.create('owned-2', 'Still writing'))
      await owner.close()
      owner = undefined
      const second = SqlitePersonStore.open(file, { busyTimeoutMs: SHORT_BUSY_TIMEOUT_MS })
      try {
        assert.deepEqual(await second.read('owned'), kept)
        assert.deepEqual(await second.read('owned-2'), more)
        mustWrite(await second.create('after-close', 'The second store writes'))
      } finally {
        await second.close()
      }
    })
  })

  describe('exclusive beside shared', () => {
    it('is refused a file that a shared store has open, which goes on working', async () => {
      // as when a default (exclusive) server is started on the file of a --workers deployment
      const database = await SQLITE!.createDatabase({ shared: true })
      const shared = await database.openStore()
      try {
        const kept = mustWrite(await shared.create('shared-first', 'Here first'))
        assert.throws(() => SqlitePersonStore.open(fileOf(database), { busyTimeoutMs: SHORT_BUSY_TIMEOUT_MS }), SqliteInUseError)
        assert.deepEqual(await shared.read('shared-first'), kept)
        mustWrite(await shared.update('shared-first', 'Still writing', kept.version))
      } finally {
        await shared.close()
        await database.cleanup()
      }
    })
  })

  describe('a new file that another process is writing when a store opens it', () => {
    // SQLite turns a file to WAL mode by reading its header, then upgrading to a write lock, and
    // does not wait for that upgrade: a process starting beside another on the same new file (as
    // --workers N does) was refused at once. Here the other process is a plain writer in the
    // file's first journal mode, holding its write lock for HOLD_MS.
    const HOLD_MS = 1000
    for (const locking of ['exclusive', 'shared'] as const) {
      it(`waits for the writer, then opens it in WAL mode (${locking})`, async () => {
        const database = await SQLITE!.createDatabase({ shared: locking === 'shared' })
        const file = fileOf(database)
        const writer = await holdWriteLock(file, HOLD_MS)
        try {
          const started = Date.now()
          const store = SqlitePersonStore.open(file, { locking })
          try {
            assert.ok((await writer.committedAt) >= started, 'the open began while the writer held its lock')
            mustWrite(await store.create('after-the-writer', 'Opened'))
          } finally {
            await store.close()
          }
          // read once the store has let go of the file (an exclusive one lets nobody in before)
          const check = new Database(file, { readonly: true, fileMustExist: true })
          try {
            assert.equal(check.pragma('journal_mode', { simple: true }), 'wal')
            assert.deepEqual(check.prepare('SELECT count(*) AS n FROM held').get(), { n: 0 }, "the writer's table committed")
          } finally {
            check.close()
          }
        } finally {
          await writer.committedAt.catch(() => undefined)
          await database.cleanup()
        }
      })
    }
  })

  describe('shared', () => {
    let database: TestDatabase
    let one: PersonStore
    let two: PersonStore

    before(async () => {
      database = await SQLITE!.createDatabase({ shared: true })
      one = await database.openStore()
      two = await database.openStore()
    })

    after(async () => {
      await one.close()
      await two.close()
      await database.cleanup()
    })

    it("lets two stores work on one file, each seeing the other's writes, immediate reads included", async () => {
      const a = mustWrite(await one.create('shared-a', 'From one'))
      assert.deepEqual(await two.read('shared-a'), a)
      assert.deepEqual(two.immediate!.readValidator('shared-a'), { version: a.version, changedAt: a.changedAt })
      assert.deepEqual(two.immediate!.readCollectionValidator(), { revision: a.version, changedAt: a.changedAt, horizon: 0 })
      const b = mustWrite(await two.update('shared-a', 'From two', a.version))
      // `one` created it, but remembers nothing in shared mode: it reads the version `two` wrote
      assert.deepEqual(one.immediate!.readValidator('shared-a'), { version: b.version, changedAt: b.changedAt })
      assert.deepEqual(one.immediate!.readCollectionValidator(), { revision: b.version, changedAt: b.changedAt, horizon: 0 })
      assert.deepEqual(await one.read('shared-a'), b)
      // and its compare-and-set sees the other's version
      assert.deepEqual(await one.update('shared-a', 'Stale', a.version), { ok: false, reason: 'version-mismatch' })
      assert.deepEqual(await one.delete('shared-a', b.version), { ok: true })
      assert.equal(two.immediate!.readValidator('shared-a'), undefined)
      assert.equal(await two.read('shared-a'), undefined)
    })
  })

  for (const mode of ['exclusive', 'shared'] as const) {
    describe(`immediate reads (${mode})`, () => {
      let database: TestDatabase
      let store: PersonStore

      before(async () => {
        database = await SQLITE!.createDatabase({ shared: mode === 'shared' })
        store = await database.openStore()
      })

      after(async () => {
        await store.close()
        await database.cleanup()
      })

      it('reflect a create, an update and a delete as soon as its promise resolves, and agree with the async reads', async () => {
        const reads = store.immediate!
        assert.equal(reads.readValidator('im-1'), undefined)
        const created = mustWrite(await store.create('im-1', 'Created'))
        assert.deepEqual(reads.readValidator('im-1'), { version: created.version, changedAt: created.changedAt })
        assert.deepEqual(reads.readCollectionValidator(), { revision: created.version, changedAt: created.changedAt, horizon: 0 })
        const updated = mustWrite(await store.update('im-1', 'Updated', created.version))
        assert.deepEqual(reads.readValidator('im-1'), { version: updated.version, changedAt: updated.changedAt })
        assert.deepEqual(reads.readCollectionValidator(), { revision: updated.version, changedAt: updated.changedAt, horizon: 0 })
        assert.deepEqual(reads.readValidator('im-1'), await store.readValidator('im-1'))
        assert.deepEqual(reads.readCollectionValidator(), await store.readCollectionValidator())
        assert.deepEqual(await store.delete('im-1', updated.version), { ok: true })
        assert.equal(reads.readValidator('im-1'), undefined)
        const afterDelete = reads.readCollectionValidator()
        assert.ok(afterDelete.revision > updated.version)
        assert.deepEqual(afterDelete, await store.readCollectionValidator())
      })

      it('do not change while a write waits for its group commit, nor for a write that lost its compare-and-set', async () => {
        const reads = store.immediate!
        const created = mustWrite(await store.create('im-2', 'Before'))
        const collection = reads.readCollectionValidator()
        // queued, not yet committed: the group commits after this turn of the event loop
        const pending = store.update('im-2', 'After', created.version)
        assert.deepEqual(reads.readValidator('im-2'), { version: created.version, changedAt: created.changedAt })
        assert.deepEqual(reads.readCollectionValidator(), collection)
        const updated = mustWrite(await pending)
        assert.deepEqual(reads.readValidator('im-2'), { version: updated.version, changedAt: updated.changedAt })
        assert.deepEqual(await store.update('im-2', 'Lost', created.version), { ok: false, reason: 'version-mismatch' })
        assert.deepEqual(await store.create('im-2', 'Exists'), { ok: false, reason: 'exists' })
        assert.deepEqual(reads.readValidator('im-2'), { version: updated.version, changedAt: updated.changedAt })
        assert.deepEqual(reads.readCollectionValidator(), { revision: updated.version, changedAt: updated.changedAt, horizon: 0 })
      })

      it('throw StoreUnavailableError once the store is closed, even for validators it had in memory', async () => {
        const closing = await SQLITE!.createDatabase({ shared: mode === 'shared' })
        const doomed = await closing.openStore()
        try {
          mustWrite(await doomed.create('remembered', 'In memory'))
          const reads = doomed.immediate!
          assert.notEqual(reads.readValidator('remembered'), undefined)
          reads.readCollectionValidator()
          await doomed.close()
          assertUnavailable(() => reads.readValidator('remembered'), 'readValidator of a remembered id')
          assertUnavailable(() => reads.readValidator('never-seen'), 'readValidator of another id')
          assertUnavailable(() => reads.readCollectionValidator(), 'readCollectionValidator')
        } finally {
          await doomed.close()
          await closing.cleanup()
        }
      })
    })
  }

  describe('a group commit in which one write throws', () => {
    /** The person a write of the group was acknowledged with. */
    function acknowledged(result: PromiseSettledResult<WriteResult> | undefined, what: string): StoredPerson {
      assert.equal(result?.status, 'fulfilled', `${what}: ${JSON.stringify(result)}`)
      return mustWrite((result as PromiseFulfilledResult<WriteResult>).value)
    }

    /** The create of boom failed, with the trigger's SQL error, not as if the database were away. */
    function assertRefused(result: PromiseSettledResult<WriteResult> | undefined): void {
      assert.equal(result?.status, 'rejected', JSON.stringify(result))
      const reason = (result as PromiseRejectedResult).reason as Error
      assert.ok(!(reason instanceof StoreUnavailableError), String(reason))
      assert.match(reason.message, /boom is refused/)
    }

    it('acknowledges and keeps the others, and the revision goes up by exactly 2 (shared)', async () => {
      const database = await SQLITE!.createDatabase({ shared: true })
      const store = await database.openStore()
      try {
        mustWrite(await store.create('first', 'Before the group'))
        // another connection on the shared file changes the schema under the running store
        addFailingTrigger(fileOf(database))
        const before = (await store.readCollectionValidator()).revision
        // called in one turn of the event loop: one group (the writes queued before its setImmediate fires)
        const [a, boom, b] = await Promise.allSettled([store.create('a', 'A'), store.create('boom', 'Boom'), store.create('b', 'B')])
        const personA = acknowledged(a, 'a')
        const personB = acknowledged(b, 'b')
        assertRefused(boom)
        // one revision each for a and b, none for boom, none left over from the rolled back group
        assert.deepEqual([personA.version, personB.version], [before + 1, before + 2])
        assert.equal((await store.readCollectionValidator()).revision, before + 2)
        assert.deepEqual(await store.read('a'), personA)
        assert.deepEqual(await store.read('b'), personB)
        assert.equal(await store.read('boom'), undefined)
        assert.deepEqual(
          (await store.readPage({ limit: 10 })).persons.map((p) => p.id),
          ['a', 'b', 'first'],
        )
      } finally {
        await store.close()
        await database.cleanup()
      }
    })

    it('keeps in memory exactly what was committed, and the file agrees (exclusive)', async () => {
      const { database, first } = await exclusiveWithFailingTrigger()
      let store = await database.openStore()
      try {
        const reads = store.immediate!
        // in memory before the group: the collection, and the validator of the person it updates
        assert.deepEqual(reads.readValidator('first'), { version: first.version, changedAt: first.changedAt })
        const before = reads.readCollectionValidator().revision
        const [a, updated, boom, b] = await Promise.allSettled([
          store.create('a', 'A'),
          store.update('first', 'Updated in the group', first.version),
          store.create('boom', 'Boom'),
          store.create('b', 'B'),
        ])
        const personA = acknowledged(a, 'a')
        const personFirst = acknowledged(updated, 'first')
        const personB = acknowledged(b, 'b')
        assertRefused(boom)
        // committed one by one, in the order they were queued; boom's revision was rolled back
        assert.deepEqual([personA.version, personFirst.version, personB.version], [before + 1, before + 2, before + 3])
        for (const person of [personA, personFirst, personB]) {
          assert.deepEqual(reads.readValidator(person.id), { version: person.version, changedAt: person.changedAt }, person.id)
        }
        assert.equal(reads.readValidator('boom'), undefined)
        assert.deepEqual(reads.readCollectionValidator(), { revision: before + 3, changedAt: personB.changedAt, horizon: 0 })
        // and the file says the same to a store that reads it afresh
        await store.close()
        store = await database.openStore()
        for (const person of [personA, personFirst, personB]) assert.deepEqual(await store.read(person.id), person)
        assert.equal(await store.read('boom'), undefined)
        assert.deepEqual(await store.readCollectionValidator(), { revision: before + 3, changedAt: personB.changedAt, horizon: 0 })
      } finally {
        await store.close()
        await database.cleanup()
      }
    })

    it('leaves the validators in memory as they were when the group was only the refused write, and the file agrees (exclusive)', async () => {
      const { database, first } = await exclusiveWithFailingTrigger()
      let store = await database.openStore()
      try {
        const reads = store.immediate!
        const collection = reads.readCollectionValidator()
        assert.deepEqual(reads.readValidator('first'), { version: first.version, changedAt: first.changedAt })
        // the create bumps the revision before the trigger refuses its insert: a rollback the memory must not follow
        assertRefused((await Promise.allSettled([store.create('boom', 'Boom')]))[0])
        assert.deepEqual(reads.readCollectionValidator(), collection)
        assert.equal(reads.readValidator('boom'), undefined)
        assert.deepEqual(reads.readValidator('first'), { version: first.version, changedAt: first.changedAt })
        await store.close()
        store = await database.openStore()
        assert.deepEqual(await store.readCollectionValidator(), collection)
        // the next write takes the revision the refused one gave back
        assert.equal(mustWrite(await store.create('after', 'After')).version, collection.revision + 1)
      } finally {
        await store.close()
        await database.cleanup()
      }
    })
  })
})
