/**
 * The PostgreSQL driver's start-up: creating or migrating the schema when several processes start
 * at once, keeping data and epoch across restarts, a new epoch for a re-created database, and
 * code-point (COLLATE "C") order of person ids whatever the database's own collation.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import type { PersonStore, StoredPerson } from '../../src/store/person-store.js'
import { openStore } from '../../src/store/open-store.js'
import { MIGRATION_LOCK_KEY } from '../../src/store/postgres/postgres-schema.js'
import { databaseName, itReportsPostgresNotTested, TEST_DRIVERS, pgAdmin, postgresUrl, type TestDatabase } from '../helpers/test-stores.js'
import { settleKeeping } from '../helpers/settle.js'

const CONCURRENT_STARTS = 6
// only to turn a hang into a failure; the driver cancels statements after 10 s
const WAIT_FOR_WAITERS_MS = 8_000

// valid person ids, in code-point order: '-' 2D < '.' 2E < '0' 30 < 'A' 41 < 'B' 42 < 'Z' 5A < '_' 5F < 'a' 61 < 'z' 7A < '~' 7E
const IDS_IN_CODE_POINT_ORDER = ['-', '.', '0', 'A', 'Ab', 'B', 'Z', '_', 'a', 'aB', 'ab', 'z', '~']

async function mustCreate(store: PersonStore, id: string, name: string): Promise<StoredPerson> {
  const result = await store.create(id, name)
  assert.ok(result.ok, `create ${id} failed: ${JSON.stringify(result)}`)
  return result.person
}

/** Opens every store at once; closes the ones that opened if any failed, then rethrows. */
async function openAll(opens: readonly Promise<PersonStore>[], opened: PersonStore[]): Promise<PersonStore[]> {
  const { values, failures } = await settleKeeping(opens, opened)
  assert.equal(failures.length, 0, `${failures.length} of ${opens.length} opens failed: ${failures.map(String).join('; ')}`)
  return values
}

async function closeAll(stores: PersonStore[]): Promise<void> {
  await Promise.allSettled(stores.splice(0).map((s) => s.close()))
}

const postgres = TEST_DRIVERS.find((d) => d.name === 'postgres')

