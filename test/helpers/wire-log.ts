/**
 * What a running server saw on the wire: each request's method, URL and precondition headers, and
 * the status it answered. Read from the Node HTTP server itself, so it shows what really crossed
 * the socket (a 304 here is a 304 on the wire, not a value a client returned from its cache).
 */
import type { RunningServer } from './start-server.js'

/** One request as the server saw it. */
export interface WireEntry {
  readonly method: string
  readonly url: string
  readonly ifMatch: string | undefined
  readonly ifNoneMatch: string | undefined
  readonly origin: string | undefined
  /** The status answered; undefined until the response has finished (an event stream's, while it is open). */
  status: number | undefined
  /** An event stream (Accept: text/event-stream), which stays open: entries() does not wait for it. */
  readonly stream: boolean
}

export interface WireLog {
  /** Every request so far, oldest first, once all of them have been answered. */
  entries(): Promise<WireEntry[]>
  /** The If-Match and the status of every PUT so far, oldest first: what a save sent and got. */
  puts(): Promise<[ifMatch: string | undefined, status: number | undefined][]>
  /** Forgets the requests seen so far. */
  clear(): void
}

/** Starts recording the requests `server` receives. */
export function recordWire(server: RunningServer): WireLog {
  let log: WireEntry[] = []
  server.app.server.on('request', (request, response) => {
    const h = request.headers
    const entry: WireEntry = {
      method: request.method ?? '',
      url: request.url ?? '',
      ifMatch: h['if-match'],
      ifNoneMatch: h['if-none-match'],
      origin: h.origin,
      status: undefined,
      stream: h.accept?.includes('text/event-stream') === true,
    }
    log.push(entry)
    response.on('finish', () => {
      entry.status = response.statusCode
    })
  })
  async function entries(): Promise<WireEntry[]> {
    // a client can see the response a moment before the server's 'finish' event: wait for it
    for (let i = 0; i < 400 && log.some((e) => e.status === undefined && !e.stream); i++) {
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    return [...log]
  }
  return {
    entries,
    async puts() {
      return (await entries()).filter((e) => e.method === 'PUT').map((e) => [e.ifMatch, e.status])
    },
    clear() {
      log = []
    },
  }
}
