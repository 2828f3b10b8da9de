/**
 * Tells watchers in this process when any process has committed a write to the database: one
 * dedicated connection LISTENs on the channel every write function notifies (on commit), and a
 * timer calls the watchers every `recheckMs` as well. A notification can be lost (the connection
 * drops, the server restarts); the re-check cannot, so a lost notification delays a wake-up by at
 * most `recheckMs`, and never loses it. After (re)connecting, the watchers are called once, for
 * whatever committed while no one listened.
 */
import pg from 'pg'
import type { Unwatch } from '../person-store.js'
import { CHANGES_CHANNEL } from './postgres-schema.js'

/** The application_name of the LISTEN connection, as pg_stat_activity shows it. */
export const LISTEN_APPLICATION_NAME = 'ifmatch-listen'

/** How long to wait before connecting again after the LISTEN connection failed, in ms. */
const RECONNECT_DELAY_MS = 500

export interface ChangeListenerOptions {
  readonly url: string
  /** How often watchers are called even without a notification, in ms (default 1000). */
  readonly recheckMs?: number
  readonly connectionTimeoutMs?: number
}

/** The LISTEN connection and the re-check timer, running while anyone watches. */
export class PostgresChangeListener {
  private readonly watchers = new Set<() => void>()
  private client: pg.Client | undefined
  private recheck: NodeJS.Timeout | undefined
  private reconnect: NodeJS.Timeout | undefined
  private stopped = false

  constructor(private readonly options: ChangeListenerOptions) {}

  /** Calls `listener` after commits in any process, and every `recheckMs`. */
  watch(listener: () => void): Unwatch {
    this.watchers.add(listener)
    if (this.watchers.size === 1 && !this.stopped) this.start()
    return () => {
      this.watchers.delete(listener)
      if (this.watchers.size === 0) this.halt()
    }
  }

  /** Calls every watcher now (after a write this process committed). */
  announce(): void {
    for (const listener of this.watchers) listener()
  }

  /** Stops for good: the store is closing. */
  async stop(): Promise<void> {
    this.stopped = true
    this.watchers.clear()
    await this.halt()
  }

  private start(): void {
    this.recheck = setInterval(() => this.announce(), this.options.recheckMs ?? 1000)
    // watching never keeps the process alive
    this.recheck.unref()
    this.connect()
  }

  private async halt(): Promise<void> {
    clearInterval(this.recheck)
    clearTimeout(this.reconnect)
    this.recheck = undefined
    this.reconnect = undefined
    const client = this.client
    this.client = undefined
    await client?.end().catch(() => {})
  }

  private connect(): void {
    const client = new pg.Client({
      connectionString: this.options.url,
      connectionTimeoutMillis: this.options.connectionTimeoutMs ?? 3000,
      keepAlive: true,
      application_name: LISTEN_APPLICATION_NAME,
    })
    this.client = client
    let failed = false
    const fail = (): void => {
      if (failed) return
      failed = true
      client.end().catch(() => {})
      if (this.client !== client) return
      this.client = undefined
      if (this.stopped || this.watchers.size === 0) return
      this.reconnect = setTimeout(() => this.connect(), RECONNECT_DELAY_MS)
      this.reconnect.unref()
    }
    client.on('error', fail)
    client.on('end', fail)
    client.on('notification', () => this.announce())
    client
      .connect()
      .then(() => client.query(`LISTEN ${CHANGES_CHANNEL}`))
      .then(() => {
        // commits while no one listened were not notified: a check now finds them
        if (this.client === client) this.announce()
      })
      .catch(fail)
  }
}
