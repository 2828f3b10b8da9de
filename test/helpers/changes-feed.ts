/**
 * The changes feed (API.md, "Keeping a copy current") as a client sees it over HTTP: one answer,
 * following `next` to the end, a copy of the collection kept by applying what the feed says, and the
 * stored collection to compare that copy with. Plain fetch, no knowledge of the server's insides.
 */
import assert from 'node:assert/strict'

// only to turn a hang into a failure, never to judge speed
const REQUEST_TIMEOUT_MS = 90_000

/** A live person as the feed lists it: the person plus the ETag a GET of it returns. */
export interface LiveItem {
  readonly person_id: string
  readonly person_name: string
  readonly change_date: string
  readonly etag: string
}

/** A deleted person as the feed lists it. */
export interface Tombstone {
  readonly person_id: string
  readonly deleted: true
}

/** One entry of `changes`. */
export type FeedItem = LiveItem | Tombstone

/** The JSON body of a feed answer. */
export interface FeedBody {
  readonly changes: readonly FeedItem[]
  readonly next: string
  readonly complete: boolean
}

/** One answer of the feed (or of the collection), read to its end. */
export interface FeedAnswer {
  readonly status: number
  readonly headers: Headers
  readonly etag: string | null
  readonly text: string
  /** The parsed body when it is JSON, else undefined. */
  readonly json: unknown
}

/** True for a tombstone. */
export function isTombstone(item: FeedItem): item is Tombstone {
  return 'deleted' in item
}

/** The query of a feed request: `since` is required, the rest optional. */
export interface FeedQuery {
  readonly since: string
  readonly limit?: number | string
  readonly wait?: number | string
}

/** The path and query of a feed request. */
export function feedPath(query: FeedQuery): string {
  const params = new URLSearchParams({ since: query.since })
  if (query.limit !== undefined) params.set('limit', String(query.limit))
  if (query.wait !== undefined) params.set('wait', String(query.wait))
  return `/persons?${params.toString()}`
}

/**
 * Sends one request and reads it whole. Identity coding unless the caller asks otherwise, so that
 * ETags compare across requests made different ways.
 */
export async function request(baseUrl: string, path: string, init: RequestInit & { headers?: Record<string, string> } = {}): Promise<FeedAnswer> {
  const response = await fetch(`${baseUrl}${path}`, {
    ...init,
    headers: { 'accept-encoding': 'identity', ...init.headers },
    signal: init.signal ?? AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  })
  const text = await response.text()
  const type = response.headers.get('content-type') ?? ''
  const json = text !== '' && /json/.test(type) ? (JSON.parse(text) as unknown) : undefined
  return { status: response.status, headers: response.headers, etag: response.headers.get('etag'), text, json }
}

/** One feed request: `GET /persons?since=…[&limit=…][&wait=…]`. */
export function readChanges(baseUrl: string, query: FeedQuery, headers: Record<string, string> = {}): Promise<FeedAnswer> {
  return request(baseUrl, feedPath(query), { headers })
}

/** The body of a 200 feed answer, checked for the shape API.md gives it. */
export function feedBody(answer: FeedAnswer): FeedBody {
  assert.equal(answer.status, 200, `feed answered ${answer.status}: ${answer.text}`)
  assert.match(answer.headers.get('content-type') ?? '', /^application\/json(\s*;|$)/)
  const body = answer.json as FeedBody
  assert.deepEqual(Object.keys(body).sort(), ['changes', 'complete', 'next'], answer.text)
  assert.ok(Array.isArray(body.changes), answer.text)
  assert.equal(typeof body.next, 'string', answer.text)
  assert.equal(typeof body.complete, 'boolean', answer.text)
  for (const item of body.changes) assertItemShape(item)
  return body
}

/** An item is exactly a live person with its etag, or exactly a tombstone. */
export function assertItemShape(item: FeedItem): void {
  if (isTombstone(item)) {
    assert.deepEqual(item, { person_id: item.person_id, deleted: true })
    return
  }
  assert.deepEqual(Object.keys(item).sort(), ['change_date', 'etag', 'person_id', 'person_name'], JSON.stringify(item))
  assert.match(item.etag, /^"[\x21\x23-\x7e\x80-\xff]*"$/, `etag of ${item.person_id} is a strong entity-tag`)
}

/** Reads one feed answer and returns its checked body. */
export async function changesSince(baseUrl: string, query: FeedQuery): Promise<FeedBody> {
  return feedBody(await readChanges(baseUrl, query))
}

/** What following the feed to its end gave. */
export interface Followed {
  /** Every item of every answer, in order. */
  readonly items: readonly FeedItem[]
  /** Each answer's body, in order. */
  readonly bodies: readonly FeedBody[]
  /** The `next` of the last answer. */
  readonly next: string
}

// a feed that never says complete would loop for ever: this many answers is a failure
const MAX_ANSWERS = 10_000

