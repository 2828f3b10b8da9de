import type Database from 'better-sqlite3'
import type {
  ChangesPage,
  ChangesRequest,
  CollectionValidator,
  DeleteResult,
  ImmediateReads,
  PageRequest,
  PersonPage,
  PersonStore,
  PersonValidator,
  StoredPerson,
  Unwatch,
  WriteResult,
} from '../person-store.js'
import { isExclusive, openSqliteDatabase, type SqliteOptions } from './open-sqlite-database.js'
import { SqliteDataVersionWatcher } from './sqlite-data-version-watcher.js'
import { SqliteGroupCommit, type Written } from './sqlite-group-commit.js'
import { prepareStatements, toCollection, type SqliteStatements } from './sqlite-statements.js'
import { closedError, runOrUnavailable } from './sqlite-unavailable.js'
import { SqliteValidatorMemory, type ValidatorChange } from './sqlite-validator-memory.js'

// the one module other code imports the driver from
export { SqliteInUseError, type SqliteLocking, type SqliteOptions } from './open-sqlite-database.js'

/**
 * The embedded driver: one SQLite file in WAL mode. Every write checks the stored version, bumps
 * the store-wide revision and writes inside one IMMEDIATE transaction, so a second process on the
 * same file (node:cluster workers) is just as safe as one. Writes are committed in groups and
 * acknowledged only once their group has committed (see sqlite-group-commit.ts).
 *
 * In exclusive locking mode no other process can write the file, so the validators this process
 * read or committed are kept in memory (see sqlite-validator-memory.ts), updated only after a
 * commit succeeded. In shared mode every read goes to the file, and other processes' commits are
 * noticed through data_version (see sqlite-data-version-watcher.ts).
 */
export class SqlitePersonStore implements PersonStore {
  readonly driver = 'sqlite'
  readonly epoch: string
  readonly immediate: ImmediateReads
  private readonly statements: SqliteStatements
  private readonly commits: SqliteGroupCommit<ValidatorChange>
  /** Exclusive mode only. */
  private readonly memory: SqliteValidatorMemory | undefined
  /** Shared mode only: runs while anyone watches. */
  private readonly dataVersion: SqliteDataVersionWatcher | undefined
  /** Whoever watches for commits (the changes feed's waiters). */
  private readonly watchers = new Set<() => void>()
  private closed = false

  private constructor(
    private readonly db: Database.Database,
    exclusive: boolean,
  ) {
    this.statements = prepareStatements(db)
    this.epoch = this.statements.meta.get()!.epoch
    this.memory = exclusive ? new SqliteValidatorMemory() : undefined
    // another process's commits show only in data_version; this process's own are announced
    // by the group commit once they have committed
    this.dataVersion = exclusive ? undefined : new SqliteDataVersionWatcher(db, () => this.announce())
    this.commits = new SqliteGroupCommit(db, {
      apply: (changes) => this.memory?.apply(changes),
      announce: () => this.announce(),
    })
    // better-sqlite3 answers synchronously: these are the async reads without their promise
    this.immediate = {
      readValidator: (id) => this.readValidatorNow(id),
      readCollectionValidator: () => this.readCollectionValidatorNow(),
    }
  }

  /** Opens (creating or migrating as needed) the database file at `path`. */
  static open(path: string, options: SqliteOptions = {}): SqlitePersonStore {
    return new SqlitePersonStore(openSqliteDatabase(path, options), isExclusive(options))
  }

  async readValidator(id: string): Promise<PersonValidator | undefined> {
    return this.readValidatorNow(id)
  }

  async read(id: string): Promise<StoredPerson | undefined> {
    return runOrUnavailable(() => this.statements.read(id))
  }

  async readCollectionValidator(): Promise<CollectionValidator> {
    return this.readCollectionValidatorNow()
  }

  async readPage(request: PageRequest): Promise<PersonPage> {
    return runOrUnavailable(() => this.statements.readPage(request.limit, request.after))
  }

