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
  let inFlight = 0
  const server = app.server
  const count = (_request: IncomingMessage, response: ServerResponse): void => {
    inFlight++
    response.once('close', () => inFlight--)
  }
  // from now on: requests already running are counted by the responses still open
  for (const response of openResponses.get(server) ?? []) {
    inFlight++
    response.once('close', () => inFlight--)
  }
  server.on('request', count)
  const sweep = setInterval(() => {
    if (inFlight === 0) server.closeAllConnections()
  }, 50)
  sweep.unref()
  server.once('close', () => {
    clearInterval(sweep)
    server.off('request', count)
  })
}

// the responses each server has open, so a shutdown knows what is still in flight
const openResponses = new WeakMap<Server, Set<ServerResponse>>()

/** Keeps the set of `server`'s open responses, for a shutdown to know what is in flight. */
export function trackOpenResponses(server: Server): void {
  const open = new Set<ServerResponse>()
  openResponses.set(server, open)
  server.on('request', (_request: IncomingMessage, response: ServerResponse) => {
    open.add(response)
    response.once('close', () => open.delete(response))
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
