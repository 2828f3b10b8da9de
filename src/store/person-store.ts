/**
 * The storage interface every driver implements. Writes are compare-and-set on the stored
 * version, so the HTTP layer's precondition check and the write form one atomic step.
 */

/** A person as stored. `version` is the store-wide revision of the write that produced it. */
export interface StoredPerson {
  readonly id: string
  readonly name: string
  /** Milliseconds since the epoch, set by the store on every write. */
  readonly changedAt: number
  readonly version: number
}

/** The validator of one person: what a 304 or 412 is decided from, without the body. */
export interface PersonValidator {
  readonly version: number
  readonly changedAt: number
}

/**
 * The validator of the whole collection: the store-wide revision, bumped by every create,
 * update and delete, and the time of that write.
 */
export interface CollectionValidator {
  readonly revision: number
  readonly changedAt: number
  /**
   * The oldest revision the changes feed can still answer from: tombstones of deletes at or
   * below it may have been purged (or, for a database migrated from schema 1, never kept).
   */
  readonly horizon: number
}

/** One page of the collection, read in the same snapshot as its validator. */
export interface PersonPage {
  readonly collection: CollectionValidator
  readonly persons: readonly StoredPerson[]
  /** True when persons after the last one on this page exist. */
  readonly hasMore: boolean
}

export interface PageRequest {
  readonly limit: number
  /** Only ids after this one, in code-point order. */
  readonly after?: string | undefined
}

/** One entry of the changes feed: a person's latest state, or the tombstone of its delete. */
export type StoredChange =
  | { readonly deleted: false; readonly person: StoredPerson }
  | { readonly deleted: true; readonly id: string; readonly version: number }

export interface ChangesRequest {
  /** Persons written after this revision. */
  readonly since: number
  readonly limit: number
  /**
   * Tombstones of deletes after this revision (at least `since`; Number.MAX_SAFE_INTEGER for
   * none: a copy that starts from nothing has nothing to delete). See src/http/changes-position.ts.
   */
  readonly tombstonesSince: number
}

/** What changed after a revision, read in one snapshot with the collection validator. */
export interface ChangesPage {
  readonly collection: CollectionValidator
  /** Ordered by version, ascending: commit order. Each id at most once. */
  readonly changes: readonly StoredChange[]
  /** True when `limit` cut the list short. */
  readonly hasMore: boolean
}

/** Stops a watch. */
export type Unwatch = () => void

/**
 * The two validator reads, answered synchronously: what a driver offers when it can answer them
 * without waiting on I/O (SQLite, whose file this process reads in place). The HTTP layer answers
 * conditional GETs from them before any routing. They throw what the async reads would reject with.
 */
export interface ImmediateReads {
  readValidator(id: string): PersonValidator | undefined
  readCollectionValidator(): CollectionValidator
}

/** Expected outcomes of a write are values, not exceptions. */
export type WriteResult =
  | { readonly ok: true; readonly person: StoredPerson }
  | { readonly ok: false; readonly reason: 'not-found' | 'exists' | 'version-mismatch' }

export type DeleteResult = { readonly ok: true } | { readonly ok: false; readonly reason: 'not-found' | 'version-mismatch' }

/** Told of one finished statement of gathered reads: which reads it answered, whether it failed, how long it took (s). */
export type GatheredReadObserver = (operation: 'readValidator' | 'readCollectionValidator', outcome: 'ok' | 'error', seconds: number) => void

/**
 * A person store. Every write bumps one store-wide revision inside the same transaction, and that
 * revision becomes the written person's version: versions are never reused, not after delete and
 * re-create. `epoch` is random per database, so a wiped and re-initialised database never
 * repeats an old (epoch, version) pair.
 */
export interface PersonStore {
  /** Random per database, fixed for its lifetime; part of every ETag. */
  readonly epoch: string
  readonly driver: 'sqlite' | 'postgres'
  /** The validator reads without a promise, for a driver that can answer them at once; else absent. */
  readonly immediate?: ImmediateReads | undefined

  /**
   * Present on a driver that answers the awaited validator reads of concurrent requests from
   * shared statements (PostgreSQL: gathered-reads.ts). Tells `observer` of each such statement
   * once, as it finishes, until the returned function is called. A caller that times store calls
   * times these reads through this, per statement, instead of per call (instrumented-person-store.ts
   * says why).
   */
  observeGatheredReads?(observer: GatheredReadObserver): Unwatch

  /** The validator only (for 304/412 decisions), or undefined when absent. */
  readValidator(id: string): Promise<PersonValidator | undefined>
  read(id: string): Promise<StoredPerson | undefined>
  readCollectionValidator(): Promise<CollectionValidator>
  readPage(request: PageRequest): Promise<PersonPage>

  /**
   * The changes after `request.since` in commit order (see docs/changes-feed.md). The caller checks
   * `since` against the returned collection's revision and horizon.
   */
  readChanges(request: ChangesRequest): Promise<ChangesPage>
  /**
   * Calls `listener` (with no arguments) after writes have committed, in this process or in any
   * other on the same database, and now and then besides: a hint to re-read the revision, never a
   * promise that it moved. Returns the function that stops it.
   */
  watch(listener: () => void): Unwatch
  /**
   * Removes the tombstones of deletes committed before `before` (ms since the epoch) and moves the
   * horizon to the newest revision removed. Resolves with the horizon.
   */
  purgeTombstones(before: number): Promise<number>

  /** Inserts a new person; `exists` when the id is taken. */
  create(id: string, name: string): Promise<WriteResult>
  /**
   * Sets the name if the stored version is still `expectedVersion` (compare-and-set);
   * `version-mismatch` when another write came first, `not-found` when it is gone.
   */
  update(id: string, name: string, expectedVersion: number): Promise<WriteResult>
  /** Deletes the person if the stored version is still `expectedVersion`. */
  delete(id: string, expectedVersion: number): Promise<DeleteResult>

  /** Resolves when the database answers a trivial query; rejects (StoreUnavailableError) otherwise. */
  ping(): Promise<void>

  close(): Promise<void>
}

/**
 * Thrown by a driver when the database cannot be reached or is busy beyond its timeout: a
 * passing condition the service answers with 503 and `Retry-After`, not a bug.
 */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError'
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
  }
}
