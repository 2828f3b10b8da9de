/**
 * The hot read path. A GET or HEAD of a person or of a page whose answer is a `304`, or a `200`
 * whose bytes are already cached under the current ETag, is answered on the raw node:http request,
 * before Fastify routes it: that is most of what a busy ETag service answers, and most of its cost
 * was the framework's. What the answer is comes from the same decision the routes make
 * (conditional-read.ts: the same validator read, decideRead, the same fields and bytes); this file
 * decides only *where* it is written. It declines everything else, which Fastify then answers as
 * usual: a 404, a 412, a cache miss, a URL it would have to decode, a request with a body or an
 * X-Request-Id, and any request while the server shuts down. The tests compare its answers with the
 * framework's, header by header.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { isSafeMethod } from '../core/index.js'
import type { ImmediateReads } from '../store/person-store.js'
import type { AppOptions } from './app.js'
import { decideRead, pageTarget, personTarget, type ReadTarget } from './conditional-read.js'
import type { ServiceMetrics } from './metrics.js'
import { isValidPersonId, PERSON_ID_PATTERN } from './person-input.js'
import type { CachedRepresentation, RepresentationCache } from './representation-cache.js'
import { JSON_TYPE, validatorFields } from './representation.js'
import { COLLECTION_ROUTE, PERSON_PATH_PREFIX, PERSON_ROUTE } from './routes.js'
import { DEFAULT_PAGE_LIMIT, PAGE_LIMIT_PATTERN } from './route-schemas.js'
import { SECURITY_FIELDS } from './security-headers.js'

/**
 * Whether each app option leaves the fast path on. The fast path may answer only what the
 * framework would answer with exactly the same bytes: an option that makes the framework add to
 * a read (a request log line, a token check on reads, CORS fields) turns it off. Every option is
 * here, so a new one does not compile until someone has said which it is.
 */
export const FAST_PATH_ALLOWED: { readonly [K in keyof Required<AppOptions>]: (options: AppOptions) => boolean } = {
  // the validator reads must be immediate (SQLite; PostgreSQL's need a round trip)
  store: (options) => options.store.immediate !== undefined,
  readFastPath: (options) => options.readFastPath !== false,
  // one log line per request is written by the framework's hooks
  logRequests: (options) => options.logRequests !== true,
  // a token on reads is checked by the framework's hooks
  protectReads: (options) => !(options.apiToken !== undefined && options.protectReads === true),
  // CORS adds Vary: Origin and its fields to every answer
  corsOrigins: (options) => options.corsOrigins === undefined,
  // these change no read's answer
  apiToken: () => true,
  cacheBytes: () => true,
  logger: () => true,
  processMetrics: () => true,
  tombstoneRetentionMs: () => true,
  changesHeartbeatMs: () => true,
}

/** True when `options` let the fast path answer reads (every entry of FAST_PATH_ALLOWED agrees). */
export function fastPathAllowed(options: AppOptions): boolean {
  return Object.values(FAST_PATH_ALLOWED).every((allowed) => allowed(options))
}

export interface ReadFastPathOptions {
  readonly reads: ImmediateReads
  readonly epoch: string
  readonly cache: RepresentationCache
  readonly metrics: ServiceMetrics
  /** True from the moment the server starts closing: Fastify then answers with Connection: close. */
  readonly closing: () => boolean
}

/** Answers `request` and returns true, or returns false having written nothing. */
export type ReadFastPath = (request: IncomingMessage, response: ServerResponse) => boolean

const PAGE_LIMIT = new RegExp(PAGE_LIMIT_PATTERN)
// the two query forms the service itself writes (the Link to the next page) and clients send;
// any other (repeated, escaped or unknown parameters, an empty query, the changes feed's since=)
// goes to Fastify's parser
const PAGE_QUERY = new RegExp(`^\\?limit=([0-9]{1,4})(?:&after=(${PERSON_ID_PATTERN.slice(1, -1)}))?$`)