  async readChanges(request: ChangesRequest): Promise<ChangesPage> {
    if (this.closed) throw closedError()
    return runOrUnavailable(() => this.statements.readChanges(request.since, request.limit, request.tombstonesSince))
  }

  watch(listener: () => void): Unwatch {
    this.watchers.add(listener)
    if (!this.closed) this.dataVersion?.start()
    return () => {
      this.watchers.delete(listener)
      if (this.watchers.size === 0) this.dataVersion?.stop()
    }
  }

  async purgeTombstones(before: number): Promise<number> {
    return this.commits.write(() => {
      const newest = this.statements.newestPurgeable.get(before)!.version
      if (newest === null) return { result: this.statements.meta.get()!.horizon }
      this.statements.purge.run(before)
      const collection = toCollection(this.statements.raiseHorizon.get(newest)!)
      return { result: collection.horizon, committed: { collection } }
    })
  }

  async create(id: string, name: string): Promise<WriteResult> {
    return this.commits.write<WriteResult>(() => {
      if (this.statements.validator.get(id) !== undefined) return { result: { ok: false, reason: 'exists' } }
      const collection = this.bump()
      this.statements.insert.run(id, name, collection.changedAt, collection.revision)
      this.statements.unbury.run(id)
      return written(id, name, collection)
    })
  }

  async update(id: string, name: string, expectedVersion: number): Promise<WriteResult> {
    return this.commits.write<WriteResult>(() => {
      const current = this.statements.validator.get(id)
      if (current === undefined) return { result: { ok: false, reason: 'not-found' } }
      if (current.version !== expectedVersion) return { result: { ok: false, reason: 'version-mismatch' } }
      const collection = this.bump()
      this.statements.update.run(name, collection.changedAt, collection.revision, id)
      return written(id, name, collection)
    })
  }

  async delete(id: string, expectedVersion: number): Promise<DeleteResult> {
    return this.commits.write<DeleteResult>(() => {
      const current = this.statements.validator.get(id)
      if (current === undefined) return { result: { ok: false, reason: 'not-found' } }
      if (current.version !== expectedVersion) return { result: { ok: false, reason: 'version-mismatch' } }
      const collection = this.bump()
      this.statements.delete.run(id)
      this.statements.bury.run(id, collection.revision, collection.changedAt)
      return { result: { ok: true }, committed: { collection, person: { id, validator: undefined } } }
    })
  }

  async ping(): Promise<void> {
    runOrUnavailable(() => this.statements.meta.get())
  }

  async close(): Promise<void> {
    // writes already queued are committed (and acknowledged) before the database closes
    this.commits.flush()
    // what memory knows is not an answer once the database is gone
    this.closed = true
    this.dataVersion?.stop()
    this.watchers.clear()
    this.memory?.clear()
    if (this.db.open) this.db.close()
  }

  private readValidatorNow(id: string): PersonValidator | undefined {
    if (this.closed) throw closedError()
    const known = this.memory?.person(id)
    if (known !== undefined) return known
    const row = runOrUnavailable(() => this.statements.validator.get(id))
    if (row === undefined) return undefined
    const read = { version: row.version, changedAt: row.change_date }
    this.memory?.rememberPerson(id, read)
    return read
  }

  private readCollectionValidatorNow(): CollectionValidator {
    if (this.closed) throw closedError()
    const known = this.memory?.collection()
    if (known !== undefined) return known
    const read = toCollection(runOrUnavailable(() => this.statements.meta.get()!))
    this.memory?.rememberCollection(read)
    return read
  }

  /** Tells every watcher that writes have committed (called after a commit, never inside one). */
  private announce(): void {
    for (const listener of this.watchers) listener()
  }

  private bump(): CollectionValidator {
    return toCollection(this.statements.bump.get(Date.now())!)
  }
}

/** A create or update's result, and what the validator memory learns once it has committed. */
function written(id: string, name: string, collection: CollectionValidator): Written<WriteResult, ValidatorChange> {
  const { revision: version, changedAt } = collection
  return { result: { ok: true, person: { id, name, changedAt, version } }, committed: { collection, person: { id, validator: { version, changedAt } } } }
}
