/**
 * PipelinedConnection (src/store/postgres/pipelined-connection.ts), against a real PostgreSQL:
 * statements asked at once all go on one connection and each gets its own answer (that they are
 * written without waiting is node-postgres' pipeline mode; what it saves is measured by
 * `npm run bench`), a failing statement fails alone, a connection the server ended or that could
 * not be made is made again for the next statement, and nothing is asked after end().
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import pg from 'pg'
import { CLOSED_MESSAGE, PipelinedConnection } from '../../src/store/postgres/pipelined-connection.js'
import { proxyToDatabase, throughProxy } from '../helpers/tcp-proxy.js'
import { itReportsPostgresNotTested, TEST_DRIVERS, type TestDatabase } from '../helpers/test-stores.js'

const postgres = TEST_DRIVERS.find((d) => d.name === 'postgres')
const APPLICATION_NAME = 'ifmatch-pipeline-test'
// only to turn a hang into a failure
const WAIT_MS = 5_000

describe('PipelinedConnection', () => {
  if (postgres === undefined) {
    itReportsPostgresNotTested('the pipelined connection tests')
    return
  }

  let database: TestDatabase
  let admin: pg.Client

  before(async () => {
    database = await postgres.createDatabase()
    admin = new pg.Client({ connectionString: database.url })
    await admin.connect()
  })

  after(async () => {
    await admin?.end()
    await database?.cleanup()
  })

  const connection = (): PipelinedConnection =>
    new PipelinedConnection({ connectionString: database.url, application_name: APPLICATION_NAME, connectionTimeoutMillis: 3000, query_timeout: WAIT_MS })

  /** The backends of this test's connections now open, by pid. */
  async function backends(): Promise<number[]> {
    const { rows } = await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1 ORDER BY pid', [APPLICATION_NAME])
    return rows.map((row) => row.pid)
  }

  it('answers statements asked together on one backend, each with its own answer, in order', async () => {
    const pipelined = connection()
    try {
      const asked = Array.from({ length: 20 }, (_, i) =>
        pipelined.query<{ i: number; pid: number }>({ name: 'pipeline_test', text: 'SELECT $1::int AS i, pg_backend_pid() AS pid', values: [i] }),
      )
      const answers = await Promise.all(asked)
      assert.deepEqual(
        answers.map((a) => a.rows[0]!.i),
        Array.from({ length: 20 }, (_, i) => i),
      )
      assert.equal(new Set(answers.map((a) => a.rows[0]!.pid)).size, 1, 'one backend answered them all')
      assert.deepEqual(await backends(), [answers[0]!.rows[0]!.pid])
    } finally {
      await pipelined.end()
    }
  })

  it('fails a statement that fails alone: those before and after it are answered', async () => {
    const pipelined = connection()
    try {
      const before = pipelined.query<{ n: number }>({ text: 'SELECT 1 AS n' })
      const failing = pipelined.query({ text: 'SELECT 1 / 0' })
      const afterIt = pipelined.query<{ n: number }>({ text: 'SELECT 3 AS n' })
      assert.equal((await before).rows[0]!.n, 1)
      await assert.rejects(failing, (error: unknown) => (error as { code?: string }).code === '22012')
      assert.equal((await afterIt).rows[0]!.n, 3)
    } finally {
      await pipelined.end()
    }
  })

  it('makes the connection again for the next statement after the server ended it', async () => {
    const pipelined = connection()
    try {
      const first = await pipelined.query<{ pid: number }>({ text: 'SELECT pg_backend_pid() AS pid' })
      const pid = first.rows[0]!.pid
      const inFlight = pipelined.query({ text: 'SELECT pg_sleep(2)' })
      // wait until the sleep runs, then end its backend
      const deadline = performance.now() + WAIT_MS
      while ((await admin.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND query LIKE 'SELECT pg_sleep%'", [pid])).rowCount === 0) {
        assert.ok(performance.now() < deadline, 'the sleep never ran')
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
      await admin.query('SELECT pg_terminate_backend($1)', [pid])
      await assert.rejects(inFlight, 'the statement in flight fails with its connection')

      // a later statement meets either the dropped connection's error once (pg may not have told
      // the connection yet) or, at once, a new backend
      let again: pg.QueryResult<{ pid: number }> | undefined
      for (let attempt = 0; attempt < 50 && again === undefined; attempt++) {
        again = await pipelined.query<{ pid: number }>({ text: 'SELECT pg_backend_pid() AS pid' }).catch(async () => {
          await new Promise((resolve) => setTimeout(resolve, 20))
          return undefined
        })
      }
      assert.ok(again !== undefined, 'no statement succeeded after the backend was terminated')
      assert.notEqual(again.rows[0]!.pid, pid, 'a new backend answers')
      assert.deepEqual(await backends(), [again.rows[0]!.pid], 'and only it is open')
    } finally {
      await pipelined.end()
    }
  })

  it('asks nothing after end(), and leaves no connection open', async () => {
    const pipelined = connection()
    await pipelined.query({ text: 'SELECT 1' })
    assert.equal((await backends()).length, 1)
    await pipelined.end()
    await assert.rejects(pipelined.query({ text: 'SELECT 1' }), { message: CLOSED_MESSAGE })
    const deadline = performance.now() + WAIT_MS
    while ((await backends()).length > 0) {
      assert.ok(performance.now() < deadline, 'the backend is still open after end()')
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  })

  it('fails a statement when the connection cannot be made, and makes it for a later one', async () => {
    const proxy = await proxyToDatabase(database.url)
    const pipelined = new PipelinedConnection({ connectionString: throughProxy(database.url, proxy), connectionTimeoutMillis: 1000 })
    try {
      await proxy.close()
      // nothing listens: refused at once
      await assert.rejects(pipelined.query({ text: 'SELECT 1' }), (error: unknown) => (error as { code?: string }).code === 'ECONNREFUSED')
      await proxy.open()
      const { rows } = await pipelined.query<{ n: number }>({ text: 'SELECT 4 AS n' })
      assert.equal(rows[0]!.n, 4)
    } finally {
      await pipelined.end()
      await proxy.close()
    }
  })
})
