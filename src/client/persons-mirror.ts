/**
 * A copy of the whole collection kept current by the changes feed: a `Map` of every person by id,
 * each with its ETag, so a list view or a cache reads locally and writes with `If-Match` at once.
 * Platform-neutral (no Node modules, no `EventTarget` subclassing), so it runs in browsers too.
 */
import type { ChangesBatch, ChangesOptions, FeedPerson } from './follow-changes.js'

/** Where a mirror reads the feed from: anything with the client's `changes()`. */
export interface ChangesSource {
  changes(options: ChangesOptions): AsyncIterable<ChangesBatch>
}

/** How a mirror follows the feed: as `changes()`, always from `0`. */
export type MirrorOptions = Omit<ChangesOptions, 'since'>

/** Told about each batch after it has been applied to the mirror's map. */
export type MirrorListener = (batch: ChangesBatch) => void

/**
 * Every person of the service, by id, kept current by following the feed from `0`. Once `ready`
 * has resolved (the feed said `complete: true` the first time), `persons` holds what a read of
 * every collection page would, each person with the ETag a `GET` of it returns; it then follows
 * every write in commit order, a batch at a time. When the service forgets the mirror's token
 * (`410 Gone`: a replaced or restored database) it clears itself and copies the collection again.
 *
 * @example
 * const mirror = client.mirror()
 * mirror.onChange((batch) => render([...mirror.persons.values()]))
 * await mirror.ready
 * await client.replace('1', { person_name: 'Wim' }, { etag: mirror.persons.get('1')?.etag })
 * await mirror.close()
 */
export class PersonsMirror {
  /**
   * Resolves once the mirror has caught up with the service the first time; rejects when it stops
   * before that (closed, or a failure retrying cannot mend).
   */
  readonly ready: Promise<void>
  /** Resolves when the mirror stops after `close()` (or its signal); rejects with the failure that stopped it otherwise. */
  readonly stopped: Promise<void>

  readonly #persons = new Map<string, FeedPerson>()
  readonly #listeners = new Set<MirrorListener>()
  readonly #controller = new AbortController()
  #next: string | undefined
  #caughtUp = false

  constructor(source: ChangesSource, options: MirrorOptions = {}) {
    let resolveReady!: () => void
    let rejectReady!: (error: unknown) => void
    this.ready = new Promise((resolve, reject) => {
      resolveReady = resolve
      rejectReady = reject
    })
    const userSignal = options.signal
    if (userSignal !== undefined) {
      if (userSignal.aborted) this.#controller.abort()
      else userSignal.addEventListener('abort', () => this.#controller.abort(), { once: true })
    }
    this.stopped = this.#follow(source, options, resolveReady).then(
      () => rejectReady(new Error('the mirror was closed before it caught up with the service')),
      (error: unknown) => {
        rejectReady(error)
        throw error
      },
    )
    // both are there to be awaited when wanted: one nobody awaits must not be an unhandled rejection
    this.ready.catch(() => {})
    this.stopped.catch(() => {})
  }

  /** Every person, by id, each with its ETag. Read-only: the feed alone changes it. */
  get persons(): ReadonlyMap<string, FeedPerson> {
    return this.#persons
  }

  /**
   * True while the map is as current as the last feed answer: from the first `complete` batch on,
   * and again after a reset once the copy has been rebuilt.
   */
  get caughtUp(): boolean {
    return this.#caughtUp
  }

  /** The feed token the map is current to: the `next` of the last batch applied. */
  get next(): string | undefined {
    return this.#next
  }

  /**
   * Calls `listener` after each batch has been applied (`batch.reset`: the map was cleared first).
   * A listener that throws does not stop the mirror; its error is rethrown on its own, as
   * `EventTarget` does. Returns the function that removes the listener.
   */
  onChange(listener: MirrorListener): () => void {
    this.#listeners.add(listener)
    return () => {
      this.#listeners.delete(listener)
    }
  }

  /** Stops following the feed (a long poll in flight is aborted); resolves once it has stopped. */
  async close(): Promise<void> {
    this.#controller.abort()
    await this.stopped.catch(() => {})
  }

  async #follow(source: ChangesSource, options: MirrorOptions, resolveReady: () => void): Promise<void> {
    for await (const batch of source.changes({ ...options, since: '0', signal: this.#controller.signal })) {
      if (batch.reset) {
        this.#persons.clear()
        this.#caughtUp = false
      }
      for (const change of batch.changes) {
        if (change.deleted === true) this.#persons.delete(change.person_id)
        else this.#persons.set(change.person_id, change)
      }
      this.#next = batch.next
      if (batch.complete && !this.#caughtUp) {
        this.#caughtUp = true
        resolveReady()
      }
      for (const listener of [...this.#listeners]) {
        try {
          listener(batch)
        } catch (error) {
          setTimeout(() => {
            throw error
          }, 0)
        }
      }
    }
  }
}
