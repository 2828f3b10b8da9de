/**
 * A PostgreSQL on the same host can be reached through its Unix socket, in either form libpq and
 * node-postgres accept (docs/operating.md#running-on-postgresql): the store's every connection,
 * the pool's and the validator connection, then goes through the socket, none through TCP.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import pg from 'pg'
import { openStore } from '../../src/store/open-store.js'
import { VALIDATORS_APPLICATION_NAME } from '../../src/store/postgres/postgres-person-store.js'
import { databaseName, itReportsPostgresNotTested, PG_ADMIN_URL, TEST_DRIVERS, type TestDatabase } from '../helpers/test-stores.js'

const postgres = TEST_DRIVERS.find((d) => d.name === 'postgres')

describe('PostgreSQL through its Unix socket', () => {
  if (postgres === undefined) {
    itReportsPostgresNotTested('the Unix socket tests')
    return
  }

  let database: TestDatabase
  let admin: pg.Client
  // the server's socket directory, when it is on this machine
  let socketDir: string | undefined

  before(async () => {
    database = await postgres.createDatabase()
    admin = new pg.Client({ connectionString: database.url })
    await admin.connect()
    const { rows } = await admin.query<{ unix_socket_directories: string }>('SHOW unix_socket_directories')
    socketDir = rows[0]!.unix_socket_directories
      .split(',')
      .map((d) => d.trim())
      .find((d) => d !== '' && existsSync(d))
  })

  after(async () => {
    await admin?.end()
    await database?.cleanup()
  })

  const name = (): string => databaseName(database.url)
  const user = (): string => new URL(PG_ADMIN_URL).username || 'postgres'

  for (const [id, form, url] of [
    ['socket-1', 'host as a query parameter', (dir: string) => `postgres:///${name()}?host=${dir}&user=${user()}`],
    ['socket-2', 'host percent-encoded', (dir: string) => `postgres://${user()}@${encodeURIComponent(dir)}/${name()}`],
  ] as const) {
    it(`serves reads and writes with every connection on the socket (${form})`, async (t) => {
      if (socketDir === undefined) {
        // PG_TEST_URL names a server elsewhere: it has no socket here to reach
        t.diagnostic(`PostgreSQL at ${PG_ADMIN_URL} has no Unix socket on this machine: NOT tested`)
        assert.notEqual(process.env.CI, 'true', 'CI=true must test the Unix socket: its PostgreSQL is local')
        return
      }
      const store = await openStore(url(socketDir))
      try {
        const created = await store.create(id, 'Ada')
        assert.ok(created.ok)
        assert.equal((await store.readValidator(id))?.version, created.person.version)
        assert.equal((await store.readCollectionValidator()).revision, created.person.version)

        const { rows } = await admin.query<{ application_name: string; tcp: boolean }>(
          `SELECT application_name, client_addr IS NOT NULL OR client_port > 0 AS tcp
           FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
          [name()],
        )
        assert.ok(rows.length >= 2, `the pool's and the validators' connections are open: ${JSON.stringify(rows)}`)
        assert.ok(
          rows.some((r) => r.application_name === VALIDATORS_APPLICATION_NAME),
          'the validator connection is among them',
        )
        assert.deepEqual(
          rows.filter((r) => r.tcp),
          [],
          'no connection of the store goes through TCP',
        )
      } finally {
        await store.close()
      }
    })
  }
})
