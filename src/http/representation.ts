/**
 * The validators and JSON representation of a person and of a page of the collection.
 * ETags are built from the store's version and epoch alone: never from the clock, never by
 * hashing the body, so deciding a 304 or 412 needs no body at all.
 */
import { formatEntityTag, formatHttpDate, type EntityTag } from '../core/index.js'
import type { PersonPage, StoredPerson } from '../store/person-store.js'
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

/** The headers every 200, 201 and 304 carries for a representation. */
export function validatorHeaders(etag: EntityTag, lastModified: number): Record<string, string> {
  return {
    etag: formatEntityTag(etag),
    'last-modified': lastModifiedField(lastModified),
    'cache-control': CACHE_CONTROL,
  }
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
  if (page.hasMore && last !== undefined) {
    headers.link = `</persons?limit=${limit}&after=${encodeURIComponent(last.id)}>; rel="next"`
  }
  return { body: Buffer.from(JSON.stringify(page.persons.map(personJson))), headers }
}
