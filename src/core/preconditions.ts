/**
 * Evaluation of conditional request header fields in the order of RFC 9110 §13.2.2,
 * plus the `428 Precondition Required` rule of RFC 6585 §3 for writes.
 */
import { parseEntityTagList, type EntityTag } from './entity-tag.js'
import { parseHttpDate, toHttpDatePrecision } from './http-date.js'

/** The conditional request header fields, as raw field values (undefined when absent). */
export interface ConditionalHeaders {
  readonly ifMatch?: string | undefined
  readonly ifNoneMatch?: string | undefined
  readonly ifModifiedSince?: string | undefined
  readonly ifUnmodifiedSince?: string | undefined
}

/** The selected representation's validators, or null when the target resource does not exist. */
export interface CurrentValidators {
  readonly etag: EntityTag
  /** Last modification time in milliseconds since the epoch (any precision). */
  readonly lastModified: number
  /**
   * The content codings this version is also sent in (`gzip`, `br`, …). Each coding has its own
   * strong ETag (RFC 9110 §8.8.3), written `<opaque>+<coding>`; a tag of that form names the same
   * version, so it matches wherever the identity tag does.
   */
  readonly codings?: readonly string[]
}

/** True when `tag`'s opaque value names the current version, in identity or in one of its codings. */
export function namesCurrentVersion(tag: EntityTag, current: CurrentValidators): boolean {
  const opaque = current.etag.opaque
  if (tag.opaque === opaque) return true
  const codings = current.codings
  if (codings === undefined || tag.opaque.length <= opaque.length + 1 || tag.opaque.charCodeAt(opaque.length) !== PLUS) return false
  return tag.opaque.startsWith(opaque) && codings.includes(tag.opaque.slice(opaque.length + 1))
}

const PLUS = 0x2b

/** What the precondition that failed was, so a 412 can say why. */
export type FailedPrecondition =
  | {
      readonly field: 'if-match'
      /**
       * A weak tag is why: the field names the current ETag only in its weak form (`W/"…"`, alone or
       * among other tags), or holds weak tags only, which strong comparison never matches.
       */
      readonly becauseWeak: boolean
    }
  | { readonly field: 'if-unmodified-since' }
  | { readonly field: 'if-none-match' }

/** The closed set of outcomes: go on, 304, 412, or 428. */
export type PreconditionDecision =
  | { readonly outcome: 'proceed' }
  | { readonly outcome: 'not-modified' }
  | { readonly outcome: 'precondition-failed'; readonly failed: FailedPrecondition }
  | { readonly outcome: 'precondition-required' }

export interface PreconditionRequest {
  readonly method: string
  readonly headers: ConditionalHeaders
  /** The current validators, or null when the resource is absent. */
  readonly current: CurrentValidators | null
  /**
   * RFC 6585 §3: when true, a request on an existing resource without `If-Match` (or, for PUT,
   * `If-None-Match: *`) is answered 428 instead of being allowed to overwrite blindly.
   */
  readonly requirePrecondition?: boolean
}

const PROCEED: PreconditionDecision = { outcome: 'proceed' }
const NOT_MODIFIED: PreconditionDecision = { outcome: 'not-modified' }
const PRECONDITION_REQUIRED: PreconditionDecision = { outcome: 'precondition-required' }

/** The methods a 304 answers (RFC 9110 §13.1.2, §13.1.3: If-None-Match and If-Modified-Since on GET and HEAD). */
export const SAFE_METHODS: readonly string[] = ['GET', 'HEAD']

/** True for GET and HEAD. */
export function isSafeMethod(method: string): boolean {
  return method === 'GET' || method === 'HEAD'
}

/**
 * True when `If-None-Match` is `*`: the request is to act only if no current representation
 * exists (RFC 9110 §13.1.2), which for PUT means create, never replace.
 */
export function isCreateOnly(headers: ConditionalHeaders): boolean {
  return headers.ifNoneMatch !== undefined && parseEntityTagList(headers.ifNoneMatch).any
}

