/**
 * The hot read path. A GET or HEAD of a person or of a page whose answer is a `304`, or a `200`
 * whose bytes are already cached under the current ETag, is answered on the raw node:http request,
 * before Fastify routes it: that is most of what a busy ETag service answers, and most of its cost
 * was the framework's. What the answer is comes from the same decision the routes make
 * (conditional-read.ts: the same validator read, decideRead, the same fields and bytes); this file
 * decides only *where* it is written. It declines everything else, which Fastify then answers as
 * usual: a 404, a 412, a cache miss, a URL it would have to decode, a request with a body or an
 * X-Request-Id, and any request while the server shuts down. The tests compare its answers with the
 * framework's, header by header, on both drivers.
 *
 * With SQLite the validator is read at once (ImmediateReads) and the answer written in the same
 * call. With PostgreSQL it is the store's own read, a round trip: the request waits for it here,
 * and is then answered or handed to Fastify. A request handed over is decided again from a read of
 * Fastify's own (its answer comes from that one read, made during the request like the first):
 * that costs a 404 or a cold-cache read a second round trip, and keeps the routes unaware of this
 * file. A read that failed is not repeated: the failure goes with the request (takeFailedRead) and
 * is its answer, a 503 for an unavailable store.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { isSafeMethod } from '../core/index.js'
import type { CollectionValidator, ImmediateReads, PersonStore, PersonValidator } from '../store/person-store.js'
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
  // either driver: SQLite's validator reads are immediate, PostgreSQL's are awaited
  store: () => true,
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

/** The validator reads that wait on I/O: the store's own (PostgreSQL). */
export type AwaitedReads = Pick<PersonStore, 'readValidator' | 'readCollectionValidator'>

export interface ReadFastPathOptions {
  /** The store's immediate reads when it has them (answered in the same call), else its awaited ones. */
  readonly reads: { readonly immediate: ImmediateReads } | { readonly awaited: AwaitedReads }
  readonly epoch: string
  readonly cache: RepresentationCache
  readonly metrics: ServiceMetrics
  /** True from the moment the server starts closing: Fastify then answers with Connection: close. */
  readonly closing: () => boolean
}

/**
 * Answers `request` and returns true, or returns false having written nothing; with awaited reads,
 * a promise of the same (it never rejects).
 */
export type ReadFastPath = (request: IncomingMessage, response: ServerResponse) => boolean | Promise<boolean>

const PAGE_LIMIT = new RegExp(PAGE_LIMIT_PATTERN)
// the two query forms the service itself writes (the Link to the next page) and clients send;
// any other (repeated, escaped or unknown parameters, an empty query, the changes feed's since=)
// goes to Fastify's parser
const PAGE_QUERY = new RegExp(`^\\?limit=([0-9]{1,4})(?:&after=(${PERSON_ID_PATTERN.slice(1, -1)}))?$`)

// a 304's fields, as validatorFields() gives them (a 304 carries no security fields:
// security-headers.ts says why): the ETag and Last-Modified are written into their slots for each
// answer (writeHead reads the list before it returns, and keeps nothing)
const NOT_MODIFIED_FIELDS: string[] = Object.entries(validatorFields('', '')).flat()
const ETAG_SLOT = NOT_MODIFIED_FIELDS.indexOf('etag') + 1
const LAST_MODIFIED_SLOT = NOT_MODIFIED_FIELDS.indexOf('last-modified') + 1

// a cached 200's fields, made once per cached representation (a representation's fields never change)
const OK_FIELDS = new WeakMap<CachedRepresentation, string[]>()

// the errors of awaited validator reads that failed, by the request handed to Fastify after them
const failedReads = new WeakMap<IncomingMessage, unknown>()

/**
 * The error the fast path's awaited validator read for `request` failed with, or undefined; taken
 * once. Fastify answers the request with it (a 503 for an unavailable store) instead of reading
 * again: with the database's network stalled, a second read would make the client wait out a
 * second timeout.
 */
export function takeFailedRead(request: IncomingMessage): unknown {
  const error = failedReads.get(request)
  if (error !== undefined) failedReads.delete(request)
  return error
}

