/**
 * What an app does around its requests over its lifetime: closing every connection once a
 * shutdown has no request left in flight, and purging old tombstones of the changes feed.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { FastifyInstance } from 'fastify'
import type { PersonStore } from '../store/person-store.js'

/**
 * Once no request is in flight, closes every connection. Node's server.close() closes only the
 * connections that are idle at that moment: a long poll answered during the shutdown leaves its
 * keep-alive connection open, and a connection on which no request was ever sent (Node's fetch opens
 * one after an aborted request) is not idle to it either; either would hold app.close() until the
 * keep-alive timeout (72 s).
 */
export function closeConnectionsWhenIdle(app: FastifyInstance): void {
  const server = app.server
  const sweep = setInterval(() => {
    if ((inFlight.get(server)?.count ?? 0) === 0) server.closeAllConnections()
  }, 50)
  sweep.unref()
  server.once('close', () => clearInterval(sweep))
}

// how many responses each server has open, so a shutdown knows when nothing is in flight
const inFlight = new WeakMap<Server, { count: number }>()

/** Counts `server`'s open responses, for a shutdown to know when nothing is in flight. */
export function trackOpenResponses(server: Server): void {
  const open = { count: 0 }
  inFlight.set(server, open)
  server.on('request', (_request: IncomingMessage, response: ServerResponse) => {
    open.count++
    response.once('close', () => open.count--)
  })
}

/**
 * Removes tombstones older than `retentionMs` when the app is ready and then at a tenth of the
 * retention (between 100 ms and an hour), until the app closes.
 */
export function purgeTombstonesEvery(app: FastifyInstance, store: PersonStore, retentionMs: number): void {
  const purge = (): void => {
    store.purgeTombstones(Date.now() - retentionMs).catch((error: unknown) => {
      app.log.warn({ err: error }, 'could not purge tombstones; trying again later')
    })
  }
  let timer: NodeJS.Timeout | undefined
  app.addHook('onReady', (done) => {
    purge()
    timer = setInterval(purge, Math.min(Math.max(retentionMs / 10, 100), 3_600_000))
    timer.unref()
    done()
  })
  app.addHook('onClose', (_instance, done) => {
    clearInterval(timer)
    done()
  })
}
