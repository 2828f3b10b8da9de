/**
 * Group commit: the writes that arrive in one turn of the event loop run one after another inside
 * one IMMEDIATE transaction, and each is acknowledged only once that transaction has committed.
 * Each compare-and-set still sees every write before it, so the outcome is the same as one
 * transaction per write; the commit (and, with synchronous = FULL, its fsync) is paid once per
 * group. Should one write throw (a bug, a full disk), the group is rolled back and each of its
 * writes committed on its own, so that only the failing one fails.
 */
import type Database from 'better-sqlite3'
import { StoreUnavailableError } from '../person-store.js'
import { runOrUnavailable } from './sqlite-unavailable.js'

/**
 * What a write's body returns: the result to acknowledge it with, and what it changed that
 * memory must learn, but only once (and if) the transaction it ran in has committed.
 */
export interface Written<R, C> {
  readonly result: R
  readonly committed?: C | undefined
}

/** What the committer does once a transaction has committed, with what its writes returned. */
export interface AfterCommit<C> {
  /** Applies what the committed writes changed, before any of them is acknowledged. */
  apply(committed: readonly C[]): void
  /** Tells whoever watches that writes have committed, after they are acknowledged. */
  announce(): void
}

interface QueuedWrite<C> {
  readonly body: () => Written<unknown, C>
  readonly resolve: (result: never) => void
  readonly reject: (error: unknown) => void
}

/**
 * The write queue of one connection and its group commits. A body runs inside the transaction:
 * it must only run statements and return, leaving every change to memory to `committed`.
 *
 * @example
 * const result = await commits.write(() => {
 *   statements.insert.run(id, name, now, revision)
 *   return { result: { ok: true }, committed: { id, version: revision } }
 * })
 */
export class SqliteGroupCommit<C> {
  private queue: QueuedWrite<C>[] = []
  private readonly commitGroup: (group: readonly QueuedWrite<C>[]) => Written<unknown, C>[]
  private readonly commitOne: (body: () => Written<unknown, C>) => Written<unknown, C>

  constructor(
    private readonly db: Database.Database,
    private readonly after: AfterCommit<C>,
  ) {
    // transaction functions are made once: better-sqlite3 compiles each one into SQL it prepares.
    // IMMEDIATE takes the write lock up front, so each version check and its write see no other writer
    this.commitGroup = db.transaction((group: readonly QueuedWrite<C>[]) => group.map((write) => write.body())).immediate
    this.commitOne = db.transaction((body: () => Written<unknown, C>) => body()).immediate
  }

  /** Queues `body` for the next group commit; resolves with its result once that has committed. */
  write<R>(body: () => Written<R, C>): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ body, resolve: resolve as (result: never) => void, reject })
      // the group is what arrived in this turn of the event loop; it commits after the I/O phase
      if (this.queue.length === 1) setImmediate(() => this.commitQueued())
    })
  }

  /** Commits (and acknowledges) the writes queued so far now, as before the database closes. */
  flush(): void {
    if (this.queue.length > 0 && this.db.open) this.commitQueued()
  }

  private commitQueued(): void {
    const group = this.queue
    this.queue = []
    if (group.length === 0) return
    let written: Written<unknown, C>[]
    try {
      written = runOrUnavailable(() => this.commitGroup(group))
    } catch (error) {
      // nothing in the group was committed, and nothing of what its bodies returned is applied
      if (group.length > 1 && !(error instanceof StoreUnavailableError)) {
        // one write threw: each commits on its own, and only the one that throws fails
        for (const write of group) this.commitAlone(write)
        return
      }
      // busy beyond the timeout, a closed database: none of them could commit
      for (const write of group) write.reject(error)
      return
    }
    this.acknowledge(group, written)
  }

  private commitAlone(write: QueuedWrite<C>): void {
    let written: Written<unknown, C>
    try {
      written = runOrUnavailable(() => this.commitOne(write.body))
    } catch (error) {
      write.reject(error)
      return
    }
    this.acknowledge([write], [written])
  }

  private acknowledge(writes: readonly QueuedWrite<C>[], written: readonly Written<unknown, C>[]): void {
    this.after.apply(written.flatMap((w) => (w.committed === undefined ? [] : [w.committed])))
    // acknowledged only now: every write of the group is in the WAL
    for (const [i, write] of writes.entries()) write.resolve(written[i]!.result as never)
    this.after.announce()
  }
}
