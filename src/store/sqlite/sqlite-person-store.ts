import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import { newEpoch } from '../epoch.js'
import {
  StoreUnavailableError,
  type CollectionValidator, type DeleteResult, type PageRequest, type PersonPage, type PersonStore,
  type PersonValidator, type StoredPerson, type WriteResult,
} from '../person-store.js'

/** Options for the embedded driver. */
export interface SqliteOptions {
  /**
   * PRAGMA synchronous. NORMAL (the default) in WAL mode: every acknowledged write survives a crash
   * or kill of the process, since a commit is in the WAL file (the OS's page cache) before it is
   * acknowledged; only a power loss or OS crash may drop the last commits. FULL also fsyncs the WAL
   * on every commit, surviving a power loss at the cost of one disk flush per write.
   */
  readonly synchronous?: 'FULL' | 'NORMAL'
  /** How long a writer waits for another process's lock before giving up, in ms. */
  readonly busyTimeoutMs?: number
}

interface PersonRow {
  person_id: string
  person_name: string
  change_date: number
  version: number
}

interface MetaRow {
  epoch: string
  revision: number
  changed_at: number
}

const SCHEMA_VERSION = 1

// Each step takes the schema from version i to i + 1; a start runs the ones not yet applied.
const MIGRATIONS: readonly string[] = [
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
]

function toPerson(row: PersonRow): StoredPerson {
  return { id: row.person_id, name: row.person_name, changedAt: row.change_date, version: row.version }
}

// SQLITE_BUSY and a closed handle are conditions of the moment, answered 503; anything else is a bug
function isUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false
  const code = (error as { code?: unknown }).code
  if (typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'))) return true
  return error instanceof TypeError && /database connection is not open/.test(error.message)
}

/** One queued write: its compare-and-set body, run inside the group's transaction. */
interface QueuedWrite {
  readonly body: () => unknown
  readonly resolve: (value: never) => void
  readonly reject: (error: unknown) => void
}

/**
 * WAL pages written before a commit copies them back into the database file (a checkpoint, two
 * fsyncs). SQLite's default of 1,000 makes every few hundredth write pay for a checkpoint; 10,000
 * (about 40 MiB of WAL) makes that ten times rarer, and a checkpoint still bounds the WAL.
 */
const WAL_AUTOCHECKPOINT_PAGES = 10_000

/**
 * The embedded driver: one SQLite file in WAL mode. Every write checks the stored version, bumps
 * the store-wide revision and writes inside one IMMEDIATE transaction, so a second process on the
 * same file (node:cluster workers) is just as safe as one.
 *
 * Writes are committed in groups: the writes that arrive in one turn of the event loop run one
 * after another, each in its own savepoint, inside one transaction, and each is acknowledged only
 * once that transaction has committed. Each compare-and-set still sees every write before it, so
 * the outcome is the same as one transaction per write; the commit is paid once per group.
 */
export class SqlitePersonStore implements PersonStore {
  readonly driver = 'sqlite'
  readonly epoch: string
  private readonly db: Database.Database
  private readonly statements
  private queue: QueuedWrite[] = []
  private readonly commitGroup: (group: readonly QueuedWrite[]) => unknown[]
  private readonly runInSavepoint: (body: () => unknown) => unknown
  private readonly readPageSnapshot: (limit: number, after: string | undefined) => PersonPage

  private constructor(db: Database.Database) {
    this.db = db
    this.statements = {
      meta: db.prepare<[], MetaRow>('SELECT epoch, revision, changed_at FROM meta WHERE id = 1'),
      bump: db.prepare<[number], { revision: number }>(
        'UPDATE meta SET revision = revision + 1, changed_at = ? WHERE id = 1 RETURNING revision'),
      validator: db.prepare<[string], { version: number; change_date: number }>(
        'SELECT version, change_date FROM persons WHERE person_id = ?'),
      read: db.prepare<[string], PersonRow>(
        'SELECT person_id, person_name, change_date, version FROM persons WHERE person_id = ?'),
      insert: db.prepare<[string, string, number, number]>(
        'INSERT INTO persons (person_id, person_name, change_date, version) VALUES (?, ?, ?, ?)'),
      update: db.prepare<[string, number, number, string]>(
        'UPDATE persons SET person_name = ?, change_date = ?, version = ? WHERE person_id = ?'),
      delete: db.prepare<[string]>('DELETE FROM persons WHERE person_id = ?'),
      pageFirst: db.prepare<[number], PersonRow>(
        'SELECT person_id, person_name, change_date, version FROM persons ORDER BY person_id LIMIT ?'),
      pageAfter: db.prepare<[string, number], PersonRow>(
        'SELECT person_id, person_name, change_date, version FROM persons WHERE person_id > ? ORDER BY person_id LIMIT ?'),
    }
    this.epoch = this.statements.meta.get()!.epoch
    // transaction functions are made once: better-sqlite3 compiles each one into SQL it prepares
    this.runInSavepoint = db.transaction((body: () => unknown) => body())
    this.commitGroup = db.transaction((group: readonly QueuedWrite[]) => group.map((write) => {
      try {
        // a write that throws rolls back to its savepoint; the others in the group still commit
        return { ok: true, value: this.runInSavepoint(write.body) }
      } catch (error) {
        return { ok: false, error }
      }
    })).immediate
    // one read transaction: the page and its validator come from the same snapshot
    this.readPageSnapshot = db.transaction((limit: number, after: string | undefined) => {
      const meta = this.statements.meta.get()!
      const rows = after === undefined
        ? this.statements.pageFirst.all(limit + 1)
        : this.statements.pageAfter.all(after, limit + 1)
      return {
        collection: { revision: meta.revision, changedAt: meta.changed_at },
        persons: rows.slice(0, limit).map(toPerson),
        hasMore: rows.length > limit,
      }
    }).deferred
  }

