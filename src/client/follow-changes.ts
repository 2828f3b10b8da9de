/**
 * Following the changes feed (`GET /persons?since=…`, API.md "Keeping a copy current") for ever:
 * long polls while caught up, revalidates idle polls with `If-None-Match` (a `304` costs no body),
 * rides out network errors and `5xx` answers with full-jitter backoff from the last token it handed
 * out, and starts again from `0` when the service answers `410 Gone`.
 *
 * The unit it yields is a batch (one feed answer), not a single change: a consumer applies the
 * batch, then stores `batch.next`; resuming from that token later (`since: next`) neither skips nor
 * repeats anything. Platform `fetch` and timers only, so it runs in browsers too.
 */
import { fullJitter, sleep } from './backoff.js'
import { FeedAnswerError, ProblemError, problemError } from './errors.js'
import type { Person } from './person.js'

/** A live person as the feed sends it: its members and the ETag a `GET` of it returns. */
export interface FeedPerson extends Person {
  /** The exact `ETag` field value of the person (quotes included): usable in `If-Match` at once. */
  readonly etag: string
  readonly deleted?: undefined
}

/** A deleted person as the feed sends it. */
export interface FeedTombstone {
  readonly person_id: string
  readonly deleted: true
}

/** One entry of the feed: the latest state of one id. */
export type FeedChange = FeedPerson | FeedTombstone

/** One answer of the feed, as `changes()` yields it. */
export interface ChangesBatch {
  /**
   * True on the first batch after the service answered `410 Gone` to the token in use (the
   * database was replaced, restored, or purged past it): the feed starts again from `0`, so a copy
   * must forget everything it holds before applying this batch.
   */
  readonly reset: boolean
  /** The token this batch answers (`0` after a reset). */
  readonly since: string
  /** What changed after `since`, in commit order, each id at most once with its latest state. */
  readonly changes: readonly FeedChange[]
  /** The token to resume from once this batch is applied. */
  readonly next: string
  /** False when the service's `limit` cut the list short: more follows at once. */
  readonly complete: boolean
}

/** How `changes()` follows the feed. */
export interface ChangesOptions {
  /** The token to start after (a `next` kept from an earlier batch); default `0`: the whole collection. */
  readonly since?: string
  /** Changes per answer, 1–1000 (the service's default is 100). */
  readonly limit?: number
  /** Seconds a long poll may be held while nothing changes, 1–60 (default 30). */
  readonly wait?: number
  /** Stops following: the iterator then ends (without an error), even in the middle of a long poll. */
  readonly signal?: AbortSignal
  /** The backoff after the first failure is drawn from 0 to this many milliseconds; it doubles per failure (default 250). */
  readonly baseDelayMs?: number
  /** The most any one backoff may be, in milliseconds (default 30000). */
  readonly maxDelayMs?: number
  /** How long one request may take beyond its `wait` before it counts as a network failure (default 30000 ms). */
  readonly timeoutMs?: number
  /** Told about each failure that will be retried, and how long the iterator waits first. */
  readonly onRetry?: (error: unknown, delayMs: number) => void
}

/** What `followChanges` needs from a client: the collection's URL and how to send a request. */
export interface FeedTransport {
  /** The collection, e.g. `http://127.0.0.1:5000/persons`. */
  readonly collectionUrl: URL
  readonly fetch: typeof fetch
  /** Headers sent with every request (authorisation, …). */
  readonly headers: Readonly<Record<string, string>>
}

const DEFAULT_WAIT_S = 30
const DEFAULT_BASE_DELAY_MS = 250
const DEFAULT_MAX_DELAY_MS = 30_000
const DEFAULT_TIMEOUT_MS = 30_000
// a gateway or an overloaded service answers these; the next try may well succeed
const TRANSIENT = new Set([408, 425, 429, 500, 502, 503, 504])