/** Follows `next` from `since` until an answer says `complete`. */
export async function followChanges(baseUrl: string, since: string, limit?: number): Promise<Followed> {
  const items: FeedItem[] = []
  const bodies: FeedBody[] = []
  let token = since
  for (let n = 0; n < MAX_ANSWERS; n++) {
    const body = await changesSince(baseUrl, limit === undefined ? { since: token } : { since: token, limit })
    bodies.push(body)
    items.push(...body.changes)
    token = body.next
    if (body.complete) return { items, bodies, next: token }
  }
  throw new Error(`the feed from ${since} never said complete in ${MAX_ANSWERS} answers`)
}

/** A copy of the collection, kept by applying feed items: id → live item. */
export type Copy = Map<string, LiveItem>

/** Applies feed items to a copy, in order: a tombstone removes, a live item sets. */
export function applyChanges(copy: Copy, items: readonly FeedItem[]): Copy {
  for (const item of items) {
    if (isTombstone(item)) copy.delete(item.person_id)
    else copy.set(item.person_id, item)
  }
  return copy
}

/** Each link of a `Link` field value (one or many fields, joined with ', '): rel → target. */
export function linkTargets(value: string | null): Map<string, string> {
  const links = new Map<string, string>()
  if (value === null) return links
  for (const match of value.matchAll(/<([^>]*)>((?:\s*;\s*[^;,]+)*)/g)) {
    const rel = /;\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,]+))/i.exec(match[2] ?? '')
    if (rel === null) continue
    for (const name of (rel[1] ?? rel[2] ?? '').split(/\s+/)) {
      assert.ok(!links.has(name), `two links with rel="${name}" in ${value}`)
      links.set(name, match[1]!)
    }
  }
  return links
}

/** A person as a plain GET (identity coding) returns it. */
export interface StoredPerson {
  readonly status: number
  readonly etag: string | null
  readonly body: { person_id: string; person_name: string; change_date: string } | undefined
}

/** GET /persons/{id}. */
export async function getPerson(baseUrl: string, id: string): Promise<StoredPerson> {
  const answer = await request(baseUrl, `/persons/${encodeURIComponent(id)}`)
  return { status: answer.status, etag: answer.etag, body: answer.status === 200 ? (answer.json as StoredPerson['body']) : undefined }
}

/** The collection read by pages, each person with the ETag of its own GET; and the first page's changes token. */
export interface StoredCollection {
  readonly persons: Copy
  readonly changesToken: string
}

/** The target of a collection page's `rel="changes"` link, as its `since` token. */
export function changesToken(answer: FeedAnswer): string {
  const target = linkTargets(answer.headers.get('link')).get('changes')
  assert.ok(target !== undefined, `a collection page without Link rel="changes": ${answer.headers.get('link')}`)
  const url = new URL(target, 'http://x')
  assert.equal(url.pathname, '/persons', `rel="changes" target ${target}`)
  assert.deepEqual([...url.searchParams.keys()], ['since'], `rel="changes" target ${target}`)
  return url.searchParams.get('since')!
}

/**
 * Reads every page of `GET /persons` (with `limit=1000`), then GETs each person for its ETag. Only
 * consistent while nobody writes: the suites call it once the writers have stopped.
 */
export async function storedCollection(baseUrl: string): Promise<StoredCollection> {
  const persons: Copy = new Map()
  let after: string | undefined
  let token: string | undefined
  for (;;) {
    const query = new URLSearchParams({ limit: '1000' })
    if (after !== undefined) query.set('after', after)
    const page = await request(baseUrl, `/persons?${query.toString()}`)
    assert.equal(page.status, 200, page.text)
    token ??= changesToken(page)
    const list = page.json as { person_id: string; person_name: string; change_date: string }[]
    for (const person of list) {
      const stored = await getPerson(baseUrl, person.person_id)
      assert.equal(stored.status, 200, `GET of listed ${person.person_id}`)
      assert.deepEqual(stored.body, person, `GET of ${person.person_id} equals its entry on the page`)
      persons.set(person.person_id, { ...person, etag: stored.etag! })
    }
    if (!linkTargets(page.headers.get('link')).has('next')) break
    after = list.at(-1)!.person_id
  }
  return { persons, changesToken: token! }
}

/** Asserts that a copy kept from the feed equals the stored collection, person by person and field by field. */
export function assertCopyEquals(copy: Copy, stored: Copy, context = ''): void {
  const sorted = (m: Copy): LiveItem[] => [...m.values()].sort((a, b) => (a.person_id < b.person_id ? -1 : a.person_id > b.person_id ? 1 : 0))
  assert.deepEqual(sorted(copy), sorted(stored), `the copy kept from the feed differs from the stored collection${context}`)
}

/** A token split the way docs/changes-feed.md documents it: `<epoch>.<revision in base 36>`. */
export interface TokenParts {
  readonly epoch: string
  readonly revision: number
}

/** Splits a non-zero token into its documented parts (only to build tokens the server must refuse). */
export function tokenParts(token: string): TokenParts {
  const match = /^([A-Za-z0-9_-]+)\.([0-9a-z]+)$/.exec(token)
  assert.ok(match !== null, `token ${JSON.stringify(token)} is not <epoch>.<base36 revision> as docs/changes-feed.md says`)
  return { epoch: match[1]!, revision: parseInt(match[2]!, 36) }
}

