/**
 * The errors the client throws, typed from the service's `application/problem+json` bodies
 * (RFC 9457). Every answer the service gives outside 2xx/304 becomes a `ProblemError`, or the
 * subclass named after its status, so callers can `catch` by class instead of by number.
 * Plain TypeScript: no Node-only modules, so it runs in browsers too.
 */
import type { Person } from './person.js'

/** The members of a problem body (RFC 9457 §3), plus the seed's `message`. */
export interface ProblemDetails {
  /** A path on the service that says what the problem means, e.g. `/problems/precondition-failed`. */
  readonly type: string
  readonly title: string
  readonly status: number
  readonly detail: string
  /** The seed's wording (`Data already changed, get recent resource data and ETag first`, …). */
  readonly message: string
}

/** Any answer of the service that is not a success: status, title and message from its problem body. */
export class ProblemError extends Error {
  override readonly name: string = 'ProblemError'
  /** The HTTP status, e.g. 404. */
  readonly status: number
  /** The problem's title, e.g. `Not Found`. */
  readonly title: string
  /** The problem's type, e.g. `/problems/not-found`. */
  readonly type: string
  /** The problem's detail: what went wrong for this request. */
  readonly detail: string
  /** The whole problem body as the service sent it (or as reconstructed when it sent none). */
  readonly problem: ProblemDetails

  constructor(problem: ProblemDetails, options?: { cause?: unknown }) {
    super(problem.message, options)
    this.status = problem.status
    this.title = problem.title
    this.type = problem.type
    this.detail = problem.detail
    this.problem = problem
  }
}

/** `400`: the request was malformed, e.g. a changes-feed token, `limit` or `wait` out of its range. */
export class BadRequestError extends ProblemError {
  override readonly name: string = 'BadRequestError'
}

/** `404`: no person with that id (or no such resource). */
export class NotFoundError extends ProblemError {
  override readonly name: string = 'NotFoundError'
}

/** `409`: `create` for an id that already exists. */
export class AlreadyExistsError extends ProblemError {
  override readonly name: string = 'AlreadyExistsError'
}

/**
 * `412`: the `If-Match` the client sent is stale: someone else changed the person since the client
 * last saw it (a mid-air collision). `get` it again, or use `update`, which does that for you.
 */
export class PreconditionFailedError extends ProblemError {
  override readonly name: string = 'PreconditionFailedError'
}

/**
 * `428`: a write without `If-Match`. The client sends the ETag it last saw; it has seen none for
 * this person yet, so `get` it first (or pass `{ etag }`).
 */
export class PreconditionRequiredError extends ProblemError {
  override readonly name: string = 'PreconditionRequiredError'
}

/**
 * `410`: a changes-feed token the database can no longer answer (from another database, from the
 * future, or older than the tombstones kept). `changes()` handles it by starting again from `0`.
 */
export class GoneError extends ProblemError {
  override readonly name: string = 'GoneError'
}

/** The version of a person the server holds, with the ETag that names it. */
export interface Versioned<T> {
  readonly value: T
  readonly etag: string
}

/**
 * `update()` lost the race on every try: each time it wrote, someone else had written first. Holds
 * both versions so the caller can show them side by side: what this caller meant to write
 * (`intended`, computed from the newest version it read) and what the server holds now (`current`).
 */
export class ConflictError extends PreconditionFailedError {
  override readonly name: string = 'ConflictError'
  /** The id of the person. */
  readonly id: string
  /** The value this caller tried to write on its last try. */
  readonly intended: Person
  /** What the server held after the last try failed, and its ETag: re-send with it to keep yours. */
  readonly current: Versioned<Person>
  /** How many writes were tried. */
  readonly attempts: number

  constructor(fields: { id: string; intended: Person; current: Versioned<Person>; attempts: number; lastProblem: ProblemDetails }) {
    super({
      ...fields.lastProblem,
      detail: `update of person ${fields.id} gave up after ${fields.attempts} tries: each time someone else wrote first. ${fields.lastProblem.detail}`,
    })
    this.id = fields.id
    this.intended = fields.intended
    this.current = fields.current
    this.attempts = fields.attempts
  }
}

/**
 * A response without an `ETag`: the client cannot make conditional requests without one. Across
 * origins in a browser this usually means the server does not list `ETag` in
 * `Access-Control-Expose-Headers`, so the browser hides it (ifmatch's `CORS_ORIGINS` exposes it).
 */
export class MissingEtagError extends Error {
  override readonly name: string = 'MissingEtagError'
  constructor(readonly url: string) {
    super(`the response from ${url || 'the service'} carried no ETag header; across origins, the server must send Access-Control-Expose-Headers: ETag`)
  }
}

/**
 * A `200` from the changes feed whose body is not a feed answer (`{ changes, next, complete }`):
 * something between the client and the service answered in its place, or the URL is wrong.
 */
export class FeedAnswerError extends Error {
  override readonly name: string = 'FeedAnswerError'
  constructor(
    readonly url: string,
    reason: string,
  ) {
    super(`the answer from ${url || 'the service'} is not a changes-feed answer: ${reason}`)
  }
}

// the subclass for each status the client names; any other status is a plain ProblemError
const ERROR_CLASSES: Readonly<Record<number, new (problem: ProblemDetails) => ProblemError>> = {
  400: BadRequestError,
  404: NotFoundError,
  409: AlreadyExistsError,
  410: GoneError,
  412: PreconditionFailedError,
  428: PreconditionRequiredError,
}

/**
 * Reads a failed response into its typed error. A body that is not a problem (a proxy's HTML page,
 * say) still gives a `ProblemError` with the status and the status text.
 */
export async function problemError(response: Response): Promise<ProblemError> {
  const fallback: ProblemDetails = {
    type: 'about:blank',
    title: response.statusText || `HTTP ${response.status}`,
    status: response.status,
    detail: `${response.status} ${response.statusText}`.trim(),
    message: `${response.status} ${response.statusText}`.trim(),
  }
  let problem = fallback
  try {
    problem = toProblem(await response.json(), fallback)
  } catch {
    // not JSON: keep the fallback built from the status line
  }
  const ErrorClass = ERROR_CLASSES[response.status] ?? ProblemError
  return new ErrorClass(problem)
}

function toProblem(body: unknown, fallback: ProblemDetails): ProblemDetails {
  if (typeof body !== 'object' || body === null) return fallback
  const b = body as Record<string, unknown>
  const text = (key: string, otherwise: string): string => (typeof b[key] === 'string' ? (b[key] as string) : otherwise)
  const detail = text('detail', fallback.detail)
  return {
    type: text('type', fallback.type),
    title: text('title', fallback.title),
    // the status line is what happened; a body's status that disagrees does not override it
    status: fallback.status,
    detail,
    message: text('message', detail),
  }
}