if (postgres === undefined) {
  describe('PostgreSQL schema migration', () => {
    itReportsPostgresNotTested('the PostgreSQL migration tests')
  })
} else {
  describe('PostgreSQL schema migration', () => {
    /**
     * In the describe it is called from: a fresh database before the tests, and after them every
     * store in `opened` closed and the database dropped.
     */
    const freshDatabase = (): { database: () => TestDatabase; opened: PersonStore[] } => {
      let database: TestDatabase | undefined
      const opened: PersonStore[] = []

      before(async () => {
        database = await postgres.createDatabase()
      })

      after(async () => {
        await closeAll(opened)
        await database?.cleanup()
      })

      return { database: () => database!, opened }
    }

    describe(`${CONCURRENT_STARTS} stores opened at once on one fresh, empty database`, () => {
      const { database, opened } = freshDatabase()

      it('all open and agree on one epoch and one schema', async () => {
        const stores = await openAll(
          Array.from({ length: CONCURRENT_STARTS }, () => database().openStore()),
          opened,
        )
        const epochs = new Set(stores.map((s) => s.epoch))
        assert.equal(epochs.size, 1, `epochs: ${[...epochs].join(' ')}`)
        assert.ok(stores[0]!.epoch.length > 0)

        // one schema, one revision counter: a write through one store is seen by every other
        const written = await mustCreate(stores[0]!, 'shared', 'Wim')
        for (const store of stores) {
          assert.deepEqual(await store.read('shared'), written)
          assert.equal((await store.readCollectionValidator()).revision, written.version)
        }
        await closeAll(opened)
      })
    })

    describe(`${CONCURRENT_STARTS} stores opened while another session holds the migration lock`, () => {
      let database: TestDatabase | undefined
      let holder: pg.Client | undefined
      const opened: PersonStore[] = []

      before(async () => {
        database = await postgres.createDatabase()
        holder = new pg.Client({ connectionString: database.url, connectionTimeoutMillis: 3000 })
        await holder.connect()
      })

      after(async () => {
        await holder?.end().catch(() => {})
        await closeAll(opened)
        await database?.cleanup()
      })

      it('all wait on the advisory lock, then open one after another with one epoch', async () => {
        const client = holder!
        await client.query('BEGIN')
        await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY])
        let settled = 0
        const opens = Array.from({ length: CONCURRENT_STARTS }, () => {
          const open = database!.openStore()
          void open.then(
            () => {
              settled++
            },
            () => {
              settled++
            },
          )
          return open
        })

        // the migration lock is taken on a bigint key: classid holds its high 32 bits, objid the low ones
        const waiting = async (): Promise<number> => {
          const { rows } = await client.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM pg_locks
             WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND objsubid = 1 AND (classid::bigint << 32 | objid::bigint) = $1::bigint`,
            [MIGRATION_LOCK_KEY],
          )
          return rows[0]!.n
        }
        const deadline = Date.now() + WAIT_FOR_WAITERS_MS
        let waiters = await waiting()
        while (waiters < CONCURRENT_STARTS && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 50))
          waiters = await waiting()
        }
        // not luck: every start is queued behind the lock, none has migrated or read an epoch yet
        assert.equal(waiters, CONCURRENT_STARTS, 'starts waiting on the migration advisory lock')
        assert.equal(settled, 0, 'no store opened while the migration lock was held elsewhere')
        const tables = await client.query(`SELECT to_regclass('ifmatch_meta') IS NULL AS absent`)
        assert.equal(tables.rows[0].absent, true, 'no schema was created while the lock was held')

        await client.query('COMMIT')
        const stores = await openAll(opens, opened)
        assert.equal(new Set(stores.map((s) => s.epoch)).size, 1)
        const meta = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM ifmatch_meta')
        assert.equal(meta.rows[0]!.n, 1, 'exactly one meta row')
      })
    })

    describe('a database opened again after its stores closed', () => {
      const { database, opened } = freshDatabase()

      it('keeps its persons, their versions, the revision and the epoch', async () => {
        const first = await database().openStore()
        opened.push(first)
        const wim = await mustCreate(first, 'wim', 'Wim')
        const ann = await mustCreate(first, 'ann', 'Ann')
        const collection = await first.readCollectionValidator()
        const epoch = first.epoch
        await closeAll(opened)

        for (let reopen = 0; reopen < 2; reopen++) {
          const again = await database().openStore()
          opened.push(again)
          assert.equal(again.epoch, epoch)
          assert.deepEqual(await again.read('wim'), wim)
          assert.deepEqual(await again.read('ann'), ann)
          assert.deepEqual(await again.readCollectionValidator(), collection)
          await closeAll(opened)
        }

        // the revision carries on: a write after a restart never reuses an old version
        const last = await database().openStore()
        opened.push(last)
        const updated = await last.update('wim', 'Wim again', wim.version)
        assert.ok(updated.ok)
        assert.ok(updated.person.version > ann.version)
      })
    })

    describe('a database dropped and created again under the same name', () => {
      const { database, opened } = freshDatabase()

      it('gets a new epoch, so its first versions never repeat an old ETag', async () => {
        const name = databaseName(database().url)
        const first = await database().openStore()
        opened.push(first)
        const old = await mustCreate(first, 'wim', 'Wim')
        const oldEpoch = first.epoch
        await closeAll(opened)

        await pgAdmin(`DROP DATABASE "${name}" WITH (FORCE)`)
        await pgAdmin(`CREATE DATABASE "${name}"`)

        const second = await database().openStore()
        opened.push(second)
        assert.equal(await second.read('wim'), undefined)
        const reborn = await mustCreate(second, 'wim', 'Wim')
        // the revision counter starts over with the database: only the epoch keeps an ETag from repeating
        assert.notEqual(second.epoch, oldEpoch)
        assert.notDeepEqual([second.epoch, reborn.version], [oldEpoch, old.version])
      })
    })

    describe('person ids', () => {
      const databases: { url: string; cleanup: () => Promise<void> }[] = []
      const opened: PersonStore[] = []

      after(async () => {
        await closeAll(opened)
        for (const database of databases) await database.cleanup()
      })

      /** A fresh database whose own default collation is linguistic (ICU en-US), or undefined if the server cannot. */
      async function linguisticDatabase(): Promise<string | undefined> {
        const name = `ifmatch_test_icu_${randomBytes(6).toString('hex')}`
        try {
          await pgAdmin(`CREATE DATABASE ${name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'`)
        } catch (error) {
          process.stderr.write(`\n!!! cannot create an ICU-collated database (${(error as Error).message}); checking id order on a default database only\n\n`)
          return undefined
        }
        databases.push({ url: postgresUrl(name), cleanup: () => pgAdmin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) })
        return postgresUrl(name)
      }

      async function checkCodePointOrder(url: string): Promise<void> {
        const store = await openStore(url)
        opened.push(store)
        const shuffled = [...IDS_IN_CODE_POINT_ORDER].reverse()
        for (const [i, id] of shuffled.entries()) await mustCreate(store, id, `person ${i}`)

        const page = await store.readPage({ limit: 100 })
        assert.deepEqual(
          page.persons.map((p) => p.id),
          IDS_IN_CODE_POINT_ORDER,
        )
        const afterZ = await store.readPage({ limit: 100, after: 'Z' })
        assert.deepEqual(
          afterZ.persons.map((p) => p.id),
          ['_', 'a', 'aB', 'ab', 'z', '~'],
        )
        const afterB = await store.readPage({ limit: 2, after: 'B' })
        assert.deepEqual(
          afterB.persons.map((p) => p.id),
          ['Z', '_'],
        )
        assert.equal(afterB.hasMore, true)
      }

      it('sort in code-point order on a fresh default database', async () => {
        const database = await postgres.createDatabase()
        databases.push(database)
        await checkCodePointOrder(database.url)
      })

      it('sort in code-point order (B < _ < a < ~, Z < a) even where the database collates linguistically', async () => {
        const url = await linguisticDatabase()
        if (url === undefined) {
          // no ICU here: the default database above is all this server can show
          const database = await postgres.createDatabase()
          databases.push(database)
          await checkCodePointOrder(database.url)
          return
        }
        // the database itself orders these ids otherwise, so only COLLATE "C" can pass this test
        const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 })
        await client.connect()
        try {
          const { rows } = await client.query<{ id: string }>(`SELECT id FROM unnest($1::text[]) AS t(id) ORDER BY id`, [IDS_IN_CODE_POINT_ORDER])
          assert.notDeepEqual(
            rows.map((r) => r.id),
            IDS_IN_CODE_POINT_ORDER,
            'the ICU database collates linguistically',
          )
        } finally {
          await client.end()
        }
        await checkCodePointOrder(url)
      })
    })
  })
}
