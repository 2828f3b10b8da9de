/**
 * The hot read path. A GET or HEAD of a person or of a page whose answer is a `304`, or a `200`
 * whose bytes are already cached under the current ETag, is answered on the raw node:http request,
 * before Fastify routes it: that is most of what a busy ETag service answers, and most of its cost
 * was the framework's. It decides exactly as persons-routes.ts does (the same synchronous
 * validator read, the same evaluatePreconditions, the same headers and bytes) and declines
 * everything else, which Fastify then answers as usual: a 404, a 412, a cache miss, a URL it
 * would have to decode, a request with a body or an X-Request-Id, and any request while the
 * server shuts down. The tests compare its answers with the framework's, header by header.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { evaluatePreconditions, formatEntityTag, type EntityTag } from '../core/index.js'
import type { ImmediateReads } from '../store/person-store.js'
import type { ServiceMetrics } from './metrics.js'
import { conditionalHeaders } from './persons-routes.js'
import { PERSON_ID_PATTERN } from './person-input.js'
import type { CachedRepresentation, RepresentationCache } from './representation-cache.js'
import { CACHE_CONTROL, JSON_TYPE, currentValidators, lastModifiedField, pageEtag, personEtag } from './representation.js'
import { codedEtag, negotiateCoding, VARY_ACCEPT_ENCODING } from './content-coding.js'
import { DEFAULT_PAGE_LIMIT, PAGE_LIMIT_PATTERN } from './route-schemas.js'
import { CONTENT_SECURITY_POLICY, SECURITY_HEADERS } from './security-headers.js'

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

// the route patterns, as metrics label them on either path
const PERSON_ROUTE = '/persons/:id'
const COLLECTION_ROUTE = '/persons'

const PERSON_PREFIX = '/persons/'
const PERSON_ID = new RegExp(PERSON_ID_PATTERN)
const PAGE_LIMIT = new RegExp(PAGE_LIMIT_PATTERN)
// the two query forms the service itself writes (the Link to the next page) and clients send;
// any other (repeated, escaped or unknown parameters, an empty query) goes to Fastify's parser
const PAGE_QUERY = /^\?limit=([0-9]{1,4})(?:&after=([A-Za-z0-9._~-]{1,64}))?$/

// every answer carries these, as the app's onSend hook adds them on the framework's path
const SECURITY_FIELDS: readonly string[] = Object.entries({ ...SECURITY_HEADERS, 'content-security-policy': CONTENT_SECURITY_POLICY }).flat()

// a 304's fields, as validatorHeaders() gives them: the ETag and Last-Modified are written into
// slots 1 and 3 for each answer (writeHead reads the list before it returns, and keeps nothing)
const NOT_MODIFIED_FIELDS: string[] = [
  'etag', '', 'last-modified', '', 'cache-control', CACHE_CONTROL, 'vary', VARY_ACCEPT_ENCODING, ...SECURITY_FIELDS,
]

// a cached 200's fields, made once per cached representation (a representation's fields never change)
const OK_FIELDS = new WeakMap<CachedRepresentation, string[]>()

interface Target {
  readonly route: string
  readonly etag: EntityTag
  readonly lastModified: number
  /** Pages are sent in a content coding when the client accepts one; persons never are. */
  readonly coded: boolean
}

/** Builds the fast path for a store whose validator reads are immediate. */
export function readFastPath(options: ReadFastPathOptions): ReadFastPath {
  const { reads, epoch, cache, metrics } = options

  // the resource a URL names and its current validator; undefined to decline
  function target(url: string): Target | undefined {
    if (url.startsWith(PERSON_PREFIX)) {
      const id = url.slice(PERSON_PREFIX.length)
      if (!PERSON_ID.test(id)) return undefined
      const current = reads.readValidator(id)
      // an absent person is a 404 problem: the framework's to answer
      if (current === undefined) return undefined
      return { route: PERSON_ROUTE, etag: personEtag(epoch, current.version), lastModified: current.changedAt, coded: false }
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
    const collection = reads.readCollectionValidator()
    return { route: COLLECTION_ROUTE, etag: pageEtag(epoch, collection.revision, limit, after), lastModified: collection.changedAt, coded: true }
  }

  return function answer(request: IncomingMessage, response: ServerResponse): boolean {
    const { method, headers } = request
    if ((method !== 'GET' && method !== 'HEAD') || options.closing()) return false
    // a body (which Fastify would read), or an id to echo and log under: the framework's path
    if (headers['content-length'] !== undefined || headers['transfer-encoding'] !== undefined) return false
    if (headers['x-request-id'] !== undefined) return false
    let found: Target | undefined
    try {
      found = target(request.url!)
    } catch {
      // the store is unavailable: the framework's path answers 503 with what it knows
      return false
    }
    if (found === undefined) return false
    const decision = evaluatePreconditions({
      method, headers: conditionalHeaders(request), current: currentValidators(found.etag, found.lastModified),
    })
    // the tag of the coding this request gets, for its 304 and to find its bytes
    const sent = found.coded ? codedEtag(found.etag, negotiateCoding(headers['accept-encoding'])) : found.etag
    const conditional = headers['if-none-match'] !== undefined || headers['if-modified-since'] !== undefined
    if (decision.outcome === 'not-modified') {
      const etag = formatEntityTag(sent)
      // RFC 9110 §15.4.5: the validators and Cache-Control, no content and no Content-Type
      NOT_MODIFIED_FIELDS[1] = etag
      NOT_MODIFIED_FIELDS[3] = lastModifiedField(found.lastModified)
      response.writeHead(304, NOT_MODIFIED_FIELDS)
      response.end()
      metrics.countResponse(found.route, method, 304, conditional, etag)
      return true
    }
    // a 412 is a problem the framework writes
    if (decision.outcome !== 'proceed') return false
    // not yet compressed in this coding: the framework's path compresses it (once) and caches it
    const cached: CachedRepresentation | undefined = cache.get(formatEntityTag(sent))
    if (cached === undefined) return false
    let okFields = OK_FIELDS.get(cached)
    if (okFields === undefined) {
      okFields = [...fields(cached.headers), 'content-type', JSON_TYPE, ...SECURITY_FIELDS, 'content-length', String(cached.body.length)]
      OK_FIELDS.set(cached, okFields)
    }
    response.writeHead(200, okFields)
    // Node sends no content in an answer to HEAD, and keeps the Content-Length of the 200
    response.end(method === 'HEAD' ? undefined : cached.body)
    metrics.countResponse(found.route, method, 200, conditional, cached.headers.etag)
    return true
  }
}

function fields(headers: Readonly<Record<string, string>>): string[] {
  const list: string[] = []
  for (const name in headers) list.push(name, headers[name]!)
  return list
}