/** A failure worth retrying: the network, a timeout, or a transient status. */
class TransientFailure extends Error {
  override readonly name = 'TransientFailure'
  constructor(
    message: string,
    readonly retryAfterMs: number,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}

/**
 * Follows the feed from `options.since` (default `0`) until `options.signal` aborts, yielding
 * each answer that carries something: changes, a reset, or the first `complete: true` since the
 * start or the last reset (so an empty collection still tells the consumer it has caught up).
 * Idle long polls that end with nothing new are not yielded. Throws a `ProblemError` for an answer
 * that retrying cannot mend (`BadRequestError` for a malformed token, `limit` or `wait`; a `401`,
 * …) and a `FeedAnswerError` for a `200` that is not a feed answer.
 */
export async function* followChanges(transport: FeedTransport, options: ChangesOptions = {}): AsyncGenerator<ChangesBatch, void, undefined> {
  const wait = options.wait ?? DEFAULT_WAIT_S
  if (!Number.isInteger(wait) || wait < 1 || wait > 60) throw new RangeError(`wait must be a whole number of seconds from 1 to 60, got ${wait}`)
  const baseDelayMs = options.baseDelayMs ?? DEFAULT_BASE_DELAY_MS
  const maxDelayMs = options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const signal = options.signal
  // a function, not a test TypeScript narrows: the signal aborts across every await
  const aborted = (): boolean => signal?.aborted === true

  let since = options.since ?? '0'
  // the next batch must tell the consumer to start over (a 410 sent the feed back to 0)
  let reset = false
  // the last answer was complete: nothing more is waiting, so the next request may be held
  let caughtUp = false
  // a complete batch was yielded since the start or the last reset
  let announced = false
  // the ETag of the last answer, and the token it answered: the feed's tag covers since and limit
  let validator: { since: string; etag: string } | undefined
  let failures = 0

  while (!aborted()) {
    const url = new URL(transport.collectionUrl)
    url.searchParams.set('since', since)
    if (options.limit !== undefined) url.searchParams.set('limit', String(options.limit))
    // not before the first complete answer: a request from 0 on an empty database would be held
    if (caughtUp) url.searchParams.set('wait', String(wait))
    const headers: Record<string, string> = { accept: 'application/json, application/problem+json', ...transport.headers }
    if (validator?.since === since) headers['if-none-match'] = validator.etag

    let answer: { status: 200; etag: string | null; body: FeedAnswer } | { status: 304 } | { status: 410 }
    try {
      answer = await ask(transport.fetch, url, headers, (caughtUp ? wait * 1000 : 0) + timeoutMs, signal)
    } catch (error) {
      if (aborted()) return
      if (!(error instanceof TransientFailure)) throw error
      failures++
      const delay = Math.max(fullJitter(failures, baseDelayMs, maxDelayMs), Math.min(error.retryAfterMs, maxDelayMs))
      options.onRetry?.(error.cause ?? error, delay)
      await sleep(delay, signal)
      continue
    }
    if (answer.status === 410) {
      // 0 is always answerable: a 410 to it is the service's fault, and retrying at once would spin
      if (since === '0') throw new FeedAnswerError(url.href, 'the service answered 410 Gone to since=0')
      since = '0'
      reset = true
      caughtUp = false
      announced = false
      validator = undefined
      continue
    }
    failures = 0
    if (answer.status === 304) {
      caughtUp = true
      continue
    }
    const { body, etag } = answer
    validator = etag === null ? undefined : { since, etag }
    const batch: ChangesBatch = { reset, since, changes: body.changes, next: body.next, complete: body.complete }
    since = body.next
    caughtUp = body.complete
    if (batch.changes.length > 0 || batch.reset || (batch.complete && !announced)) {
      reset = false
      if (batch.complete) announced = true
      yield batch
    }
  }
}

interface FeedAnswer {
  readonly changes: readonly FeedChange[]
  readonly next: string
  readonly complete: boolean
}

/**
 * One request to the feed. Resolves with a feed answer, a `304` or a `410`; rejects with a
 * `TransientFailure` for what a later try may mend, and with the typed problem for anything else.
 */
async function ask(
  fetchFn: typeof fetch,
  url: URL,
  headers: Record<string, string>,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<{ status: 200; etag: string | null; body: FeedAnswer } | { status: 304 } | { status: 410 }> {
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(), timeoutMs)
  const abort = (): void => controller.abort()
  signal?.addEventListener('abort', abort, { once: true })
  try {
    let response: Response
    let text: string
    try {
      response = await fetchFn(url, { method: 'GET', headers, signal: controller.signal })
      if (response.status === 304) return { status: 304 }
      if (response.status === 410) {
        await response.body?.cancel()
        return { status: 410 }
      }
      if (TRANSIENT.has(response.status)) {
        const retryAfterMs = retryAfter(response.headers.get('retry-after'))
        const problem = await problemError(response)
        throw new TransientFailure(`${response.status} from ${url.href}`, retryAfterMs, { cause: problem })
      }
      if (!response.ok) throw await problemError(response)
      text = await response.text()
    } catch (error) {
      if (error instanceof TransientFailure || error instanceof ProblemError || signal?.aborted === true) throw error
      // fetch rejects with a TypeError on a network failure, and the timeout aborts it
      throw new TransientFailure(`request to ${url.href} failed`, 0, { cause: error })
    }
    return { status: 200, etag: response.headers.get('etag'), body: parseAnswer(text, response.url || url.href) }
  } finally {
    clearTimeout(timer)
    signal?.removeEventListener('abort', abort)
  }
}

/** The delay a `Retry-After` field asks for (RFC 9110 §10.2.3), in ms; 0 when absent or unreadable. */
function retryAfter(field: string | null): number {
  if (field === null) return 0
  if (/^\d+$/.test(field.trim())) return Number(field.trim()) * 1000
  const date = Date.parse(field)
  return Number.isNaN(date) ? 0 : Math.max(0, date - Date.now())
}

/** Checks the shape of a feed answer, item by item, so a consumer can trust the types. */
function parseAnswer(text: string, url: string): FeedAnswer {
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    throw new FeedAnswerError(url, 'the body is not JSON')
  }
  if (typeof body !== 'object' || body === null) throw new FeedAnswerError(url, 'the body is not an object')
  const { changes, next, complete } = body as Record<string, unknown>
  if (!Array.isArray(changes)) throw new FeedAnswerError(url, '`changes` is not an array')
  if (typeof next !== 'string' || next === '') throw new FeedAnswerError(url, '`next` is not a token')
  if (typeof complete !== 'boolean') throw new FeedAnswerError(url, '`complete` is not a boolean')
  for (const item of changes as unknown[]) {
    if (!isChange(item)) throw new FeedAnswerError(url, `an item is neither a person with an etag nor a tombstone: ${JSON.stringify(item)}`)
  }
  return { changes: changes as FeedChange[], next, complete }
}

function isChange(item: unknown): item is FeedChange {
  if (typeof item !== 'object' || item === null) return false
  const i = item as Record<string, unknown>
  if (typeof i.person_id !== 'string') return false
  if (i.deleted === true) return true
  return typeof i.person_name === 'string' && typeof i.change_date === 'string' && typeof i.etag === 'string'
}
