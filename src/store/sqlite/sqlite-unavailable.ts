/**
 * Which SQLite failures are conditions of the moment. SQLITE_BUSY (another process held the lock
 * beyond the busy timeout) and a closed handle are answered 503 with Retry-After; anything else is
 * a bug and stays the error it is.
 */
import { StoreUnavailableError } from '../person-store.js'

/** True for SQLITE_BUSY, SQLITE_LOCKED and better-sqlite3's closed-handle error. */
export function isUnavailable(error: unknown): boolean {
  if (hasCode(error, 'SQLITE_BUSY') || hasCode(error, 'SQLITE_LOCKED')) return true
  return error instanceof TypeError && /database connection is not open/.test(error.message)
}

/** True for SQLITE_BUSY and its extended codes (SQLITE_BUSY_SNAPSHOT, …): another connection holds a lock. */
export function isBusy(error: unknown): boolean {
  return hasCode(error, 'SQLITE_BUSY')
}

function hasCode(error: unknown, prefix: string): boolean {
  const code = error instanceof Error ? (error as { code?: unknown }).code : undefined
  return typeof code === 'string' && code.startsWith(prefix)
}

/** Runs `body`, turning a failure of the moment (see isUnavailable) into StoreUnavailableError. */
export function runOrUnavailable<T>(body: () => T): T {
  try {
    return body()
  } catch (error) {
    throw isUnavailable(error) ? new StoreUnavailableError('the SQLite database is unavailable', { cause: error }) : error
  }
}

/** What a read of a closed store throws, even when memory could still answer it. */
export function closedError(): StoreUnavailableError {
  return new StoreUnavailableError('the SQLite database is closed')
}
