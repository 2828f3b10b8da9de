/**
 * A database of schema 1 (before the changes feed: no tombstones) opened by this ifmatch: it is
 * migrated on start without losing anything, and a feed token from before the upgrade, which
 * could have missed deletes that left no tombstone, is answered 410.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import Database from 'better-sqlite3'
import pg from 'pg'
import { MIGRATIONS as POSTGRES_MIGRATIONS } from '../../src/store/postgres/postgres-schema.js'
import { MIGRATIONS as SQLITE_MIGRATIONS } from '../../src/store/sqlite/sqlite-schema.js'
import { startServer, type RunningServer } from '../helpers/start-server.js'
import { TEST_DRIVERS, type TestDatabase } from '../helpers/test-stores.js'

// a schema-1 database as the previous release left it: five writes, of which two were deletes of
// persons that are gone without a trace
const EPOCH = 'Up9radeEpoch'
const REVISION = 5
const CHANGED_AT = Date.parse('2026-11-25T10:00:00.000Z')
const PERSONS = [
  { id: 'a', name: 'Ann', version: 1 },
  { id: 'c', name: 'Cid', version: 4 },
  { id: 'd', name: 'Dee', version: 5 },
]

async function writeSchemaOne(driver: string, database: TestDatabase): Promise<void> {
  if (driver === 'sqlite') {
    const db = new Database(database.url.slice('sqlite:'.length))
    db.exec(SQLITE_MIGRATIONS[0]!)
    db.prepare('INSERT INTO meta (id, epoch, revision, changed_at) VALUES (1, ?, ?, ?)').run(EPOCH, REVISION, CHANGED_AT)
    const insert = db.prepare('INSERT INTO persons (person_id, person_name, change_date, version) VALUES (?, ?, ?, ?)')
    for (const p of PERSONS) insert.run(p.id, p.name, CHANGED_AT, p.version)
    db.pragma('user_version = 1')
    db.close()
    return
  }
  const client = new pg.Client({ connectionString: database.url })
  await client.connect()
  try {
    await client.query(POSTGRES_MIGRATIONS[0]!)
    await client.query('INSERT INTO ifmatch_meta (id, epoch, revision, changed_at, schema_version) VALUES (1, $1, $2, $3, 1)', [EPOCH, REVISION, CHANGED_AT])
    for (const p of PERSONS) {
      await client.query('INSERT INTO persons (person_id, person_name, change_date, version) VALUES ($1, $2, $3, $4)', [p.id, p.name, CHANGED_AT, p.version])
    }
  } finally {
    await client.end()
  }
}

const token = (revision: number): string => `${EPOCH}.${revision.toString(36)}`

for (const driver of TEST_DRIVERS) {
  describe(`${driver.name}: a schema-1 database opened by this version`, () => {
    let database: TestDatabase
    let server: RunningServer

    before(async () => {
      database = await driver.createDatabase()
      await writeSchemaOne(driver.name, database)
      server = await startServer({ database })
    })
    after(async () => {
      await server?.stop()
      await database?.cleanup()
    })

    it('keeps every person, its version (its ETag) and the epoch', async () => {
      const page = (await (await fetch(`${server.baseUrl}/persons`)).json()) as { person_id: string; person_name: string }[]
      assert.deepEqual(
        page.map((p) => [p.person_id, p.person_name]),
        PERSONS.map((p) => [p.id, p.name]),
      )
      for (const p of PERSONS) {
        const response = await fetch(`${server.baseUrl}/persons/${p.id}`)
        assert.equal(response.headers.get('etag'), `"${EPOCH}.${p.version.toString(36)}"`)
      }
      assert.equal(server.store.epoch, EPOCH)
    })

    it('starts the horizon at the revision of the upgrade', async () => {
      const collection = await server.store.readCollectionValidator()
      assert.equal(collection.revision, REVISION)
      assert.equal(collection.horizon, REVISION)
    })

    it('answers 410 to a token from before the upgrade, which could have missed its deletes', async () => {
      const response = await fetch(`${server.baseUrl}/persons?since=${token(3)}`)
      assert.equal(response.status, 410)
      assert.equal(response.headers.get('cache-control'), 'no-store')
      assert.equal(((await response.json()) as { type: string }).type, '/problems/changes-gone')
    })

    it('answers from 0 with every person, and from the upgrade on with what changed since', async () => {
      const fromZero = (await (await fetch(`${server.baseUrl}/persons?since=0`)).json()) as { changes: { person_id: string }[]; next: string }
      assert.deepEqual(
        fromZero.changes.map((c) => c.person_id),
        ['a', 'c', 'd'],
      )
      assert.equal(fromZero.next, token(REVISION))
      const etag = (await fetch(`${server.baseUrl}/persons/c`)).headers.get('etag')!
      const deleted = await fetch(`${server.baseUrl}/persons/c`, { method: 'DELETE', headers: { 'if-match': etag } })
      assert.equal(deleted.status, 204)
      const since = (await (await fetch(`${server.baseUrl}/persons?since=${token(REVISION)}`)).json()) as { changes: unknown[] }
      assert.deepEqual(since.changes, [{ person_id: 'c', deleted: true }])
    })
  })
}
