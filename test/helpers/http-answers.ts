/**
 * One fetch read to its end, kept as the few things HTTP tests look at: the status, the
 * validators, the content type and the body as text; and a person as those answers show it.
 */
import assert from 'node:assert/strict'

/** What a test sees of one response. */
export interface Answer {
  readonly status: number
  readonly etag: string | null
  readonly lastModified: string | null
  readonly contentType: string | null
  readonly body: string
}

/** Fetches `url` and reads the whole body as text. */
export async function send(url: string, init: RequestInit = {}): Promise<Answer> {
  const response = await fetch(url, init)
  const body = await response.text()
  return {
    status: response.status,
    etag: response.headers.get('etag'),
    lastModified: response.headers.get('last-modified'),
    contentType: response.headers.get('content-type'),
    body,
  }
}

/**
 * The fields of a 304, but the connection's own, sorted: what RFC 9110 §15.4.5 lists (API.md
 * says the same), and nothing else.
 */
export const NOT_MODIFIED_FIELD_NAMES: readonly string[] = ['cache-control', 'date', 'etag', 'last-modified', 'vary']

/** The names of a response's fields (fetch's Headers or a raw answer's map) but Connection and Keep-Alive, sorted. */
export function fieldNamesBesideConnection(headers: { keys(): Iterable<string> }): string[] {
  return [...headers.keys()].filter((name) => name !== 'connection' && name !== 'keep-alive').sort()
}

/** A person as the service answers it (API.md, Persons). */
export interface Person {
  readonly person_id: string
  readonly person_name: string
  readonly change_date: string
}

/** A person (or a page) as a GET showed it: what a failed write must leave exactly as it was. */
export interface Snapshot {
  readonly id: string
  readonly etag: string
  readonly lastModified: string
  readonly text: string
}

/** A Snapshot of a person, with the person read from its text. */
export interface PersonSnapshot extends Snapshot {
  readonly person: Person
}

/** POSTs a new person to `baseUrl`, asserts the 201, and returns the ETag it carries. */
export async function createPerson(baseUrl: string, id: string, name = 'Wim'): Promise<string> {
  const response = await fetch(`${baseUrl}/persons`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ person_id: id, person_name: name }),
  })
  const body = await response.text()
  assert.equal(response.status, 201, `POST /persons ${id} on ${baseUrl}: ${response.status} ${body}`)
  const etag = response.headers.get('etag')
  assert.ok(etag !== null, 'a 201 carries an ETag')
  return etag
}
