/**
 * Every statement the SQLite store runs, prepared once per connection, and the two reads that
 * must come from one snapshot (a page and its validator, changes and the revision that `next` names).
 */
import type Database from 'better-sqlite3'
import type { ChangesPage, CollectionValidator, PersonPage, StoredChange, StoredPerson } from '../person-store.js'

interface PersonRow {
  person_id: string
  person_name: string
  change_date: number
  version: number
}

/** The one meta row: the database's epoch, store-wide revision, time of the last write, and horizon. */
export interface MetaRow {
  epoch: string
  revision: number
  changed_at: number
  horizon: number
}

/** A row of the changes query: a person, or a tombstone (person_name NULL, change_date its deletion). */
interface ChangeRow {
  person_id: string
  person_name: string | null
  change_date: number
  version: number
}

function toPerson(row: PersonRow): StoredPerson {
  return { id: row.person_id, name: row.person_name, changedAt: row.change_date, version: row.version }
}

function toChange(row: ChangeRow): StoredChange {
  if (row.person_name === null) return { deleted: true, id: row.person_id, version: row.version }
  return { deleted: false, person: { id: row.person_id, name: row.person_name, changedAt: row.change_date, version: row.version } }
}

/** The collection validator of a meta row. */
export function toCollection(row: CollectionRow): CollectionValidator {
  return { revision: row.revision, changedAt: row.changed_at, horizon: row.horizon }
}

type Statement<P extends unknown[], R = unknown> = Database.Statement<P, R>

/** The meta row without its epoch, as a write's RETURNING gives it. */
export type CollectionRow = Omit<MetaRow, 'epoch'>

/** The prepared statements and snapshot reads of one connection. */
export interface SqliteStatements {
  readonly meta: Statement<[], MetaRow>
  readonly bump: Statement<[number], CollectionRow>
  readonly bury: Statement<[string, number, number]>
  readonly unbury: Statement<[string]>
  readonly newestPurgeable: Statement<[number], { version: number | null }>
  readonly purge: Statement<[number]>
  readonly raiseHorizon: Statement<[number], CollectionRow>
  readonly validator: Statement<[string], { version: number; change_date: number }>
  readonly insert: Statement<[string, string, number, number]>
  readonly update: Statement<[string, number, number, string]>
  readonly delete: Statement<[string]>
  /** One person, or undefined. */
  readonly read: (id: string) => StoredPerson | undefined
  /** The changes after `since` (tombstones after `tombstones`), with the revision, in one snapshot. */
  readonly readChanges: (since: number, limit: number, tombstones: number) => ChangesPage
  /** A page and its validator, in one snapshot. */
  readonly readPage: (limit: number, after: string | undefined) => PersonPage
}

/** Prepares every statement of the store on `db` (whose schema is current). */
export function prepareStatements(db: Database.Database): SqliteStatements {
  const meta = db.prepare<[], MetaRow>('SELECT epoch, revision, changed_at, horizon FROM meta WHERE id = 1')
  // ordered by version across both tables: SQLite merges the two index scans
  const changes = db.prepare<[{ since: number; tombstones: number; limit: number }], ChangeRow>(
    `SELECT person_id, person_name, change_date, version FROM persons WHERE version > @since
     UNION ALL
     SELECT person_id, NULL, deleted_at, version FROM tombstones WHERE version > @tombstones
     ORDER BY version LIMIT @limit`,
  )
  const pageFirst = db.prepare<[number], PersonRow>('SELECT person_id, person_name, change_date, version FROM persons ORDER BY person_id LIMIT ?')
  const pageAfter = db.prepare<[string, number], PersonRow>(
    'SELECT person_id, person_name, change_date, version FROM persons WHERE person_id > ? ORDER BY person_id LIMIT ?',
  )
  const read = db.prepare<[string], PersonRow>('SELECT person_id, person_name, change_date, version FROM persons WHERE person_id = ?')
  return {
    meta,
    bump: db.prepare<[number], CollectionRow>('UPDATE meta SET revision = revision + 1, changed_at = ? WHERE id = 1 RETURNING revision, changed_at, horizon'),
    bury: db.prepare<[string, number, number]>(
      'INSERT INTO tombstones (person_id, version, deleted_at) VALUES (?, ?, ?) ' +
        'ON CONFLICT (person_id) DO UPDATE SET version = excluded.version, deleted_at = excluded.deleted_at',
    ),
    unbury: db.prepare<[string]>('DELETE FROM tombstones WHERE person_id = ?'),
    newestPurgeable: db.prepare<[number], { version: number | null }>('SELECT max(version) AS version FROM tombstones WHERE deleted_at < ?'),
    purge: db.prepare<[number]>('DELETE FROM tombstones WHERE deleted_at < ?'),
    raiseHorizon: db.prepare<[number], CollectionRow>('UPDATE meta SET horizon = max(horizon, ?) WHERE id = 1 RETURNING revision, changed_at, horizon'),
    validator: db.prepare<[string], { version: number; change_date: number }>('SELECT version, change_date FROM persons WHERE person_id = ?'),
    insert: db.prepare<[string, string, number, number]>('INSERT INTO persons (person_id, person_name, change_date, version) VALUES (?, ?, ?, ?)'),
    update: db.prepare<[string, number, number, string]>('UPDATE persons SET person_name = ?, change_date = ?, version = ? WHERE person_id = ?'),
    delete: db.prepare<[string]>('DELETE FROM persons WHERE person_id = ?'),
    /** One person, or undefined. */
    read: (id: string): StoredPerson | undefined => {
      const row = read.get(id)
      return row === undefined ? undefined : toPerson(row)
    },
    // one read transaction: the changes and the revision that `next` names come from one snapshot
    readChanges: db.transaction((since: number, limit: number, tombstones: number): ChangesPage => {
      const collection = toCollection(meta.get()!)
      const rows = changes.all({ since, tombstones, limit: limit + 1 })
      return { collection, changes: rows.slice(0, limit).map(toChange), hasMore: rows.length > limit }
    }).deferred,
    // one read transaction: the page and its validator come from the same snapshot
    readPage: db.transaction((limit: number, after: string | undefined): PersonPage => {
      const collection = toCollection(meta.get()!)
      const rows = after === undefined ? pageFirst.all(limit + 1) : pageAfter.all(after, limit + 1)
      return { collection, persons: rows.slice(0, limit).map(toPerson), hasMore: rows.length > limit }
    }).deferred,
  }
}
