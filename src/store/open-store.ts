/** Turns a DATABASE_URL into an open store of the matching driver. */
import { resolve } from 'node:path'
import type { PersonStore } from './person-store.js'
import { PostgresPersonStore } from './postgres/postgres-person-store.js'
import { SqlitePersonStore, type SqliteLocking, type SqliteOptions } from './sqlite/sqlite-person-store.js'

/** Settings that apply to one driver only; the others ignore them. */
export interface StoreOptions {
  /** PostgreSQL: most connections per process (default 10). */
  readonly poolSize?: number | undefined
  /** SQLite: PRAGMA synchronous (default NORMAL; FULL also survives a power loss). */
  readonly sqliteSynchronous?: 'FULL' | 'NORMAL' | undefined
  /** SQLite: `exclusive` (default: one process owns the file, reads are cheaper) or `shared` (many processes). */
  readonly sqliteLocking?: SqliteLocking | undefined
}

/** The embedded default: a SQLite file under ./data/, created if absent. */
export const DEFAULT_DATABASE_URL = 'sqlite:./data/ifmatch.sqlite'

/** A DATABASE_URL that names no driver this build has, or is malformed. */
export class DatabaseUrlError extends Error {
  override readonly name = 'DatabaseUrlError'
}

/**
 * Opens the store a URL names: `sqlite:PATH` (or `sqlite://PATH`, or `sqlite::memory:`), or
 * `postgres://…` / `postgresql://…` (any libpq-style connection URL).
 *
 * @example
 * const store = await openStore('sqlite:./data/ifmatch.sqlite')
 */
export async function openStore(url: string = DEFAULT_DATABASE_URL, options: StoreOptions = {}): Promise<PersonStore> {
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length).replace(/^\/\//, '')
    if (path === '') throw new DatabaseUrlError('DATABASE_URL sqlite: needs a file path, as in sqlite:./data/ifmatch.sqlite')
    const sqliteOptions: SqliteOptions = {
      ...(options.sqliteSynchronous === undefined ? {} : { synchronous: options.sqliteSynchronous }),
      ...(options.sqliteLocking === undefined ? {} : { locking: options.sqliteLocking }),
    }
    return SqlitePersonStore.open(path === ':memory:' ? path : resolve(path), sqliteOptions)
  }
  if (/^postgres(ql)?:\/\//.test(url)) {
    return PostgresPersonStore.open(url, options.poolSize === undefined ? {} : { poolSize: options.poolSize })
  }
  throw new DatabaseUrlError(`DATABASE_URL must start with sqlite: or postgres:// (got ${JSON.stringify(url.split(':', 1)[0])}:…)`)
}
