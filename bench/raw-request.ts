/**
 * A plain node:http client for the feed benchmarks: no fetch, no framework, an Agent the caller
 * sizes, and a count of the bytes each client put on and took off its sockets (request and
 * response lines, header fields, bodies and chunk framing: everything TCP carried).
 */
import { Agent, request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http'
import type { Socket } from 'node:net'
import { performance } from 'node:perf_hooks'

/** Bytes and requests of one client, counted at its sockets. */
export class WireCounter {
  private readonly sockets = new Set<Socket>()
  /** Requests sent, by the status of their answer ('aborted' when no answer came). */
  readonly statuses: Record<string, number> = {}
  /** Response body bytes as read off the wire (before any content decoding; chunk framing not included). */
  bodyBytes = 0

  /** Counts `socket` from now on (its counters cover its whole life, so each socket is added once). */
  track(socket: Socket): void {
    this.sockets.add(socket)
  }

  /** Records one finished request. */
  count(status: number | 'aborted'): void {
    this.statuses[String(status)] = (this.statuses[String(status)] ?? 0) + 1
  }

  /** Requests counted so far. */
  get requests(): number {
    return Object.values(this.statuses).reduce((a, b) => a + b, 0)
  }

  /** Bytes received on every socket so far: status lines, header fields and bodies. */
  get bytesIn(): number {
    let total = 0
    for (const socket of this.sockets) total += socket.bytesRead
    return total
  }

  /** Bytes sent on every socket so far. */
  get bytesOut(): number {
    let total = 0
    for (const socket of this.sockets) total += socket.bytesWritten
    return total
  }

  /** Connections opened. */
  get connections(): number {
    return this.sockets.size
  }
}

/** One answer, its body read whole. */
export interface RawResponse {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly body: Buffer
  /** performance.now() when the status line and header fields had been parsed. */
  readonly headersAt: number
  /** performance.now() when the last byte of the body had been read. */
  readonly endAt: number
}

export interface RawRequestOptions {
  readonly agent: Agent
  readonly method?: string
  readonly headers?: OutgoingHttpHeaders
  readonly body?: string
  /** Counts this request's socket and answer. */
  readonly counter?: WireCounter
  /** Aborts the request (its socket is destroyed; the promise rejects). */
  readonly signal?: AbortSignal
  /** Called once the request has been handed to the socket whole. */
  readonly onSent?: () => void
}

/** Sends one request to `url` and reads its answer whole. */
export function rawRequest(url: string, options: RawRequestOptions): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const counter = options.counter
    const request = httpRequest(url, {
      agent: options.agent,
      method: options.method ?? 'GET',
      headers: {
        ...options.headers,
        ...(options.body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(options.body) }),
      },
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    })
    request.on('socket', (socket) => counter?.track(socket))
    request.on('error', (error) => {
      counter?.count('aborted')
      reject(error)
    })
    if (options.onSent !== undefined) request.on('finish', options.onSent)
    request.on('response', (response) => {
      const headersAt = performance.now()
      const chunks: Buffer[] = []
      response.on('data', (chunk: Buffer) => {
        chunks.push(chunk)
        if (counter !== undefined) counter.bodyBytes += chunk.length
      })
      response.on('error', reject)
      response.on('end', () => {
        counter?.count(response.statusCode!)
        resolve({ status: response.statusCode!, headers: response.headers, body: Buffer.concat(chunks), headersAt, endAt: performance.now() })
      })
    })
    request.end(options.body)
  })
}

/** The target of each `<…>; rel="…"` entry of a Link header, by relation. */
export function linkTargets(header: string | string[] | undefined): Map<string, string> {
  const links = new Map<string, string>()
  const text = Array.isArray(header) ? header.join(', ') : (header ?? '')
  for (const match of text.matchAll(/<([^>]*)>\s*;\s*rel="?([^",;]+)"?/g)) {
    for (const rel of match[2]!.split(/\s+/)) links.set(rel, match[1]!)
  }
  return links
}

/** A keep-alive Agent for one client: `sockets` connections at most, all kept open. */
export function keepAliveAgent(sockets = 1): Agent {
  return new Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets, timeout: 120_000 })
}
