/**
 * A statement PostgreSQL cancels because it outlived the statement timeout (SQLSTATE 57014) is a
 * condition of the moment, like a lost connection: the store reports it as unavailable, which the
 * HTTP layer answers 503 with Retry-After, not as a bug (500). Made here by a write that waits
 * behind another session's lock on the revision row.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import pg from 'pg'
import { StoreUnavailableError } from '../../src/store/person-store.js'
import { PostgresPersonStore } from '../../src/store/postgres/postgres-person-store.js'
import { itReportsPostgresNotTested, TEST_DRIVERS, type TestDatabase } from '../helpers/test-stores.js'

const postgres = TEST_DRIVERS.find((d) => d.name === 'postgres')
const STATEMENT_TIMEOUT_MS = 300

describe('PostgreSQL statement timeout', () => {
  if (postgres === undefined) {
    itReportsPostgresNotTested('the statement timeout test')
    return
  }

  let database: TestDatabase
  let store: PostgresPersonStore
  let holder: pg.Client

  before(async () => {
    database = await postgres.createDatabase()
    store = await PostgresPersonStore.open(database.url, { statementTimeoutMs: STATEMENT_TIMEOUT_MS })
    holder = new pg.Client({ connectionString: database.url })
    await holder.connect()
  })

  after(async () => {
    await holder?.end()
    await store?.close()
    await database?.cleanup()
  })

  it('reports a write cancelled by the statement timeout as unavailable, and writes again once the lock is gone', async () => {
    const created = await store.create('ann', 'Ann')
    assert.ok(created.ok)
    await holder.query('BEGIN')
    await holder.query('SELECT revision FROM ifmatch_meta WHERE id = 1 FOR UPDATE')
    const started = performance.now()
    await assert.rejects(store.update('ann', 'Ann again', created.person.version), (error: unknown) => {
      assert.ok(error instanceof StoreUnavailableError, `not unavailable: ${String(error)}`)
      assert.equal((error.cause as { code?: string }).code, '57014')
      return true
    })
    assert.ok(performance.now() - started >= STATEMENT_TIMEOUT_MS * 0.9, 'it waited for the lock first')
    await holder.query('ROLLBACK')

    const again = await store.update('ann', 'Ann again', created.person.version)
    assert.ok(again.ok, 'the cancelled write changed nothing, so its version still holds')
    assert.equal((await store.read('ann'))?.name, 'Ann again')
  })
})
