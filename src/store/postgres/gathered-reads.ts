/**
 * Reads by key, gathered into few statements: on PostgreSQL a validator read costs a round trip
 * and a statement (parse, plan, execute, a backend woken) whatever it asks for, so the validator
 * reads of many concurrent requests are asked in one statement (`person_id = ANY($1)`).
 *
 * Why a gathered read is still each request's own, linearizable read: a key joins only a statement
 * that has not been sent yet, never one in flight, and its answer comes from that statement. The
 * statement's snapshot is therefore taken after the request asked and before it is answered:
 * inside the request's own interval, which is all linearizability asks of a read. A write
 * acknowledged to anyone before the request arrived committed before the statement started, so the
 * statement sees it. Gathering never answers from a statement that began earlier, and nothing is
 * cached between statements.
 *
 * When statements go: at most `maxInFlight` at once. Keys asked while a slot is free go in the next
 * check phase of the event loop (setImmediate), so the requests read from the sockets in one
 * loop iteration share a statement; keys asked while every slot is busy wait for the first slot
 * to come back, and then all go together. Under no load a read waits for nothing but the
 * iteration it arrived in; under load, the statements grow instead of their number.
 *
 * Timing is per statement (`observe`): a statement is the store's work, and what a read waits
 * before its statement goes is the gathering's. Timing each read instead, with a promise of its
 * own around it, cost 2 to 4 % of PostgreSQL's 304s a second (docs/performance.md).
 */

/** Told of one finished statement: whether it failed, and how long it took in seconds. */
export type StatementObserver = (outcome: 'ok' | 'error', seconds: number) => void

/** Runs one statement for `keys` (each once) and returns what it found, by key. */
export type ReadMany<K, V> = (keys: readonly K[]) => Promise<ReadonlyMap<K, V>>

interface Waiter<V> {
  resolve(value: V | undefined): void
  reject(error: unknown): void
}

export interface GatheredReadsOptions {
  /** The most statements in flight at once (on PostgreSQL, pipelined on the validator connection). */
  readonly maxInFlight: number
  /** The most keys in one statement; more wait for the next. */
  readonly maxKeys: number
}

/** Gathers `read(key)` calls into `readMany` statements. */
export class GatheredReads<K, V> {
  // the keys of the next statement, each with everyone waiting for it (Map keeps arrival order)
  private waiting = new Map<K, Waiter<V>[]>()
  private inFlight = 0
  private scheduled = false
  private readonly observers = new Set<StatementObserver>()

  constructor(
    private readonly readMany: ReadMany<K, V>,
    private readonly options: GatheredReadsOptions,
  ) {}

  /** The value for `key` from a statement sent after this call, or undefined when it found none. */
  read(key: K): Promise<V | undefined> {
    return new Promise<V | undefined>((resolve, reject) => {
      const waiters = this.waiting.get(key)
      if (waiters === undefined) this.waiting.set(key, [{ resolve, reject }])
      else waiters.push({ resolve, reject })
      this.schedule()
    })
  }

  /** Tells `observer` (which must not throw) of every statement that finishes from now on, until the returned function is called. */
  observe(observer: StatementObserver): () => void {
    // a function of its own, so that the same observer given twice is told twice and removed once each
    const entry: StatementObserver = (outcome, seconds) => observer(outcome, seconds)
    this.observers.add(entry)
    return () => {
      this.observers.delete(entry)
    }
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.options.maxInFlight || this.waiting.size === 0) return
    this.scheduled = true
    setImmediate(() => {
      this.scheduled = false
      this.send()
    })
  }

  private send(): void {
    if (this.inFlight >= this.options.maxInFlight || this.waiting.size === 0) return
    let batch: Map<K, Waiter<V>[]>
    if (this.waiting.size <= this.options.maxKeys) {
      batch = this.waiting
      this.waiting = new Map()
    } else {
      batch = new Map()
      for (const [key, waiters] of this.waiting) {
        if (batch.size === this.options.maxKeys) break
        batch.set(key, waiters)
        this.waiting.delete(key)
      }
    }
    this.inFlight++
    // no clock read when nobody times the statements
    const started = this.observers.size === 0 ? 0 : performance.now()
    this.readMany([...batch.keys()]).then(
      (found) => {
        this.inFlight--
        for (const [key, waiters] of batch) {
          const value = found.get(key)
          for (const waiter of waiters) waiter.resolve(value)
        }
        this.schedule()
        this.told('ok', started)
      },
      (error: unknown) => {
        this.inFlight--
        for (const waiters of batch.values()) for (const waiter of waiters) waiter.reject(error)
        this.schedule()
        this.told('error', started)
      },
    )
    // more than one statement's worth waiting, and a slot free: the rest need not wait a turn
    this.schedule()
  }

  // last, after the waiters have their answers, so that no observer delays them
  private told(outcome: 'ok' | 'error', started: number): void {
    // started 0: nobody observed when the statement went
    if (started === 0 || this.observers.size === 0) return
    const seconds = (performance.now() - started) / 1000
    for (const observer of this.observers) observer(outcome, seconds)
  }
}
