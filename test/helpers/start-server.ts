/**
 * Starts the real service in this process on an ephemeral port, over a fresh database of the
 * given driver, and returns its base URL. Tests talk to it with fetch (or curl).
 */
import type { FastifyInstance } from 'fastify'
import { buildApp, type AppOptions } from '../../src/http/app.js'
import type { CorsOrigins } from '../../src/http/cors.js'
import type { PersonStore } from '../../src/store/person-store.js'
import { TEST_DRIVERS, type TestDatabase, type TestDriver } from './test-stores.js'

export interface RunningServer {
  readonly baseUrl: string
  readonly app: FastifyInstance
  readonly store: PersonStore
  readonly database: TestDatabase
  /** Stops the server and closes its store (the database stays until `cleanup`). */
  stop(): Promise<void>
  /** Stops the server and removes its database. */
  close(): Promise<void>
}

export interface StartOptions {
  readonly driver?: TestDriver
  /** Serve an existing database instead of a fresh one. */
  readonly database?: TestDatabase
  /** Options for buildApp besides the store (an API token, …). */
  readonly app?: Omit<AppOptions, 'store'>
  /** Turn CORS on for these origins (buildApp's `corsOrigins`). */
  readonly corsOrigins?: CorsOrigins
}

/** Starts a server on port 0. */
export async function startServer(options: StartOptions = {}): Promise<RunningServer> {
  const database = options.database ?? (await (options.driver ?? TEST_DRIVERS[0]!).createDatabase())
  const store = await database.openStore()
  const app = buildApp({ ...options.app, store, corsOrigins: options.corsOrigins })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('server has no TCP address')
  let stopped = false
  const stop = async (): Promise<void> => {
    if (stopped) return
    stopped = true
    await app.close()
    await store.close()
  }
  return {
    baseUrl: `http://127.0.0.1:${address.port}`,
    app,
    store,
    database,
    stop,
    close: async () => {
      await stop()
      if (options.database === undefined) await database.cleanup()
    },
  }
}