  /** Opens (creating or migrating as needed) the database file at `path`. */
  static open(path: string, options: SqliteOptions = {}): SqlitePersonStore {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
    const db = new Database(path)
    try {
      db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5000}`)
      db.pragma('journal_mode = WAL')
      db.pragma(`synchronous = ${options.synchronous ?? 'NORMAL'}`)
      db.pragma(`wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`)
      migrate(db)
      return new SqlitePersonStore(db)
    } catch (error) {
      db.close()
      throw error
    }
  }

  async readValidator(id: string): Promise<PersonValidator | undefined> {
    const row = this.run(() => this.statements.validator.get(id))
    return row === undefined ? undefined : { version: row.version, changedAt: row.change_date }
  }

  async read(id: string): Promise<StoredPerson | undefined> {
    const row = this.run(() => this.statements.read.get(id))
    return row === undefined ? undefined : toPerson(row)
  }

  async readCollectionValidator(): Promise<CollectionValidator> {
    const meta = this.run(() => this.statements.meta.get()!)
    return { revision: meta.revision, changedAt: meta.changed_at }
  }

  async readPage(request: PageRequest): Promise<PersonPage> {
    return this.run(() => this.readPageSnapshot(request.limit, request.after))
  }

  async create(id: string, name: string): Promise<WriteResult> {
    return this.write(() => {
      if (this.statements.validator.get(id) !== undefined) return { ok: false, reason: 'exists' }
      const { revision, changedAt } = this.bump()
      this.statements.insert.run(id, name, changedAt, revision)
      return { ok: true, person: { id, name, changedAt, version: revision } }
    })
  }

  async update(id: string, name: string, expectedVersion: number): Promise<WriteResult> {
    return this.write(() => {
      const current = this.statements.validator.get(id)
      if (current === undefined) return { ok: false, reason: 'not-found' }
      if (current.version !== expectedVersion) return { ok: false, reason: 'version-mismatch' }
      const { revision, changedAt } = this.bump()
      this.statements.update.run(name, changedAt, revision, id)
      return { ok: true, person: { id, name, changedAt, version: revision } }
    })
  }

  async delete(id: string, expectedVersion: number): Promise<DeleteResult> {
    return this.write(() => {
      const current = this.statements.validator.get(id)
      if (current === undefined) return { ok: false, reason: 'not-found' }
      if (current.version !== expectedVersion) return { ok: false, reason: 'version-mismatch' }
      this.bump()
      this.statements.delete.run(id)
      return { ok: true }
    })
  }

  async ping(): Promise<void> {
    this.run(() => this.statements.meta.get())
  }

  async close(): Promise<void> {
    // writes already queued are committed (and acknowledged) before the database closes
    if (this.queue.length > 0 && this.db.open) this.commitQueued()
    if (this.db.open) this.db.close()
  }

  private bump(): { revision: number; changedAt: number } {
    const changedAt = Date.now()
    return { revision: this.statements.bump.get(changedAt)!.revision, changedAt }
  }

  /**
   * Queues `body` for the next group commit. IMMEDIATE takes the write lock up front, so each
   * version check and its write see no other writer.
   */
  private write<T>(body: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ body, resolve: resolve as (value: never) => void, reject })
      // the group is what arrived in this turn of the event loop; it commits after the I/O phase
      if (this.queue.length === 1) setImmediate(() => this.commitQueued())
    })
  }

  private commitQueued(): void {
    const group = this.queue
    this.queue = []
    let outcomes: unknown[]
    try {
      outcomes = this.run(() => this.commitGroup(group))
    } catch (error) {
      // nothing in the group was committed (busy beyond the timeout, a closed database, …)
      for (const write of group) write.reject(error)
      return
    }
    // acknowledged only now: every write of the group is in the WAL
    group.forEach((write, i) => {
      const outcome = outcomes[i] as { ok: true; value: never } | { ok: false; error: unknown }
      if (outcome.ok) write.resolve(outcome.value)
      else write.reject(this.unavailableOr(outcome.error))
    })
  }

  private run<T>(body: () => T): T {
    try {
      return body()
    } catch (error) {
      throw this.unavailableOr(error)
    }
  }

  private unavailableOr(error: unknown): unknown {
    return isUnavailable(error) ? new StoreUnavailableError('the SQLite database is unavailable', { cause: error }) : error
  }
}

function migrate(db: Database.Database): void {
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
