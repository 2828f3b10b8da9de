/**
 * A PersonStore decorator that times every call of the store it wraps and reports it to an
 * observer (the HTTP layer feeds a Prometheus histogram with it). It changes no result.
 *
 * Two kinds of reads are not timed call by call. The immediate validator reads (SQLite) go through
 * untimed: two clock reads would cost as much as the read itself. The gathered validator reads
 * (PostgreSQL, `observeGatheredReads`) are timed by the store once per statement, and each
 * statement is reported as one call of its operation: a statement is the database's work, however
 * many reads it answers, and timing each read with a promise of its own around it cost 2 to 4 %
 * of PostgreSQL's 304s a second (docs/performance.md).
 */
import type {
  ChangesPage,
  ChangesRequest,
  CollectionValidator,
  DeleteResult,
  Unwatch,
  PageRequest,
  PersonPage,
  PersonStore,
  PersonValidator,
  StoredPerson,
  WriteResult,
} from './person-store.js'

/** The store operations, as they are named in metrics. */
export type StoreOperation =
  | 'readValidator'
  | 'read'
  | 'readCollectionValidator'
  | 'readPage'
  | 'readChanges'
  | 'purgeTombstones'
  | 'create'
  | 'update'
  | 'delete'
  | 'ping'

/** Receives one finished call: which, whether it threw, and how long it took in seconds. */
export type StoreObserver = (operation: StoreOperation, outcome: 'ok' | 'error', seconds: number) => void

/**
 * Wraps `inner`, timing each call with a monotonic clock.
 *
 * @example
 * const store = new InstrumentedPersonStore(await openStore(url), (op, outcome, s) => histogram.observe(s))
 */
export class InstrumentedPersonStore implements PersonStore {
  readonly epoch: string
  readonly driver: PersonStore['driver']
  /** Passed through untimed: two clock reads would cost as much as the read itself. */
  readonly immediate: PersonStore['immediate']
  // set when the store times its gathered validator reads itself: stops that
  private readonly unobserveGathered: Unwatch | undefined

  constructor(
    private readonly inner: PersonStore,
    private readonly observe: StoreObserver,
  ) {
    this.epoch = inner.epoch
    this.driver = inner.driver
    this.immediate = inner.immediate
    this.unobserveGathered = inner.observeGatheredReads?.(observe)
  }

  /** Stops reporting the inner store's gathered reads (the inner store lives on: its owner closes it). */
  detach(): void {
    this.unobserveGathered?.()
  }

  readValidator(id: string): Promise<PersonValidator | undefined> {
    if (this.unobserveGathered !== undefined) return this.inner.readValidator(id)
    return this.timed('readValidator', () => this.inner.readValidator(id))
  }

  read(id: string): Promise<StoredPerson | undefined> {
    return this.timed('read', () => this.inner.read(id))
  }

  readCollectionValidator(): Promise<CollectionValidator> {
    if (this.unobserveGathered !== undefined) return this.inner.readCollectionValidator()
    return this.timed('readCollectionValidator', () => this.inner.readCollectionValidator())
  }

  readPage(request: PageRequest): Promise<PersonPage> {
    return this.timed('readPage', () => this.inner.readPage(request))
  }

  readChanges(request: ChangesRequest): Promise<ChangesPage> {
    return this.timed('readChanges', () => this.inner.readChanges(request))
  }

  /** Passed through: a watch is not a call that finishes. */
  watch(listener: () => void): Unwatch {
    return this.inner.watch(listener)
  }

  purgeTombstones(before: number): Promise<number> {
    return this.timed('purgeTombstones', () => this.inner.purgeTombstones(before))
  }

  create(id: string, name: string): Promise<WriteResult> {
    return this.timed('create', () => this.inner.create(id, name))
  }

  update(id: string, name: string, expectedVersion: number): Promise<WriteResult> {
    return this.timed('update', () => this.inner.update(id, name, expectedVersion))
  }

  delete(id: string, expectedVersion: number): Promise<DeleteResult> {
    return this.timed('delete', () => this.inner.delete(id, expectedVersion))
  }

  ping(): Promise<void> {
    return this.timed('ping', () => this.inner.ping())
  }

  close(): Promise<void> {
    return this.inner.close()
  }

  private async timed<T>(operation: StoreOperation, call: () => Promise<T>): Promise<T> {
    // started before the call: SQLite does its work synchronously inside it
    const start = performance.now()
    try {
      const value = await call()
      this.observe(operation, 'ok', (performance.now() - start) / 1000)
      return value
    } catch (error) {
      this.observe(operation, 'error', (performance.now() - start) / 1000)
      throw error
    }
  }
}
