/**
 * The drivers every store and HTTP suite runs against. Each `open()` gives a fresh, empty
 * database of its own and a `cleanup` that removes it.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { PersonStore } from '../../src/store/person-store.js'
import { openStore } from '../../src/store/open-store.js'

export interface TestDatabase {
  /** The DATABASE_URL of this fresh database, for starting server processes on it. */
  readonly url: string
  /** Opens one more store on the same database (as another process would). */
  openStore(): Promise<PersonStore>
  /** Removes the database. */
  cleanup(): Promise<void>
}

export interface TestDriver {
  readonly name: 'sqlite' | 'postgres'
  createDatabase(): Promise<TestDatabase>
}

/** A fresh temporary directory, removed by `cleanup`. */
export function tempDir(prefix = 'ifmatch-test-'): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix))
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) }
}

const sqlite: TestDriver = {
  name: 'sqlite',
  async createDatabase() {
    const dir = tempDir()
    const url = `sqlite:${join(dir.path, 'ifmatch.sqlite')}`
    return { url, openStore: () => openStore(url), cleanup: async () => dir.cleanup() }
  },
}

/** Every driver the suites are parametrised over. */
export const TEST_DRIVERS: readonly TestDriver[] = [sqlite]