// a 304's fields, as validatorFields() gives them, then the security fields: the ETag and
// Last-Modified are written into their slots for each answer (writeHead reads the list before it
// returns, and keeps nothing)
const NOT_MODIFIED_FIELDS: string[] = [...Object.entries(validatorFields('', '')).flat(), ...SECURITY_FIELDS]
const ETAG_SLOT = NOT_MODIFIED_FIELDS.indexOf('etag') + 1
const LAST_MODIFIED_SLOT = NOT_MODIFIED_FIELDS.indexOf('last-modified') + 1

// a cached 200's fields, made once per cached representation (a representation's fields never change)
const OK_FIELDS = new WeakMap<CachedRepresentation, string[]>()

/** Builds the fast path for a store whose validator reads are immediate. */
export function readFastPath(options: ReadFastPathOptions): ReadFastPath {
  const { reads, epoch, cache, metrics } = options

  // the route a URL names and its target; undefined to decline
  function target(url: string): { route: string; target: ReadTarget } | undefined {
    if (url.startsWith(PERSON_PATH_PREFIX)) {
      const id = url.slice(PERSON_PATH_PREFIX.length)
      if (!isValidPersonId(id)) return undefined
      const current = reads.readValidator(id)
      // an absent person is a 404 problem: the framework's to answer
      if (current === undefined) return undefined
      return { route: PERSON_ROUTE, target: personTarget(epoch, current) }
    }
    let limit = DEFAULT_PAGE_LIMIT
    let after: string | undefined
    if (url !== COLLECTION_ROUTE) {
      if (!url.startsWith(COLLECTION_ROUTE)) return undefined
      const query = PAGE_QUERY.exec(url.slice(COLLECTION_ROUTE.length))
      if (query === null || !PAGE_LIMIT.test(query[1]!)) return undefined
      limit = Number(query[1])
      after = query[2]
    }
    return { route: COLLECTION_ROUTE, target: pageTarget(epoch, reads.readCollectionValidator(), limit, after) }
  }

  return function answer(request: IncomingMessage, response: ServerResponse): boolean {
    const { method, headers } = request
    if (method === undefined || !isSafeMethod(method) || options.closing()) return false
    // a body (which Fastify would read), or an id to echo and log under: the framework's path
    if (headers['content-length'] !== undefined || headers['transfer-encoding'] !== undefined) return false
    if (headers['x-request-id'] !== undefined) return false
    let found: ReturnType<typeof target>
    try {
      found = target(request.url!)
    } catch {
      // the store is unavailable: the framework's path answers 503 with what it knows
      return false
    }
    if (found === undefined) return false
    const decision = decideRead(found.target, method, headers)
    const conditional = headers['if-none-match'] !== undefined || headers['if-modified-since'] !== undefined
    if (decision.outcome === 'not-modified') {
      NOT_MODIFIED_FIELDS[ETAG_SLOT] = decision.etag
      NOT_MODIFIED_FIELDS[LAST_MODIFIED_SLOT] = decision.lastModified
      response.writeHead(304, NOT_MODIFIED_FIELDS)
      response.end()
      metrics.countResponse(found.route, method, 304, conditional, decision.etag)
      return true
    }
    // a 412 is a problem the framework writes
    if (decision.outcome !== 'send') return false
    // not cached yet (or not yet compressed in this coding): the framework's path reads and caches it
    const cached = cache.get(decision.etag)
    if (cached === undefined) return false
    let okFields = OK_FIELDS.get(cached)
    if (okFields === undefined) {
      okFields = [...Object.entries(cached.headers).flat(), 'content-type', JSON_TYPE, ...SECURITY_FIELDS, 'content-length', String(cached.body.length)]
      OK_FIELDS.set(cached, okFields)
    }
    response.writeHead(200, okFields)
    // Node sends no content in an answer to HEAD, and keeps the Content-Length of the 200
    response.end(method === 'HEAD' ? undefined : cached.body)
    metrics.countResponse(found.route, method, 200, conditional, decision.etag)
    return true
  }
}