/** What a URL the fast path takes names: a person, or a page of the collection. */
type Named =
  | { readonly route: typeof PERSON_ROUTE; readonly id: string }
  | { readonly route: typeof COLLECTION_ROUTE; readonly limit: number; readonly after: string | undefined }

/** The person or page a URL names, in the forms the fast path takes; undefined to decline. */
function named(url: string): Named | undefined {
  if (url.startsWith(PERSON_PATH_PREFIX)) {
    const id = url.slice(PERSON_PATH_PREFIX.length)
    return isValidPersonId(id) ? { route: PERSON_ROUTE, id } : undefined
  }
  if (url === COLLECTION_ROUTE) return { route: COLLECTION_ROUTE, limit: DEFAULT_PAGE_LIMIT, after: undefined }
  if (!url.startsWith(COLLECTION_ROUTE)) return undefined
  const query = PAGE_QUERY.exec(url.slice(COLLECTION_ROUTE.length))
  if (query === null || !PAGE_LIMIT.test(query[1]!)) return undefined
  return { route: COLLECTION_ROUTE, limit: Number(query[1]), after: query[2] }
}

/** Builds the fast path on a store's immediate or awaited validator reads. */
export function readFastPath(options: ReadFastPathOptions): ReadFastPath {
  const { epoch, cache, metrics } = options

  // the target of what `name` names, from its validator; undefined (an absent person: a 404
  // problem, the framework's to answer) to decline
  function targetOf(name: Named, validator: PersonValidator | CollectionValidator | undefined): ReadTarget | undefined {
    if (validator === undefined) return undefined
    return name.route === PERSON_ROUTE
      ? personTarget(epoch, validator as PersonValidator)
      : pageTarget(epoch, validator as CollectionValidator, name.limit, name.after)
  }

  // writes the answer for `target`, or returns false having written nothing
  function respond(request: IncomingMessage, response: ServerResponse, route: string, target: ReadTarget): boolean {
    const method = request.method!
    const { headers } = request
    const decision = decideRead(target, method, headers)
    const conditional = headers['if-none-match'] !== undefined || headers['if-modified-since'] !== undefined
    if (decision.outcome === 'not-modified') {
      NOT_MODIFIED_FIELDS[ETAG_SLOT] = decision.etag
      NOT_MODIFIED_FIELDS[LAST_MODIFIED_SLOT] = decision.lastModified
      response.writeHead(304, NOT_MODIFIED_FIELDS)
      response.end()
      metrics.countResponse(route, method, 304, conditional, decision.etag)
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
    metrics.countResponse(route, method, 200, conditional, decision.etag)
    return true
  }

  const { reads } = options
  return function answer(request: IncomingMessage, response: ServerResponse): boolean | Promise<boolean> {
    const { method, headers } = request
    if (method === undefined || !isSafeMethod(method) || options.closing()) return false
    // a body (which Fastify would read), or an id to echo and log under: the framework's path
    if (headers['content-length'] !== undefined || headers['transfer-encoding'] !== undefined) return false
    if (headers['x-request-id'] !== undefined) return false
    const name = named(request.url!)
    if (name === undefined) return false
    if ('immediate' in reads) {
      let target: ReadTarget | undefined
      try {
        target = targetOf(name, name.route === PERSON_ROUTE ? reads.immediate.readValidator(name.id) : reads.immediate.readCollectionValidator())
      } catch {
        // the store is unavailable: the framework's path answers 503 with what it knows
        return false
      }
      return target !== undefined && respond(request, response, name.route, target)
    }
    const read = name.route === PERSON_ROUTE ? reads.awaited.readValidator(name.id) : reads.awaited.readCollectionValidator()
    return read.then(
      (validator) => {
        const target = targetOf(name, validator)
        // the server began closing while the read ran: Fastify answers with Connection: close
        return target !== undefined && !options.closing() && respond(request, response, name.route, target)
      },
      // the store failed: the framework's path answers with that error (takeFailedRead)
      (error: unknown) => {
        failedReads.set(request, error ?? new Error('the validator read failed'))
        return false
      },
    )
  }
}