/** Builds a token of the documented form. */
export function makeToken(parts: TokenParts): string {
  return `${parts.epoch}.${parts.revision.toString(36)}`
}

/** A write's result as the feed must later list it: the live person with its ETag, or a tombstone. */
function liveItem(answer: FeedAnswer): LiveItem {
  const person = answer.json as { person_id: string; person_name: string; change_date: string }
  return { person_id: person.person_id, person_name: person.person_name, change_date: person.change_date, etag: answer.etag! }
}

/**
 * Writes one at a time, each acknowledged before the next starts, and logs what each left: a
 * sequential writer's acknowledgement order is the commit order, so the log says exactly what
 * the feed owes a reader from any moment on.
 */
export class Writer {
  /** Every acknowledged write, in commit order. */
  readonly log: FeedItem[] = []
  /** The live persons and their ETags, as this writer left them. */
  readonly current: Copy = new Map()

  /** Where the writes go; a test may point it at another process on the same database. */
  constructor(public baseUrl: string) {}

  /** Creates a person (POST). */
  async create(id: string, name = `Name of ${id}`): Promise<LiveItem> {
    const answer = await request(this.baseUrl, '/persons', { method: 'POST', body: JSON.stringify({ person_id: id, person_name: name }) })
    assert.equal(answer.status, 201, `create ${id}: ${answer.text}`)
    return this.logged(liveItem(answer))
  }

  /** Replaces a person's name (PUT with If-Match), or merges it (PATCH) when `patch` is set. */
  async update(id: string, name: string, patch = false): Promise<LiveItem> {
    const etag = this.current.get(id)?.etag
    assert.ok(etag !== undefined, `the writer has no ${id} to update`)
    const answer = await request(this.baseUrl, `/persons/${encodeURIComponent(id)}`, {
      method: patch ? 'PATCH' : 'PUT',
      headers: { 'if-match': etag, ...(patch ? { 'content-type': 'application/merge-patch+json' } : {}) },
      body: JSON.stringify({ person_name: name }),
    })
    assert.equal(answer.status, 200, `update ${id}: ${answer.text}`)
    return this.logged(liveItem(answer))
  }

  /** Deletes a person (DELETE with If-Match). */
  async delete(id: string): Promise<Tombstone> {
    const etag = this.current.get(id)?.etag
    assert.ok(etag !== undefined, `the writer has no ${id} to delete`)
    const answer = await request(this.baseUrl, `/persons/${encodeURIComponent(id)}`, { method: 'DELETE', headers: { 'if-match': etag } })
    assert.equal(answer.status, 204, `delete ${id}: ${answer.text}`)
    const tombstone: Tombstone = { person_id: id, deleted: true }
    this.log.push(tombstone)
    this.current.delete(id)
    return tombstone
  }

  /** One random write over ids `${prefix}0` … `${prefix}${ids - 1}`: a create when absent, else an update, a patch or a delete. */
  async randomWrite(random: () => number, prefix: string, ids: number): Promise<FeedItem> {
    const id = `${prefix}${Math.floor(random() * ids)}`
    const name = `n${this.log.length}`
    if (!this.current.has(id)) return this.create(id, name)
    const roll = random()
    if (roll < 0.4) return this.update(id, name)
    if (roll < 0.7) return this.update(id, name, true)
    return this.delete(id)
  }

  /** How many writes were acknowledged so far: a moment to compare a token with. */
  mark(): number {
    return this.log.length
  }

  /**
   * What the feed owes a reader whose token was handed out at `mark`: each id written since then
   * once, with its last state, in the order of those last writes; from `since=0` the live ones only.
   */
  expectedSince(mark: number, fromZero = false): FeedItem[] {
    const last = new Map<string, { index: number; item: FeedItem }>()
    for (const [i, item] of this.log.slice(mark).entries()) last.set(item.person_id, { index: mark + i, item })
    return [...last.values()]
      .sort((a, b) => a.index - b.index)
      .map((e) => e.item)
      .filter((item) => !(fromZero && isTombstone(item)))
  }

  private logged(item: LiveItem): LiveItem {
    this.log.push(item)
    this.current.set(item.person_id, item)
    return item
  }
}

/** The checks every problem answer of the feed passes: its status, problem+json, and a body that says so. */
export function assertProblem(answer: FeedAnswer, status: number, context = ''): void {
  assert.equal(answer.status, status, `${context}: answered ${answer.status} ${answer.text}`)
  assert.match(answer.headers.get('content-type') ?? '', /^application\/problem\+json(\s*;|$)/, context)
  const problem = answer.json as { type?: unknown; title?: unknown; status?: unknown; detail?: unknown }
  assert.equal(problem.status, status, context)
  assert.equal(typeof problem.type, 'string', context)
  assert.equal(typeof problem.title, 'string', context)
  assert.equal(typeof problem.detail, 'string', context)
}

/** A small seeded generator (mulberry32), so a failing random run can be replayed from its seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
