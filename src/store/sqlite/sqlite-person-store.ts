import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import { newEpoch } from '../epoch.js'
import {
  StoreUnavailableError,
  type ChangesPage, type ChangesRequest, type CollectionValidator, type DeleteResult, type StoredChange, type Unwatch, type PageRequest, type PersonPage, type PersonStore,
  type ImmediateReads, type PersonValidator, type StoredPerson, type WriteResult,
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
  /**
   * `exclusive` (the default): this process alone opens the file, and holds SQLite's lock on it
   * from the start; a read then costs no file locking (about 1 µs instead of 5 µs here), and a
   * second process that opens the file is refused with SqliteInUseError once its busy timeout
   * has passed. `shared`: any number of processes may open the file (node:cluster workers), each
   * read and write taking its locks.
   */
  readonly locking?: SqliteLocking
}

export type SqliteLocking = 'exclusive' | 'shared'

/** Another process has the file open in exclusive mode (or holds a lock on it beyond the busy timeout). */
export class SqliteInUseError extends Error {
  override readonly name = 'SqliteInUseError'
  constructor(readonly path: string, options?: { cause?: unknown }) {
    super(`${path} is in use by another process. One process owns a SQLite file by default; to share it, start every process on it with SQLITE_LOCKING=shared (or run one with --workers N), or use PostgreSQL`, options)
  }
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
  horizon: number
}

/** A row of the changes query: a person, or a tombstone (person_name NULL, change_date its deletion). */
interface ChangeRow {
  person_id: string
  person_name: string | null
  change_date: number
  version: number
}

const SCHEMA_VERSION = 2

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

function toPerson(row: PersonRow): StoredPerson {
  return { id: row.person_id, name: row.person_name, changedAt: row.change_date, version: row.version }
}

function toChange(row: ChangeRow): StoredChange {
  if (row.person_name === null) return { deleted: true, id: row.person_id, version: row.version }
  return { deleted: false, person: { id: row.person_id, name: row.person_name, changedAt: row.change_date, version: row.version } }
}

function toCollection(row: { revision: number; changed_at: number; horizon: number }): CollectionValidator {
  return { revision: row.revision, changedAt: row.changed_at, horizon: row.horizon }
}

/**
 * How often a store shared with other processes reads SQLite's data_version while someone
 * watches: the counter moves when another connection commits, and reading it costs a microsecond.
 */
const DATA_VERSION_POLL_MS = 50

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
 * How many person validators an exclusive store keeps in memory (those most recently read from
 * the file or written); beyond it the oldest is forgotten and read from the file again when asked for.
 */
const REMEMBERED_VALIDATORS = 100_000

/**
 * The embedded driver: one SQLite file in WAL mode. Every write checks the stored version, bumps
 * the store-wide revision and writes inside one IMMEDIATE transaction, so a second process on the
 * same file (node:cluster workers) is just as safe as one.
 *
 * Writes are committed in groups: the writes that arrive in one turn of the event loop run one
 * after another inside one transaction, and each is acknowledged only once that transaction has
 * committed. Each compare-and-set still sees every write before it, so the outcome is the same as
 * one transaction per write; the commit is paid once per group. Should one write throw (a bug, a
 * full disk), the group is rolled back and each of its writes committed on its own, so that only
 * the failing one fails.
 *
 * In exclusive locking mode no other process can write the file, so the validators this process
 * read or committed stay true until it writes again: they are kept in memory, and a validator
 * read (every 304) touches no SQL. They are updated only after a commit succeeded.
 */
