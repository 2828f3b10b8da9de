/**
 * HTTP/1.1 through node:http, sending exactly the headers given: unlike fetch, it adds no
 * Accept-Encoding and decodes nothing by itself, so a test through a cache controls the content
 * coding it asks for and sees the bytes and ETag the cache really sent.
 */
import { request, type IncomingHttpHeaders, type IncomingMessage } from 'node:http'
import { brotliDecompressSync, gunzipSync } from 'node:zlib'

// only to turn a hang into a failure, never to judge speed
const EXCHANGE_TIMEOUT_MS = 15_000

/** One response read to its end. */
export interface Exchange {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  /** The body as it came off the wire (still in its content coding). */
  readonly raw: Buffer
  /** The body decoded from its Content-Encoding (gzip, br or none), as UTF-8 text. */
  readonly text: string
  /** The field's value, or undefined. */
  header(name: string): string | undefined
  /** The decoded body parsed as JSON. */
  json<T = unknown>(): T
}

export interface ExchangeOptions {
  readonly headers?: Readonly<Record<string, string>>
  /** Sent as it is (a string) or as JSON (anything else). */
  readonly body?: unknown
  readonly timeoutMs?: number
}

/** The body decoded from the response's Content-Encoding. */
export function decodeBody(raw: Buffer, contentEncoding: string | undefined): Buffer {
  const coding = (contentEncoding ?? 'identity').trim().toLowerCase()
  if (coding === 'gzip') return gunzipSync(raw)
  if (coding === 'br') return brotliDecompressSync(raw)
  if (coding === 'identity' || coding === '') return raw
  throw new Error(`unexpected Content-Encoding: ${coding}`)
}

function open(baseUrl: string, method: string, path: string, options: ExchangeOptions): Promise<IncomingMessage> {
  const url = new URL(path, baseUrl)
  const headers: Record<string, string> = { ...options.headers }
  let body: string | undefined
  if (options.body !== undefined) {
    body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body)
    headers['content-type'] ??= 'application/json'
    headers['content-length'] = String(Buffer.byteLength(body))
  }
  return new Promise((resolve, reject) => {
    // a connection of its own: a kept-alive one the cache has just closed would fail the request
    const outgoing = request(url, { method, headers, agent: false, timeout: options.timeoutMs ?? EXCHANGE_TIMEOUT_MS }, resolve)
    outgoing.on('timeout', () => outgoing.destroy(new Error(`${method} ${path}: no answer within ${options.timeoutMs ?? EXCHANGE_TIMEOUT_MS} ms`)))
    outgoing.on('error', reject)
    outgoing.end(body)
  })
}

/** Sends one request to `baseUrl` + `path` and reads the whole response. */
export async function exchange(baseUrl: string, method: string, path: string, options: ExchangeOptions = {}): Promise<Exchange> {
  const response = await open(baseUrl, method, path, options)
  const chunks: Buffer[] = []
  for await (const chunk of response) chunks.push(chunk as Buffer)
  const raw = Buffer.concat(chunks)
  const headers = response.headers
  const header = (name: string): string | undefined => {
    const value = headers[name.toLowerCase()]
    return Array.isArray(value) ? value.join(', ') : value
  }
  const text = method === 'HEAD' ? '' : decodeBody(raw, header('content-encoding')).toString('utf8')
  return {
    status: response.statusCode ?? 0,
    headers,
    raw,
    text,
    header,
    json: <T>() => JSON.parse(text) as T,
  }
}

/** An open response read as it arrives (an event stream). */
export interface OpenStream {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  /** Everything received so far, as text. */
  received(): string
  /** Resolves once the text received so far satisfies `done`; rejects after `timeoutMs`. */
  until(done: (text: string) => boolean, timeoutMs: number, what: string): Promise<string>
  /** Drops the connection. */
  close(): void
}

/** Sends a GET and returns as soon as the response's header arrives, reading its body as it comes. */
export async function openStream(baseUrl: string, path: string, headers: Readonly<Record<string, string>>): Promise<OpenStream> {
  // no socket timeout: an idle stream is the point; until() bounds every wait instead
  const response = await open(baseUrl, 'GET', path, { headers, timeoutMs: 0 })
  let text = ''
  const waiters = new Set<() => void>()
  response.setEncoding('utf8')
  response.on('data', (chunk: string) => {
    text += chunk
    for (const wake of waiters) wake()
  })
  response.on('error', () => {})
  return {
    status: response.statusCode ?? 0,
    headers: response.headers,
    received: () => text,
    until(done, timeoutMs, what) {
      if (done(text)) return Promise.resolve(text)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check)
          reject(new Error(`no ${what} within ${timeoutMs} ms; received so far:\n${text}`))
        }, timeoutMs)
        const check = (): void => {
          if (!done(text)) return
          clearTimeout(timer)
          waiters.delete(check)
          resolve(text)
        }
        waiters.add(check)
      })
    },
    close: () => response.destroy(),
  }
}