/**
 * RFC 9110 §13.1.1: `If-Match` is true for `*` when a current representation exists, or when a
 * listed tag matches the current ETag by strong comparison. An empty or malformed field is false.
 */
export function ifMatchHolds(value: string, current: CurrentValidators | null): boolean {
  const list = parseEntityTagList(value)
  if (current === null || list.malformed) return false
  if (list.any) return true
  // strong comparison: neither tag weak, the same opaque value (in any coding of this version)
  if (current.etag.weak) return false
  return list.tags.some((tag) => !tag.weak && namesCurrentVersion(tag, current))
}

/**
 * RFC 9110 §13.1.2: `If-None-Match` is false for `*` when a current representation exists, or
 * when a listed tag matches the current ETag by weak comparison. Members that do not parse are
 * skipped: matching fewer tags can only cost a full response, never a wrong one.
 */
export function ifNoneMatchHolds(value: string, current: CurrentValidators | null): boolean {
  const list = parseEntityTagList(value)
  if (current === null) return true
  if (list.any) return false
  return !list.tags.some((tag) => namesCurrentVersion(tag, current))
}

function becauseWeak(value: string, current: CurrentValidators | null): boolean {
  const list = parseEntityTagList(value)
  if (list.any || list.tags.length === 0) return false
  if (list.tags.every((tag) => tag.weak)) return true
  // a proxy may have weakened the current tag and kept an older strong one beside it
  return current !== null && list.tags.some((tag) => tag.weak && namesCurrentVersion(tag, current))
}

/**
 * Decides a request's preconditions in RFC 9110 §13.2.2 order, from the validators alone:
 * 1. If-Match, else 2. If-Unmodified-Since; 3. If-None-Match, else 4. If-Modified-Since (GET/HEAD).
 * A date that is not a valid HTTP-date is ignored (§13.1.3, §13.1.4).
 *
 * @example
 * evaluatePreconditions({
 *   method: 'GET',
 *   headers: { ifNoneMatch: '"v1"' },
 *   current: { etag: { weak: false, opaque: 'v1' }, lastModified: Date.now() },
 * }) // { outcome: 'not-modified' }
 */
export function evaluatePreconditions(request: PreconditionRequest): PreconditionDecision {
  const { method, headers, current } = request
  const { ifMatch, ifNoneMatch, ifModifiedSince, ifUnmodifiedSince } = headers
  const safe = isSafeMethod(method)

  // RFC 6585 §3: a state-changing request on an existing resource must be conditional on its
  // ETag. If-Unmodified-Since never stands in for If-Match here: a date has one-second resolution.
  if (request.requirePrecondition === true && current !== null && ifMatch === undefined) {
    if (!(method === 'PUT' && isCreateOnly(headers))) return PRECONDITION_REQUIRED
  }

  // step 1: If-Match uses strong comparison
  if (ifMatch !== undefined) {
    if (!ifMatchHolds(ifMatch, current)) {
      return { outcome: 'precondition-failed', failed: { field: 'if-match', becauseWeak: becauseWeak(ifMatch, current) } }
    }
  } else if (ifUnmodifiedSince !== undefined && current !== null) {
    // step 2: only when If-Match is absent; compared at the one-second precision of HTTP-dates
    const since = parseHttpDate(ifUnmodifiedSince)
    if (since !== undefined && toHttpDatePrecision(current.lastModified) > since) {
      return { outcome: 'precondition-failed', failed: { field: 'if-unmodified-since' } }
    }
  }

  // step 3: If-None-Match uses weak comparison
  if (ifNoneMatch !== undefined) {
    if (!ifNoneMatchHolds(ifNoneMatch, current)) {
      return safe ? NOT_MODIFIED : { outcome: 'precondition-failed', failed: { field: 'if-none-match' } }
    }
  } else if (safe && ifModifiedSince !== undefined && current !== null) {
    // step 4: only for GET/HEAD and only when If-None-Match is absent
    const since = parseHttpDate(ifModifiedSince)
    if (since !== undefined && toHttpDatePrecision(current.lastModified) <= since) return NOT_MODIFIED
  }

  return PROCEED
}
