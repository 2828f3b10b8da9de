/**
 * The drivers every store and HTTP suite runs against. Each `open()` gives a fresh, empty
 * database of its own and a `cleanup` that removes it.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import assert from 'node:assert/strict'
import { it } from 'node:test'
import pg from 'pg'
import type { PersonStore } from '../../src/store/person-store.js'
import { openStore, type StoreOptions } from '../../src/store/open-store.js'

export interface TestDatabase {
  /** The DATABASE_URL of this fresh database, for starting server processes on it. */
  readonly url: string
  /**
   * The environment a server process on this database needs besides DATABASE_URL: for a SQLite
   * database made `shared`, SQLITE_LOCKING=shared, so that more than one process can open it.
   */
  readonly env: Readonly<Record<string, string>>
  /** Opens one more store on the same database (as another process would). */
  openStore(): Promise<PersonStore>
  /** Removes the database. */
  cleanup(): Promise<void>
}

export interface DatabaseOptions {
  /**
   * More than one store or process will open it at once: SQLite then opens it in shared locking
   * mode (the default, exclusive, lets one in). PostgreSQL is always shared.
   */
  readonly shared?: boolean
}

export interface TestDriver {
  readonly name: 'sqlite' | 'postgres'
  createDatabase(options?: DatabaseOptions): Promise<TestDatabase>
}

/** A fresh temporary directory, removed by `cleanup`. */
export function tempDir(prefix = 'ifmatch-test-'): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix))
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) }
}

const sqlite: TestDriver = {
  name: 'sqlite',
  async createDatabase(options: DatabaseOptions = {}) {
    const dir = tempDir()
    const url = `sqlite:${join(dir.path, 'ifmatch.sqlite')}`
    const storeOptions: StoreOptions = options.shared === true ? { sqliteLocking: 'shared' } : {}
    const env: Record<string, string> = options.shared === true ? { SQLITE_LOCKING: 'shared' } : {}
    return {
      url,
      env,
      openStore: () => openStore(url, storeOptions),
      cleanup: async () => dir.cleanup(),
    }
  },
}

/**
 * The PostgreSQL server the suites use: PG_TEST_URL, else the local trust-auth server. Each test
 * database is a new database on it, dropped by `cleanup`.
 */
export const PG_ADMIN_URL = process.env.PG_TEST_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

/**
 * The one test of a PostgreSQL-only suite when PostgreSQL is not in TEST_DRIVERS: it fails when
 * CI=true (CI must test PostgreSQL), and elsewhere says loudly that `what` did NOT run.
 */
export function itReportsPostgresNotTested(what: string): void {
  it('is NOT tested: PostgreSQL is not in TEST_DRIVERS (a failure when CI=true)', () => {
    const why = `PostgreSQL at ${PG_ADMIN_URL} is not in TEST_DRIVERS (not answering, or IFMATCH_TEST_DRIVERS excludes it)`
    if (process.env.CI === 'true') assert.fail(`${why}: CI=true must test PostgreSQL`)
    process.stderr.write(`\n!!! ${why}: ${what} did NOT run\n\n`)
  })
}

/** The URL of database `name` on the PG_ADMIN_URL server. */
export function postgresUrl(name: string): string {
  const url = new URL(PG_ADMIN_URL)
  url.pathname = `/${name}`
  return url.toString()
}

/** The name of the database `url` names: the inverse of postgresUrl. */
export function databaseName(url: string): string {
  return decodeURIComponent(new URL(url).pathname.slice(1))
}

/** Runs one statement on the admin database. */
export async function pgAdmin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 3000 })
  await client.connect()
  try {
    await client.query(sql)
  } finally {
    await client.end()
  }
}

const postgres: TestDriver = {
  name: 'postgres',
  async createDatabase() {
    const name = `ifmatch_test_${randomBytes(6).toString('hex')}`
    await pgAdmin(`CREATE DATABASE ${name}`)
    const url = postgresUrl(name)
    return {
      url,
      env: {},
      openStore: () => openStore(url),
      cleanup: () => pgAdmin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
    }
  },
}

async function postgresAnswers(): Promise<boolean> {
  try {
    await pgAdmin('SELECT 1')
    return true
  } catch {
    return false
  }
}

function selectDrivers(available: boolean): TestDriver[] {
  const wanted = process.env.IFMATCH_TEST_DRIVERS?.split(',').map((d) => d.trim())
  const drivers: TestDriver[] = [sqlite]
  if (available) {
    drivers.push(postgres)
  } else if (process.env.CI === 'true') {
    // CI must test PostgreSQL: keep the driver so that every one of its tests fails loudly
    process.stderr.write(`\n!!! PostgreSQL at ${PG_ADMIN_URL} does not answer and CI=true: its tests will FAIL\n\n`)
    drivers.push(postgres)
  } else {
    process.stderr.write(`\n!!! PostgreSQL at ${PG_ADMIN_URL} does not answer: its tests are NOT run (set PG_TEST_URL)\n\n`)
  }
  return wanted === undefined ? drivers : drivers.filter((d) => wanted.includes(d.name))
}

/**
 * Every driver the suites are parametrised over: SQLite always, PostgreSQL when it answers (and
 * always when CI=true). IFMATCH_TEST_DRIVERS=sqlite (or postgres) narrows the list.
 */
export const TEST_DRIVERS: readonly TestDriver[] = selectDrivers(await postgresAnswers())
