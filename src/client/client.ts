/**
 * A typed client for the ifmatch persons API that uses ETags the way they are meant to be used:
 * reads revalidate a cache with `If-None-Match` (a `304` costs no body), writes send `If-Match`
 * with the ETag the client last saw (a stale one gets a `412`, never a lost update), and
 * `update()` runs the optimistic-concurrency loop: read, change, write, and on `412` read again.
 *
 * It uses the platform `fetch` and nothing else: no Node-only modules, so it runs in browsers too
 * (cross-origin, the server must expose `ETag`; ifmatch's CORS option does).
 *
 * @example
 * import { IfMatchClient } from 'ifmatch/client'
 * const client = new IfMatchClient({ baseUrl: 'http://127.0.0.1:5000' })
 * await client.create({ person_id: '1', person_name: 'Wim' })
 * await client.get('1')                                  // a 304 on the wire, the cached value here
 * await client.update('1', (p) => ({ person_name: p.person_name + '!' }))
 */
import { ConflictError, MissingEtagError, NotFoundError, PreconditionFailedError, problemError, type ProblemDetails, type Versioned } from './errors.js'
import { fullJitter, sleep } from './backoff.js'
import { followChanges, type ChangesBatch, type ChangesOptions } from './follow-changes.js'
import type { NewPerson, Person, PersonFields, PersonPatch } from './person.js'
import { PersonsMirror, type MirrorOptions } from './persons-mirror.js'

export * from './errors.js'
export type * from './person.js'
export type { ChangesBatch, ChangesOptions, FeedChange, FeedPerson, FeedTombstone } from './follow-changes.js'
export { PersonsMirror, type ChangesSource, type MirrorListener, type MirrorOptions } from './persons-mirror.js'

/** How `update()` retries after a `412`. */
export interface RetryOptions {
  /** Writes to try before giving up with a `ConflictError` (default 10). */
  readonly maxAttempts?: number
  /** The backoff before the second try is drawn from 0 to this many milliseconds; it doubles each try (default 10). */
  readonly baseDelayMs?: number
  /** The most any one backoff may be, in milliseconds (default 1000). */
  readonly maxDelayMs?: number
}

/** Options of an `IfMatchClient`. */
export interface ClientOptions extends RetryOptions {
  /** Where the service is, e.g. `http://127.0.0.1:5000` (a path prefix is kept). */
  readonly baseUrl: string | URL
  /** The fetch to use (default: the platform's `globalThis.fetch`). */
  readonly fetch?: typeof fetch
  /** Headers sent with every request, e.g. `{ authorization: 'Bearer …' }`. */
  readonly headers?: Readonly<Record<string, string>>
  /** How many persons and pages the ETag cache keeps; the least recently used go first (default 1000). */
  readonly cacheSize?: number
}

/** Options of one write: the ETag to send in `If-Match` instead of the one the client last saw. */
export interface WriteOptions {
  readonly etag?: string
}

/** Where `list()` starts and how many persons each request fetches. */
export interface ListOptions {
  /** Persons per page, 1–1000 (the service's default is 100). */
  readonly limit?: number
  /** Start after this id (ids sort in code-point order). */
  readonly after?: string
}

/** A change for `update()`: from the current person to the members to write. May be async. */
export type PersonChange = (current: Person) => PersonFields | Promise<PersonFields>

interface CachedPage {
  readonly persons: readonly Person[]
  readonly next: string | undefined
}

const DEFAULT_RETRY = { maxAttempts: 10, baseDelayMs: 10, maxDelayMs: 1000 } as const
const DEFAULT_CACHE_SIZE = 1000
const JSON_TYPE = 'application/json'
// RFC 7396 §4: the media type of a JSON Merge Patch
const MERGE_PATCH_TYPE = 'application/merge-patch+json'

/**
 * A least-recently-used map of validated representations: per key, the ETag and the value it names.
 * A Map keeps insertion order, so re-inserting on use makes the first key the least recently used.
 */
