/**
 * A fresh PostgreSQL database for one benchmark run, made and dropped on the local server (as
 * test/helpers/test-stores.ts does for the suites), and the direct measure of one validator round
 * trip on it.
 */
import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import pg from 'pg'
import { median } from './load.js'

/** The PostgreSQL server the benchmark uses: PG_TEST_URL, else the local trust-auth server. */
export const PG_ADMIN_URL = process.env.PG_TEST_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

async function admin(adminUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 3000 })
  await client.connect()
  try {
    await client.query(sql)
  } finally {
    await client.end()
  }
}

/** A database made for this run: its URL, and `drop` to remove it. */
export interface BenchDatabase {
  readonly url: string
  drop(): Promise<void>
}

/** Makes a new, empty database on the server of `adminUrl` (default PG_ADMIN_URL). */
export async function createBenchDatabase(adminUrl: string = PG_ADMIN_URL): Promise<BenchDatabase> {
  const name = `ifmatch_bench_${randomBytes(6).toString('hex')}`
  await admin(adminUrl, `CREATE DATABASE ${name}`)
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  return { url: url.toString(), drop: () => admin(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) }
}

/** One validator read's round trip, timed from this process. */
export interface RoundTrip {
  readonly statement: string
  readonly count: number
  readonly p50Micros: number
  readonly meanMicros: number
}

/**
 * Times `count` sequential runs of the statement ifmatch's PostgreSQL store reads validators with,
 * sent as the store sends it (named, so prepared once, with an array of ids: here one, as when a
 * read is not gathered with others), on one connection.
 */
export async function validatorRoundTrip(url: string, id: string, count: number): Promise<RoundTrip> {
  const statement = 'SELECT person_id, version, change_date FROM persons WHERE person_id = ANY($1::text[])'
  const query = { name: 'ifmatch_validators', text: statement, values: [[id]] }
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    for (let i = 0; i < 200; i++) await client.query(query)
    const times: number[] = []
    for (let i = 0; i < count; i++) {
      const t0 = performance.now()
      await client.query(query)
      times.push((performance.now() - t0) * 1000)
    }
    return { statement, count, p50Micros: median(times), meanMicros: times.reduce((a, b) => a + b, 0) / count }
  } finally {
    await client.end()
  }
}
