/**
 * The one decision of a conditional GET or HEAD (RFC 9110 §13.2.2), for a person, a page of the
 * collection or a feed answer: from the target's validator and the request's header fields, a
 * `304` with its fields, a `412`, or a `200` and the cache key of its bytes. Both the Fastify
 * routes and the read fast path (read-fast-path.ts) call it; they differ only in where the answer
 * is written, never in what it is.
 */
import type { IncomingHttpHeaders } from 'node:http'
import {
  evaluatePreconditions,
  formatEntityTag,
  isExactlyStrongTag,
  type ConditionalHeaders,
  type EntityTag,
  type PreconditionDecision,
} from '../core/index.js'
import type { CollectionValidator, PersonValidator } from '../store/person-store.js'
import { codedEtag, codingSuffix, negotiateCoding, type ContentCoding } from './content-coding.js'
import { currentValidators, lastModifiedField, pageEtag, personEtag } from './representation.js'

/** What a conditional read is about: the current validator of one representation. */
export interface ReadTarget {
  /** The identity ETag of the current version. */
  readonly etag: EntityTag
  readonly lastModified: number
  /** Whether the representation is sent in a content coding the client accepts (pages, feed answers). */
  readonly coded: boolean
}

/** A person's target: persons are sent as they are (content-coding.ts says why). */
export function personTarget(epoch: string, current: PersonValidator): ReadTarget {
  return { etag: personEtag(epoch, current.version), lastModified: current.changedAt, coded: false }
}

/** A page's target: the store-wide revision names every write before it. */
export function pageTarget(epoch: string, collection: CollectionValidator, limit: number, after: string | undefined): ReadTarget {
  return { etag: pageEtag(epoch, collection.revision, limit, after), lastModified: collection.changedAt, coded: true }
}

/** The decision: what to answer, and what the answer's fields are. */
export type ReadDecision =
  | {
      readonly outcome: 'not-modified'
      /** The ETag field of the 304: the tag of the coding this request would get. */
      readonly etag: string
      readonly lastModified: string
    }
  | {
      readonly outcome: 'send'
      /** The key of the bytes to send in the representation cache: the tag of their coding. */
      readonly etag: string
      /** The key of the identity bytes, to compress from when the coded ones are not cached yet. */
      readonly identityEtag: string
      readonly coding: ContentCoding | undefined
    }
  | { readonly outcome: 'precondition-failed'; readonly decision: PreconditionDecision & { outcome: 'precondition-failed' } }

/**
 * The conditional request header fields among a request's headers (Fastify's or node:http's), for
 * `evaluatePreconditions`.
 */
export function conditionalHeaders(h: IncomingHttpHeaders): ConditionalHeaders {
  return {
    ifMatch: h['if-match'],
    ifNoneMatch: h['if-none-match'],
    ifModifiedSince: h['if-modified-since'],
    ifUnmodifiedSince: h['if-unmodified-since'],
  }
}

/**
 * Decides a GET or HEAD of `target` from its validator alone: RFC 9110 §13.2.2 order, a tag of
 * any coding of the current version matching as the identity tag does, and a 304 carrying the
 * tag of the coding this request would get (API.md: compression).
 */
export function decideRead(target: ReadTarget, method: string, headers: IncomingHttpHeaders): ReadDecision {
  const coding = codingFor(target, headers)
  const revalidated = revalidatedAsSent(target, headers, coding)
  if (revalidated !== undefined) return { outcome: 'not-modified', etag: revalidated, lastModified: lastModifiedField(target.lastModified) }
  return decideByPreconditions(target, method, headers, coding)
}

/**
 * decideRead without its shortcut for the commonest revalidation: every field evaluated in RFC
 * 9110 §13.2.2 order. decideRead gives the same decision for every request (the tests compare them
 * on generated requests); it is exported for them.
 */
export function decideReadInFull(target: ReadTarget, method: string, headers: IncomingHttpHeaders): ReadDecision {
  return decideByPreconditions(target, method, headers, codingFor(target, headers))
}

/** The coding `target` is sent in to this request: undefined for identity, and for persons. */
function codingFor(target: ReadTarget, headers: IncomingHttpHeaders): ContentCoding | undefined {
  return target.coded ? negotiateCoding(headers['accept-encoding']) : undefined
}

/** The decision from every conditional field, in RFC 9110 §13.2.2 order, for a request getting `coding`. */
function decideByPreconditions(target: ReadTarget, method: string, headers: IncomingHttpHeaders, coding: ContentCoding | undefined): ReadDecision {
  const decision = evaluatePreconditions({
    method,
    headers: conditionalHeaders(headers),
    current: currentValidators(target.etag, target.lastModified),
  })
  if (decision.outcome === 'precondition-failed') return { outcome: 'precondition-failed', decision }
  const etag = formatEntityTag(codedEtag(target.etag, coding))
  if (decision.outcome === 'not-modified') {
    return { outcome: 'not-modified', etag, lastModified: lastModifiedField(target.lastModified) }
  }
  // 'precondition-required' is for writes only: a read without preconditions proceeds
  return { outcome: 'send', etag, identityEtag: coding === undefined ? etag : formatEntityTag(target.etag), coding }
}

/**
 * The request nearly every cache and client sends to revalidate: `If-None-Match` with exactly the
 * tag it was given for the coding it gets again, `coding` (the field value the 304's ETag will
 * be). Returns that field value, or undefined for every other request, which
 * evaluatePreconditions decides.
 * The same answer, found sooner: with neither If-Match nor If-Unmodified-Since, RFC 9110 §13.2.2
 * goes straight to If-None-Match (step 3), which the current strong tag, in any coding, fails: a
 * 304 for GET and HEAD, carrying the tag of the coding this request gets, the very one it sent.
 * On the path of every 304 the general decision's parsing and objects cost about a microsecond a
 * request (docs/performance.md).
 */
function revalidatedAsSent(target: ReadTarget, headers: IncomingHttpHeaders, coding: ContentCoding | undefined): string | undefined {
  const ifNoneMatch = headers['if-none-match']
  if (ifNoneMatch === undefined || target.etag.weak) return undefined
  if (headers['if-match'] !== undefined || headers['if-unmodified-since'] !== undefined) return undefined
  return isExactlyStrongTag(ifNoneMatch, target.etag.opaque, codingSuffix(coding)) ? ifNoneMatch : undefined
}
