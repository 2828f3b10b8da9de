/**
 * Notices commits of other processes on a shared file. They show only in SQLite's data_version,
 * a counter that moves when another connection commits (never for this connection's own commits,
 * which group commit announces); reading it costs a microsecond, so it is polled while anyone watches.
 */
import type Database from 'better-sqlite3'

/** How often data_version is read while someone watches, in ms. */
export const DATA_VERSION_POLL_MS = 50

/** A timer reading data_version of `db`, calling `onChange` when another connection has committed. */
export class SqliteDataVersionWatcher {
  private timer: NodeJS.Timeout | undefined

  constructor(
    private readonly db: Database.Database,
    private readonly onChange: () => void,
  ) {}

  /** Starts polling, unless it already runs. */
  start(): void {
    if (this.timer !== undefined) return
    let seen = this.read()
    this.timer = setInterval(() => {
      const now = this.read()
      if (now === seen) return
      seen = now
      this.onChange()
    }, DATA_VERSION_POLL_MS)
    // watching for changes never keeps the process alive
    this.timer.unref()
  }

  /** Stops polling. */
  stop(): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  private read(): number | undefined {
    try {
      return this.db.pragma('data_version', { simple: true }) as number
    } catch {
      // busy or closed: the next tick tries again, and a changed value is still seen then
      return undefined
    }
  }
}
