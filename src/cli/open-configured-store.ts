/**
 * Opens the configured database for the command, turning what an operator can fix (a bad URL, a
 * file another process owns, a database that is down) into one line on stderr and an exit code.
 */
import { StoreUnavailableError, type PersonStore } from '../store/person-store.js'
import { DatabaseUrlError, openStore } from '../store/open-store.js'
import { SqliteInUseError } from '../store/sqlite/sqlite-person-store.js'
import type { Config } from './read-config.js'

/**
 * Opens (creating or migrating) the store `config` names; on a failure an operator can fix, prints
 * `ifmatch: …` and exits: 2 for a bad DATABASE_URL (a usage error), 1 when the database refuses.
 */
export async function openConfiguredStore(config: Config): Promise<PersonStore> {
  try {
    return await openStore(config.databaseUrl, config.storeOptions)
  } catch (error) {
    if (error instanceof DatabaseUrlError) exitWith(2, error.message)
    if (error instanceof SqliteInUseError) exitWith(1, error.message)
    if (error instanceof StoreUnavailableError) {
      const cause = error.cause instanceof Error ? `: ${error.cause.message}` : ''
      exitWith(1, `cannot open the database${cause}`)
    }
    throw error
  }
}

function exitWith(code: number, message: string): never {
  process.stderr.write(`ifmatch: ${message}\n`)
  process.exit(code)
}