export class SqlitePersonStore implements PersonStore {
  readonly driver = 'sqlite'
  readonly epoch: string
  readonly immediate: ImmediateReads
  private readonly db: Database.Database
  private readonly statements
  private queue: QueuedWrite[] = []
  private readonly commitGroup: (group: readonly QueuedWrite[]) => unknown[]
  private readonly commitOne: (body: () => unknown) => unknown
  /** Exclusive mode only: validators known to be current, by id (Map order: oldest first). */
  private readonly validators: Map<string, PersonValidator> | undefined
  /** Exclusive mode only: the current collection validator, once read. */
  private collection: CollectionValidator | undefined
  /** What the writes of the running group change in memory, applied once it has committed. */
  private committed: (() => void)[] = []
  private closed = false
  /** Whoever watches for commits (the changes feed's waiters). */
  private readonly watchers = new Set<() => void>()
  /** Shared mode, while anyone watches: the timer that reads data_version. */
  private dataVersionTimer: NodeJS.Timeout | undefined
  private readonly exclusive: boolean
  private readonly readChangesSnapshot: (since: number, limit: number, tombstones: number) => ChangesPage
  private readonly readPageSnapshot: (limit: number, after: string | undefined) => PersonPage

  private constructor(db: Database.Database, exclusive: boolean) {
    this.db = db
    this.exclusive = exclusive
    this.validators = exclusive ? new Map() : undefined
    this.statements = {
      meta: db.prepare<[], MetaRow>('SELECT epoch, revision, changed_at, horizon FROM meta WHERE id = 1'),
      bump: db.prepare<[number], { revision: number; changed_at: number; horizon: number }>(
        'UPDATE meta SET revision = revision + 1, changed_at = ? WHERE id = 1 RETURNING revision, changed_at, horizon'),
      bury: db.prepare<[string, number, number]>(
        'INSERT INTO tombstones (person_id, version, deleted_at) VALUES (?, ?, ?) ' +
        'ON CONFLICT (person_id) DO UPDATE SET version = excluded.version, deleted_at = excluded.deleted_at'),
      unbury: db.prepare<[string]>('DELETE FROM tombstones WHERE person_id = ?'),
      // ordered by version across both tables: SQLite merges the two index scans
      changes: db.prepare<[{ since: number; tombstones: number; limit: number }], ChangeRow>(
        `SELECT person_id, person_name, change_date, version FROM persons WHERE version > @since
         UNION ALL
         SELECT person_id, NULL, deleted_at, version FROM tombstones WHERE version > @tombstones
         ORDER BY version LIMIT @limit`),
      newestPurgeable: db.prepare<[number], { version: number | null }>(
        'SELECT max(version) AS version FROM tombstones WHERE deleted_at < ?'),
      purge: db.prepare<[number]>('DELETE FROM tombstones WHERE deleted_at < ?'),
      raiseHorizon: db.prepare<[number], { revision: number; changed_at: number; horizon: number }>(
        'UPDATE meta SET horizon = max(horizon, ?) WHERE id = 1 RETURNING revision, changed_at, horizon'),
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
    const { validator, meta } = this.statements
    // better-sqlite3 answers synchronously: these are the async reads without their promise
    this.immediate = {
      readValidator: (id) => {
        if (this.closed) throw closedError()
        const known = this.validators?.get(id)
        if (known !== undefined) return known
        const row = this.run(() => validator.get(id))
        if (row === undefined) return undefined
        const read = { version: row.version, changedAt: row.change_date }
        this.remember(id, read)
        return read
      },
      readCollectionValidator: () => {
        if (this.closed) throw closedError()
        if (this.collection !== undefined) return this.collection
        const read = toCollection(this.run(() => meta.get()!))
        if (this.validators !== undefined) this.collection = read
        return read
      },
    }
    // transaction functions are made once: better-sqlite3 compiles each one into SQL it prepares
    this.commitGroup = db.transaction((group: readonly QueuedWrite[]) => group.map((write) => write.body())).immediate
    this.commitOne = db.transaction((body: () => unknown) => body()).immediate
    // one read transaction: the changes and the revision that `next` names come from one snapshot
    this.readChangesSnapshot = db.transaction((since: number, limit: number, tombstones: number) => {
      const meta = this.statements.meta.get()!
      const rows = this.statements.changes.all({ since, tombstones, limit: limit + 1 })
      return {
        collection: toCollection(meta),
        changes: rows.slice(0, limit).map(toChange),
        hasMore: rows.length > limit,
      }
    }).deferred
    // one read transaction: the page and its validator come from the same snapshot
    this.readPageSnapshot = db.transaction((limit: number, after: string | undefined) => {
      const meta = this.statements.meta.get()!
      const rows = after === undefined
        ? this.statements.pageFirst.all(limit + 1)
        : this.statements.pageAfter.all(after, limit + 1)
      return {
        collection: toCollection(meta),
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
      // before the first read: in WAL mode the lock is then taken once and held, and the WAL index
      // lives in this process's memory instead of a shared-memory file
      const exclusive = (options.locking ?? 'exclusive') === 'exclusive'
      if (exclusive) db.pragma('locking_mode = EXCLUSIVE')
      db.pragma('journal_mode = WAL')
      db.pragma(`synchronous = ${options.synchronous ?? 'NORMAL'}`)
      db.pragma(`wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`)
      migrate(db)
      return new SqlitePersonStore(db, exclusive)
    } catch (error) {
      db.close()
      if (isUnavailable(error)) throw new SqliteInUseError(path, { cause: error })
      throw error
    }
  }

  async readValidator(id: string): Promise<PersonValidator | undefined> {
    return this.immediate.readValidator(id)
  }

  async read(id: string): Promise<StoredPerson | undefined> {
    const row = this.run(() => this.statements.read.get(id))
    return row === undefined ? undefined : toPerson(row)
  }

  async readCollectionValidator(): Promise<CollectionValidator> {
    return this.immediate.readCollectionValidator()
  }

  async readPage(request: PageRequest): Promise<PersonPage> {
    return this.run(() => this.readPageSnapshot(request.limit, request.after))
  }

  async readChanges(request: ChangesRequest): Promise<ChangesPage> {
    if (this.closed) throw closedError()
    return this.run(() => this.readChangesSnapshot(request.since, request.limit, request.tombstonesSince))
  }

  watch(listener: () => void): Unwatch {
    this.watchers.add(listener)
    // another process's commits show only in data_version; this process's own are announced
    // by commitQueued once they have committed
    if (!this.exclusive && this.dataVersionTimer === undefined && !this.closed) this.pollDataVersion()
    return () => {
      this.watchers.delete(listener)
      if (this.watchers.size === 0) this.stopPolling()
    }
  }

  async purgeTombstones(before: number): Promise<number> {
    return this.write(() => {
      const newest = this.statements.newestPurgeable.get(before)!.version
      if (newest === null) return this.statements.meta.get()!.horizon
      this.statements.purge.run(before)
      const meta = toCollection(this.statements.raiseHorizon.get(newest)!)
      this.onCommit(meta, () => {})
      return meta.horizon
    })
  }

  async create(id: string, name: string): Promise<WriteResult> {
    return this.write(() => {
      if (this.statements.validator.get(id) !== undefined) return { ok: false, reason: 'exists' }
      const meta = this.bump()
      const { revision, changedAt } = meta
      this.statements.insert.run(id, name, changedAt, revision)
      this.statements.unbury.run(id)
      this.onCommit(meta, () => this.remember(id, { version: revision, changedAt }))
      return { ok: true, person: { id, name, changedAt, version: revision } }
    })
  }

  async update(id: string, name: string, expectedVersion: number): Promise<WriteResult> {
    return this.write(() => {
      const current = this.statements.validator.get(id)
      if (current === undefined) return { ok: false, reason: 'not-found' }
      if (current.version !== expectedVersion) return { ok: false, reason: 'version-mismatch' }
      const meta = this.bump()
      const { revision, changedAt } = meta
      this.statements.update.run(name, changedAt, revision, id)
      this.onCommit(meta, () => this.remember(id, { version: revision, changedAt }))
      return { ok: true, person: { id, name, changedAt, version: revision } }
    })
  }

  async delete(id: string, expectedVersion: number): Promise<DeleteResult> {
    return this.write(() => {
      const current = this.statements.validator.get(id)
      if (current === undefined) return { ok: false, reason: 'not-found' }
      if (current.version !== expectedVersion) return { ok: false, reason: 'version-mismatch' }
      const meta = this.bump()
      this.statements.delete.run(id)
      this.statements.bury.run(id, meta.revision, meta.changedAt)
      this.onCommit(meta, () => this.validators?.delete(id))
      return { ok: true }
    })
  }

  async ping(): Promise<void> {
    this.run(() => this.statements.meta.get())
  }

  async close(): Promise<void> {
    // writes already queued are committed (and acknowledged) before the database closes
    if (this.queue.length > 0 && this.db.open) this.commitQueued()
    // what memory knows is not an answer once the database is gone
    this.closed = true
    this.stopPolling()
    this.watchers.clear()
    this.validators?.clear()
    this.collection = undefined
    if (this.db.open) this.db.close()
  }

  /**
   * Exclusive mode: what a write's statements changed, for memory to follow once the group has
   * committed (called last in the write, after every statement succeeded).
   */
  private onCommit(collection: CollectionValidator, change: () => void): void {
    if (this.validators === undefined) return
    this.committed.push(() => {
      change()
      this.collection = collection
    })
  }

  /** Tells every watcher that writes have committed (called after a commit, never inside one). */
  private announce(): void {
    for (const listener of this.watchers) listener()
  }

  private pollDataVersion(): void {
    let seen = this.readDataVersion()
    this.dataVersionTimer = setInterval(() => {
      const now = this.readDataVersion()
      if (now === seen) return
      seen = now
      this.announce()
    }, DATA_VERSION_POLL_MS)
    // watching for changes never keeps the process alive
    this.dataVersionTimer.unref()
  }

  private readDataVersion(): number | undefined {
    try {
      return this.db.pragma('data_version', { simple: true }) as number
    } catch {
      // busy or closed: the next tick tries again, and a changed value is still seen then
      return undefined
    }
  }

  private stopPolling(): void {
    clearInterval(this.dataVersionTimer)
    this.dataVersionTimer = undefined
  }

  private remember(id: string, validator: PersonValidator): void {
    const validators = this.validators
    if (validators === undefined) return
    validators.delete(id)
    validators.set(id, validator)
    if (validators.size > REMEMBERED_VALIDATORS) validators.delete(validators.keys().next().value!)
  }

  private bump(): CollectionValidator {
    return toCollection(this.statements.bump.get(Date.now())!)
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
    this.committed = []
    let values: unknown[]
    try {
      values = this.run(() => this.commitGroup(group))
    } catch (error) {
      // nothing in the group was committed
      this.committed = []
      if (group.length > 1 && !(error instanceof StoreUnavailableError)) {
        // one write threw: each commits on its own, and only the one that throws fails
        for (const write of group) this.commitAlone(write)
        return
      }
      // busy beyond the timeout, a closed database: none of them could commit
      for (const write of group) write.reject(error)
      return
    }
    this.applyCommitted()
    // acknowledged only now: every write of the group is in the WAL
    group.forEach((write, i) => write.resolve(values[i] as never))
    this.announce()
  }

  private commitAlone(write: QueuedWrite): void {
    this.committed = []
    let value: unknown
    try {
      value = this.run(() => this.commitOne(write.body))
    } catch (error) {
      this.committed = []
      write.reject(error)
      return
    }
    this.applyCommitted()
    write.resolve(value as never)
    this.announce()
  }

  private applyCommitted(): void {
    for (const change of this.committed) change()
    this.committed = []
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

function closedError(): StoreUnavailableError {
  return new StoreUnavailableError('the SQLite database is closed')
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
