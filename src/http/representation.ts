/**
 * The validators and JSON representation of a person and of a page of the collection.
 * ETags are built from the store's version and epoch alone: never from the clock, never by
 * hashing the body, so deciding a 304 or 412 needs no body at all.
 */
import { formatEntityTag, formatHttpDate, type CurrentValidators, type EntityTag } from '../core/index.js'
import { CONTENT_CODINGS, VARY_ACCEPT_ENCODING } from './content-coding.js'
import { changesEtag, nextPosition, positionAt, type FeedPosition } from './changes-position.js'
import type { ChangesPage, PersonPage, StoredChange, StoredPerson } from '../store/person-store.js'
import type { CachedRepresentation } from './representation-cache.js'

/** API.md: caches may store responses but must revalidate them, which ETags make cheap. */
export const CACHE_CONTROL = 'no-cache'

/** The strong ETag of a person at `version`, in the database with `epoch`. */
export function personEtag(epoch: string, version: number): EntityTag {
  return { weak: false, opaque: `${epoch}.${version.toString(36)}` }
}

/**
 * The strong ETag of one page of the collection. It names the store-wide revision, which every
 * create, update and delete bumps, and the page's own parameters.
 */
export function pageEtag(epoch: string, revision: number, limit: number, after: string | undefined): EntityTag {
  const page = after === undefined ? `l${limit}` : `l${limit}a${after}`
  return { weak: false, opaque: `${epoch}.${revision.toString(36)}.${page}` }
}

/** The same URL answers an event stream to Accept: text/event-stream, and JSON in any coding. */
export const FEED_VARY = `accept, ${VARY_ACCEPT_ENCODING}`

/** The media type of every representation of a person or a page. */
export const JSON_TYPE = 'application/json; charset=utf-8'

// most Last-Modified values a busy server formats fall in the same second as the previous one
let lastSecond = NaN
let lastHttpDate = ''

/** The Last-Modified field value of a change at `ms` (formatted once per second). */
export function lastModifiedField(ms: number): string {
  const second = Math.floor(ms / 1000)
  if (second !== lastSecond) {
    lastHttpDate = formatHttpDate(ms)
    lastSecond = second
  }
  return lastHttpDate
}

/**
 * The current validators of a representation for `evaluatePreconditions`: its identity tag, which
 * a tag of any coding of the same version matches too (API.md: compression and caches).
 */
export function currentValidators(etag: EntityTag, lastModified: number): CurrentValidators {
  return { etag, lastModified, codings: CONTENT_CODINGS }
}

/**
 * The headers every 200, 201 and 304 carries for a representation: its validators, and
 * `Vary: Accept-Encoding` (a cache must not hand one coding to a client that asked for another).
 */
export function validatorHeaders(etag: EntityTag, lastModified: number): Record<string, string> {
  return validatorFields(formatEntityTag(etag), lastModifiedField(lastModified))
}

/**
 * The same fields from their formatted values: the one list of what a 304 carries (RFC 9110
 * §15.4.5), which the read fast path writes from too.
 */
export function validatorFields(etag: string, lastModified: string): Record<string, string> {
  return { etag, 'last-modified': lastModified, 'cache-control': CACHE_CONTROL, vary: VARY_ACCEPT_ENCODING }
}

/** The JSON members of a person, in the order API.md shows them. */
export function personJson(person: StoredPerson): Record<string, string> {
  return {
    person_id: person.id,
    person_name: person.name,
    change_date: new Date(person.changedAt).toISOString(),
  }
}

/** The serialised representation of `person`, with the validator headers of exactly that body. */
export function personRepresentation(epoch: string, person: StoredPerson): CachedRepresentation {
  return {
    body: Buffer.from(JSON.stringify(personJson(person))),
    headers: validatorHeaders(personEtag(epoch, person.version), person.changedAt),
  }
}

/**
 * The serialised representation of one page of the collection, with the validator headers of the
 * snapshot it was read in and, when more persons follow, the `Link` to the next page.
 */
export function pageRepresentation(epoch: string, page: PersonPage, limit: number, after: string | undefined): CachedRepresentation {
  const headers = validatorHeaders(pageEtag(epoch, page.collection.revision, limit, after), page.collection.changedAt)
  const last = page.persons.at(-1)
  // API.md: every page names the moment it was read, to follow the changes feed from
  const changes = `</persons?since=${positionAt(epoch, page.collection.revision).token}>; rel="changes"`
  headers.link = page.hasMore && last !== undefined ? `</persons?limit=${limit}&after=${encodeURIComponent(last.id)}>; rel="next", ${changes}` : changes
  return { body: Buffer.from(JSON.stringify(page.persons.map(personJson))), headers }
}

/** The JSON of one feed item: a person with the ETag a GET of it returns, or a tombstone. */
export function changeJson(epoch: string, change: StoredChange): Record<string, unknown> {
  if (change.deleted) return { person_id: change.id, deleted: true }
  return { ...personJson(change.person), etag: formatEntityTag(personEtag(epoch, change.person.version)) }
}

/**
 * The serialised feed answer for `page`, read from `from` with `limit`: `{ changes, next, complete }`,
 * its validators, and a `Link` to the rest when `limit` cut it short.
 */
export function changesRepresentation(epoch: string, page: ChangesPage, from: FeedPosition, limit: number): CachedRepresentation {
  const next = nextPosition(epoch, page, from)
  const headers = validatorHeaders(changesEtag(epoch, page.collection.revision, from, limit), page.collection.changedAt)
  // the same URL answers an event stream to Accept: text/event-stream
  headers.vary = FEED_VARY
  if (page.hasMore) headers.link = `</persons?since=${next.token}&limit=${limit}>; rel="next"`
  const body = JSON.stringify({ changes: page.changes.map((change) => changeJson(epoch, change)), next: next.token, complete: !page.hasMore })
  return { body: Buffer.from(body), headers, items: page.changes.length }
}
