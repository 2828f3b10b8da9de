/**
 * Opening the SQLite file: the pragmas every connection of the store runs before its first read,
 * and the migration of the schema.
 */
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import { migrate } from './sqlite-schema.js'
import { isBusy, isUnavailable } from './sqlite-unavailable.js'

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

/** Whether one process owns the file (`exclusive`) or many share it (`shared`); see SqliteOptions. */
export type SqliteLocking = 'exclusive' | 'shared'

/** Another process has the file open in exclusive mode (or holds a lock on it beyond the busy timeout). */
export class SqliteInUseError extends Error {
  override readonly name = 'SqliteInUseError'
  constructor(
    readonly path: string,
    options?: { cause?: unknown },
  ) {
    super(
      `${path} is in use by another process. One process owns a SQLite file by default; to share it, start every process on it with SQLITE_LOCKING=shared (or run one with --workers N), or use PostgreSQL`,
      options,
    )
  }
}

/**
 * WAL pages written before a commit copies them back into the database file (a checkpoint, two
 * fsyncs). SQLite's default of 1,000 makes every few hundredth write pay for a checkpoint; 10,000
 * (about 40 MiB of WAL) makes that ten times rarer, and a checkpoint still bounds the WAL.
 */
const WAL_AUTOCHECKPOINT_PAGES = 10_000

/**
 * Opens (creating or migrating as needed) the database file at `path` in WAL mode, with the
 * locking mode `options` ask for; throws SqliteInUseError when another process holds the file.
 */
export function openSqliteDatabase(path: string, options: SqliteOptions = {}): Database.Database {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
  let db: Database.Database | undefined
  try {
    db = openInWalMode(path, options)
    db.pragma(`synchronous = ${options.synchronous ?? 'NORMAL'}`)
    db.pragma(`wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`)
    migrate(db)
    return db
  } catch (error) {
    db?.close()
    if (isUnavailable(error)) throw new SqliteInUseError(path, { cause: error })
    throw error
  }
}

/**
 * A connection to `path` in WAL mode. Turning a new file to WAL mode reads its header under a
 * shared lock, then upgrades to a write lock; SQLite does not wait for that upgrade (waiting with a
 * read lock held could deadlock), so when another process is converting or migrating the same new
 * file at that moment, the pragma fails at once with SQLITE_BUSY. The connection is then closed,
 * letting go of its shared lock (an exclusive-mode connection would keep it, and stall the other
 * process's commit), and a new one tries again after a pause of up to 32 ms, until the busy
 * timeout has passed: processes started together on one new file (`--workers N`, servers on
 * several hosts) all open it, and of two exclusive ones, one opens it and the other is refused.
 */
function openInWalMode(path: string, options: SqliteOptions): Database.Database {
  const busyTimeoutMs = options.busyTimeoutMs ?? 5000
  const deadline = Date.now() + busyTimeoutMs
  for (let pauseMs = 1; ; pauseMs = Math.min(pauseMs * 2, 32)) {
    const db = new Database(path)
    try {
      db.pragma(`busy_timeout = ${busyTimeoutMs}`)
      // before the first read: in WAL mode the lock is then taken once and held, and the WAL index
      // lives in this process's memory instead of a shared-memory file
      if (isExclusive(options)) db.pragma('locking_mode = EXCLUSIVE')
      db.pragma('journal_mode = WAL')
      return db
    } catch (error) {
      db.close()
      if (!isBusy(error) || Date.now() + pauseMs > deadline) throw error
      sleep(pauseMs)
    }
  }
}

/** Blocks this thread for `ms`: only while opening, before the process serves anything. */
function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

/** True when `options` leave this process the file's only user (the default). */
export function isExclusive(options: SqliteOptions): boolean {
  return (options.locking ?? 'exclusive') === 'exclusive'
}