class EtagCache<T> {
  readonly #entries = new Map<string, Versioned<T>>()
  constructor(private readonly size: number) {}

  get(key: string): Versioned<T> | undefined {
    const entry = this.#entries.get(key)
    if (entry !== undefined) {
      this.#entries.delete(key)
      this.#entries.set(key, entry)
    }
    return entry
  }

  set(key: string, entry: Versioned<T>): void {
    this.#entries.delete(key)
    this.#entries.set(key, entry)
    if (this.#entries.size > this.size) this.#entries.delete(this.#entries.keys().next().value!)
  }

  delete(key: string): void {
    this.#entries.delete(key)
  }
}

/**
 * The client. One instance keeps one ETag cache; share it between the parts of a program that
 * should see each other's writes.
 */
export class IfMatchClient {
  readonly #base: URL
  readonly #fetch: typeof fetch
  readonly #headers: Readonly<Record<string, string>>
  readonly #retry: Required<RetryOptions>
  readonly #persons: EtagCache<Person>
  readonly #pages: EtagCache<CachedPage>

  constructor(options: ClientOptions) {
    const base = new URL(options.baseUrl)
    // resolve 'persons' under the base's path, not beside its last segment
    if (!base.pathname.endsWith('/')) base.pathname += '/'
    this.#base = base
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis)
    this.#headers = options.headers ?? {}
    this.#retry = {
      maxAttempts: positive('maxAttempts', options.maxAttempts ?? DEFAULT_RETRY.maxAttempts),
      baseDelayMs: options.baseDelayMs ?? DEFAULT_RETRY.baseDelayMs,
      maxDelayMs: options.maxDelayMs ?? DEFAULT_RETRY.maxDelayMs,
    }
    const size = positive('cacheSize', options.cacheSize ?? DEFAULT_CACHE_SIZE)
    this.#persons = new EtagCache(size)
    this.#pages = new EtagCache(size)
  }

  /**
   * Reads a person. When the cache holds it, sends `If-None-Match` with its ETag, and a `304`
   * returns the cached value (RFC 9110 §13.1.2). Throws `NotFoundError` when there is none.
   */
  async get(id: string): Promise<Person> {
    return (await this.read(id)).value
  }

  /** As `get`, with the ETag of the value: the one to send in `If-Match` to write over it. */
  async read(id: string): Promise<Versioned<Person>> {
    return this.#revalidate(this.#persons, id, this.#personUrl(id), async (response) => (await response.json()) as Person)
  }

  /** The ETag of the person as the client last saw it, if it saw it. */
  etagOf(id: string): string | undefined {
    return this.#persons.get(id)?.etag
  }

  /**
   * Every person in id order, fetched a page at a time by following each page's
   * `Link: <…>; rel="next"` (RFC 8288). Pages revalidate like persons: an unchanged page is a `304`.
   *
   * @example
   * for await (const person of client.list({ limit: 50 })) console.log(person.person_name)
   */
  async *list(options: ListOptions = {}): AsyncGenerator<Person, void, undefined> {
    const first = new URL('persons', this.#base)
    if (options.limit !== undefined) first.searchParams.set('limit', String(options.limit))
    if (options.after !== undefined) first.searchParams.set('after', options.after)
    let url: string | undefined = first.href
    while (url !== undefined) {
      const page: CachedPage = (
        await this.#revalidate(this.#pages, url, url, async (response) => ({
          persons: (await response.json()) as Person[],
          next: nextLink(response.headers.get('link'), response.url || url!),
        }))
      ).value
      yield* page.persons
      url = page.next
    }
  }

  /**
   * Follows the changes feed for ever (until `options.signal` aborts, or the loop breaks), a batch
   * (one feed answer) at a time. Apply a batch, then keep its `next`: passing it back as `since`
   * later resumes with nothing skipped and nothing repeated. While caught up it long-polls (`wait`
   * seconds, default 30) and revalidates with `If-None-Match`, so an idle poll costs a `304`.
   * Network failures and `5xx` answers are retried with full-jitter backoff from the same token.
   * When the service no longer knows the token (`410 Gone`) it starts again from `0` and the next
   * batch has `reset: true`: clear what you hold, then apply it. Throws `BadRequestError` for a
   * malformed token, `limit` or `wait`, and the typed problem for any other answer a retry cannot mend.
   *
   * @example
   * for await (const batch of client.changes({ since: saved, signal })) {
   *   if (batch.reset) copy.clear()
   *   for (const change of batch.changes) {
   *     if (change.deleted === true) copy.delete(change.person_id)
   *     else copy.set(change.person_id, change)
   *   }
   *   saved = batch.next
   * }
   */
  changes(options: ChangesOptions = {}): AsyncGenerator<ChangesBatch, void, undefined> {
    return followChanges({ collectionUrl: new URL('persons', this.#base), fetch: this.#fetch, headers: this.#headers }, options)
  }

  /**
   * A copy of the whole collection, kept current by following `changes()` from `0`: see
   * `PersonsMirror`. It starts at once; `await mirror.ready` for the first complete copy, and
   * `close()` it when done.
   */
  mirror(options: MirrorOptions = {}): PersonsMirror {
    return new PersonsMirror(this, options)
  }

  /** Creates a person (`POST /persons`). Throws `AlreadyExistsError` when the id is taken. */
  async create(person: NewPerson): Promise<Person> {
    const response = await this.#send('POST', new URL('persons', this.#base), {
      body: JSON.stringify({ person_id: person.person_id, person_name: person.person_name }),
      contentType: JSON_TYPE,
    })
    return this.#remember(person.person_id, response)
  }

  /**
   * Replaces a person's members (`PUT`) with `If-Match` set to the ETag the client last saw (or
   * `options.etag`). Throws `PreconditionFailedError` when someone else wrote since, and
   * `PreconditionRequiredError` when the client has seen no ETag for it yet.
   */
  async replace(id: string, fields: PersonFields, options: WriteOptions = {}): Promise<Person> {
    const response = await this.#send('PUT', this.#personUrl(id), {
      body: JSON.stringify({ person_id: id, person_name: fields.person_name }),
      contentType: JSON_TYPE,
      ifMatch: options.etag ?? this.etagOf(id),
    })
    return this.#remember(id, response)
  }

  /** Changes some members (`PATCH`, a JSON Merge Patch) with `If-Match`, as `replace` does. */
  async patch(id: string, patch: PersonPatch, options: WriteOptions = {}): Promise<Person> {
    const response = await this.#send('PATCH', this.#personUrl(id), {
      body: JSON.stringify(patch),
      contentType: MERGE_PATCH_TYPE,
      ifMatch: options.etag ?? this.etagOf(id),
    })
    return this.#remember(id, response)
  }

  /** Deletes a person (`DELETE`) with `If-Match`, as `replace` does, and forgets it. */
  async remove(id: string, options: WriteOptions = {}): Promise<void> {
    try {
      await this.#send('DELETE', this.#personUrl(id), { ifMatch: options.etag ?? this.etagOf(id) })
      this.#persons.delete(id)
    } catch (error) {
      if (error instanceof NotFoundError) this.#persons.delete(id)
      throw error
    }
  }

  /**
   * The optimistic-concurrency loop: reads the person (revalidating), applies `change` to it, and
   * writes the result with `If-Match`. When someone else wrote first (`412`), waits a random time
   * (full-jitter exponential backoff) and does it all again on the newer value, at most
   * `maxAttempts` times; then throws a `ConflictError` holding the value it meant to write and the
   * server's current one. `change` may run more than once, so it should only compute.
   *
   * @example
   * await client.update('counter', (p) => ({ person_name: String(Number(p.person_name) + 1) }))
   */
  async update(id: string, change: PersonChange, options: RetryOptions = {}): Promise<Person> {
    const retry = { ...this.#retry, ...options }
    positive('maxAttempts', retry.maxAttempts)
    let intended: Person | undefined
    let lastProblem: ProblemDetails | undefined
    for (let attempt = 1; attempt <= retry.maxAttempts; attempt++) {
      if (attempt > 1) await sleep(fullJitter(attempt - 1, retry.baseDelayMs, retry.maxDelayMs))
      const current = await this.read(id)
      const fields = await change(current.value)
      intended = { ...current.value, person_name: fields.person_name }
      try {
        return await this.replace(id, fields, { etag: current.etag })
      } catch (error) {
        if (!(error instanceof PreconditionFailedError)) throw error
        lastProblem = error.problem
      }
    }
    throw new ConflictError({
      id,
      intended: intended!,
      current: await this.read(id),
      attempts: retry.maxAttempts,
      lastProblem: lastProblem!,
    })
  }

  #personUrl(id: string): URL {
    return new URL(`persons/${encodeURIComponent(id)}`, this.#base)
  }

  /** GET with `If-None-Match` when `cache` holds `key`; a 304 answers from the cache. */
  async #revalidate<T>(cache: EtagCache<T>, key: string, url: URL | string, parse: (response: Response) => Promise<T>): Promise<Versioned<T>> {
    const cached = cache.get(key)
    const response = await this.#send('GET', url, { ifNoneMatch: cached?.etag })
    if (response.status === 304) {
      // the cache lost the entry between sending and now (evicted): ask again, unconditionally
      if (cached === undefined) return this.#revalidate(cache, key, url, parse)
      return cached
    }
    const entry = { value: await parse(response), etag: etagHeader(response) }
    cache.set(key, entry)
    return entry
  }

  /** Keeps the person a write answered with, under the ETag it came with. */
  async #remember(id: string, response: Response): Promise<Person> {
    const entry = { value: (await response.json()) as Person, etag: etagHeader(response) }
    this.#persons.set(id, entry)
    return entry.value
  }

  /** One request; any status other than 2xx and 304 is thrown as its typed problem. */
  async #send(
    method: string,
    url: URL | string,
    options: { body?: string; contentType?: string; ifMatch?: string | undefined; ifNoneMatch?: string | undefined },
  ): Promise<Response> {
    const headers: Record<string, string> = { accept: `${JSON_TYPE}, application/problem+json`, ...this.#headers }
    if (options.contentType !== undefined) headers['content-type'] = options.contentType
    if (options.ifMatch !== undefined) headers['if-match'] = options.ifMatch
    if (options.ifNoneMatch !== undefined) headers['if-none-match'] = options.ifNoneMatch
    const response = await this.#fetch(url, { method, headers, ...(options.body === undefined ? {} : { body: options.body }) })
    if (response.ok || response.status === 304) return response
    throw await problemError(response)
  }
}

function positive(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a whole number of at least 1, got ${value}`)
  return value
}

/** The ETag of a response; the client cannot work without one, so its absence is an error. */
function etagHeader(response: Response): string {
  const etag = response.headers.get('etag')
  if (etag === null) throw new MissingEtagError(response.url)
  return etag
}

/**
 * The target of the `rel="next"` link in a `Link` field (RFC 8288 §3), resolved against `base`.
 * A rel may list several relation types separated by spaces.
 */
export function nextLink(field: string | null, base: string): string | undefined {
  if (field === null) return undefined
  for (const match of field.matchAll(/<([^>]*)>((?:\s*;\s*[^;,]*)*)/g)) {
    const rel = /;\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,"]+))/i.exec(match[2]!)
    const types = (rel?.[1] ?? rel?.[2] ?? '').toLowerCase().split(/\s+/)
    if (types.includes('next')) return new URL(match[1]!, base).href
  }
  return undefined
}
