/**
 * Holds the changes feed's waiting requests (long polls and event streams) of one process, and
 * wakes them when the store-wide revision moves past where they stand.
 *
 * Why no wake-up is lost (docs/changes-feed.md): a waiter is registered before the hub reads the
 * revision, and every read starts after the notification that asked for it: a notification that
 * arrives while a read is under way marks the hub dirty, and one more read follows. A commit that
 * finished before a waiter was registered is seen by the read its registration starts; a commit
 * after it is notified by the store (in this process at once, from other processes by LISTEN or
 * data_version, and by the store's periodic re-check). One read serves every waiter.
 */
import type { CollectionValidator, PersonStore, Unwatch } from '../store/person-store.js'

interface Waiter {
  /** Woken when the revision is above this one. */
  readonly revision: number
  settle(collection: CollectionValidator | undefined): void
}

/** The waiting requests of one app, woken by the store's commits. */
export class ChangeHub {
  private readonly waiters = new Set<Waiter>()
  private reading = false
  private dirty = false
  private closedFlag = false
  private readonly unwatch: Unwatch

  constructor(private readonly store: PersonStore) {
    this.unwatch = store.watch(() => this.check())
  }

  /** True once the app is closing: no one waits any more. */
  get closed(): boolean {
    return this.closedFlag
  }

  /**
   * Resolves with the collection validator once its revision is above `revision`; with undefined
   * after `timeoutMs`, when `signal` aborts, or when the hub closes.
   */
  waitBeyond(revision: number, timeoutMs: number, signal?: AbortSignal): Promise<CollectionValidator | undefined> {
    if (this.closedFlag || signal?.aborted === true) return Promise.resolve(undefined)
    return new Promise((resolve) => {
      const onAbort = (): void => waiter.settle(undefined)
      const timer = setTimeout(onAbort, timeoutMs)
      const waiter: Waiter = {
        revision,
        settle: (collection) => {
          if (!this.waiters.delete(waiter)) return
          clearTimeout(timer)
          signal?.removeEventListener('abort', onAbort)
          resolve(collection)
        },
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.waiters.add(waiter)
      // registered first, then read: a commit before this line is seen by this read
      this.check()
    })
  }

  /** Wakes every waiter with nothing (they answer with what there is) and stops watching. */
  close(): void {
    this.closedFlag = true
    this.unwatch()
    for (const waiter of [...this.waiters]) waiter.settle(undefined)
  }

  /** Reads the revision for the waiters, now or right after the read under way. */
  private check(): void {
    if (this.waiters.size === 0) return
    if (this.reading) {
      this.dirty = true
      return
    }
    this.reading = true
    void this.read()
  }

  private async read(): Promise<void> {
    try {
      do {
        this.dirty = false
        let collection: CollectionValidator
        try {
          collection = await this.store.readCollectionValidator()
        } catch {
          // the store is unavailable: the store's next notification or re-check reads again, and
          // each waiter's timeout answers it meanwhile
          return
        }
        for (const waiter of [...this.waiters]) {
          if (collection.revision > waiter.revision) waiter.settle(collection)
        }
      } while (this.dirty && this.waiters.size > 0)
    } finally {
      this.reading = false
    }
  }
}
