/**
 * Cross-origin access (the Fetch standard's CORS protocol), off unless origins are configured.
 * When on, responses expose `ETag`, `Last-Modified`, `Location` and `Link` to scripts of the
 * allowed origins, and preflights accept `If-Match` and `If-None-Match`: without both, a browser
 * hides the ETag from a cross-origin client and refuses its conditional writes, and ETag clients
 * fail silently (a common reason they do).
 */
import cors from '@fastify/cors'
import type { FastifyInstance, FastifyRequest } from 'fastify'

/** `*` (any origin) or a list of origins like `https://a.example`. */
export type CorsOrigins = '*' | readonly string[]

/** Response headers a cross-origin script may read: the validators and the links. */
export const CORS_EXPOSED_HEADERS = ['ETag', 'Last-Modified', 'Location', 'Link']

/** Request headers a cross-origin script may send: the preconditions, the body type, a bearer token. */
export const CORS_ALLOWED_HEADERS = ['If-Match', 'If-None-Match', 'Content-Type', 'Authorization']

/** Every method the persons API answers (API.md). */
export const CORS_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']

/** How long a browser may reuse a preflight's answer, in seconds. */
const PREFLIGHT_MAX_AGE = 600

/** Thrown by `parseCorsOrigins` for a value that is not `*` or a list of origins. */
export class CorsOriginsError extends Error {}

/**
 * Reads the `CORS_ORIGINS` setting: empty or absent is off (undefined), `*` is any origin, else a
 * comma-separated list of origins (scheme, host and optional port; no path).
 *
 * @example
 * parseCorsOrigins('https://a.example, http://localhost:8080') // ['https://a.example', 'http://localhost:8080']
 */
export function parseCorsOrigins(raw: string | undefined): CorsOrigins | undefined {
  const items = (raw ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '')
  if (items.length === 0) return undefined
  if (items.includes('*')) {
    if (items.length > 1) throw new CorsOriginsError('CORS_ORIGINS is either * alone or a list of origins')
    return '*'
  }
  return items.map((item) => {
    let url: URL | undefined
    try {
      url = new URL(item)
    } catch {
      url = undefined
    }
    // an origin is what a browser sends in Origin: scheme://host[:port], nothing after it
    if (url === undefined || !['http:', 'https:'].includes(url.protocol) || url.origin !== item.replace(/\/$/, '')) {
      throw new CorsOriginsError(`CORS_ORIGINS: ${JSON.stringify(item)} is not an origin like https://a.example or http://localhost:8080`)
    }
    return url.origin
  })
}

/** A CORS preflight (Fetch standard §3.2.2) names its origin and the method it asks about. */
function isPreflight(request: FastifyRequest): boolean {
  return request.method === 'OPTIONS' && request.headers.origin !== undefined && request.headers['access-control-request-method'] !== undefined
}

/**
 * Answers CORS for `origins` on every route. A preflight is answered 204 by @fastify/cors; any other
 * OPTIONS request is left to the routes, which answer 405 with `Allow` as API.md says.
 */
export function registerCors(app: FastifyInstance, origins: CorsOrigins): void {
  const options = {
    origin: origins === '*' ? '*' : [...origins],
    methods: CORS_METHODS,
    allowedHeaders: CORS_ALLOWED_HEADERS,
    exposedHeaders: CORS_EXPOSED_HEADERS,
    maxAge: PREFLIGHT_MAX_AGE,
  }
  void app.register(cors, {
    // origin false turns CORS off for one request: a plain OPTIONS then reaches the 405 answer
    delegator: (request: FastifyRequest, callback: (error: Error | null, options: object) => void) =>
      callback(null, request.method === 'OPTIONS' && !isPreflight(request) ? { origin: false } : options),
  })
}
