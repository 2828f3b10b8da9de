/**
 * The SQLite schema and its migrations. The file's user_version is the schema version; a start
 * applies, in one IMMEDIATE transaction, the steps the file has not seen yet, so two processes
 * starting on a new shared file migrate it once.
 */
import type Database from 'better-sqlite3'
import { newEpoch } from '../epoch.js'

/** The schema version this code writes and reads (PRAGMA user_version). */
export const SCHEMA_VERSION = 2

/** Each step takes the schema from version i to i + 1; a start runs the ones not yet applied. */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE meta (
     id INTEGER PRIMARY KEY CHECK (id = 1),
     epoch TEXT NOT NULL,
     revision INTEGER NOT NULL,
     changed_at INTEGER NOT NULL
   );
   CREATE TABLE persons (
     person_id TEXT PRIMARY KEY,
     person_name TEXT NOT NULL,
     change_date INTEGER NOT NULL,
     version INTEGER NOT NULL
   ) WITHOUT ROWID;`,
  // the changes feed: a delete leaves a tombstone with the revision of the delete (a create of the
  // id removes it), and both tables are read in version order. Deletes before this step left no
  // tombstone, so the horizon starts at the revision of the upgrade: older tokens get 410.
  `CREATE TABLE tombstones (
     person_id TEXT PRIMARY KEY,
     version INTEGER NOT NULL,
     deleted_at INTEGER NOT NULL
   ) WITHOUT ROWID;
   CREATE INDEX tombstones_by_version ON tombstones (version);
   CREATE INDEX persons_by_version ON persons (version);
   ALTER TABLE meta ADD COLUMN horizon INTEGER NOT NULL DEFAULT 0;
   UPDATE meta SET horizon = revision;`,
]

/**
 * Brings the schema of `db` to SCHEMA_VERSION, creating the meta row (with a fresh epoch) on a new
 * file; refuses a file whose schema is newer than this code knows.
 */
export function migrate(db: Database.Database): void {
  db.transaction(() => {
    const current = db.pragma('user_version', { simple: true }) as number
    if (current > SCHEMA_VERSION) {
      throw new Error(`the database has schema version ${current}, newer than this ifmatch knows (${SCHEMA_VERSION})`)
    }
    for (let version = current; version < SCHEMA_VERSION; version++) {
      db.exec(MIGRATIONS[version]!)
      if (version === 0) {
        db.prepare('INSERT INTO meta (id, epoch, revision, changed_at) VALUES (1, ?, 0, ?)').run(newEpoch(), Date.now())
      }
    }
    db.pragma(`user_version = ${SCHEMA_VERSION}`)
  }).immediate()
}
