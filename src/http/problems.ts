/**
 * Every problem the service answers, in one place (RFC 9457 problem details). Each `type` is
 * chosen once, here; `message` carries the seed's wording where the seed had one.
 */

import type { PreconditionDecision } from '../core/index.js'

/** A client-visible problem: the body of an `application/problem+json` response. */
export class Problem extends Error {
  override readonly name = 'Problem'
  constructor(
    readonly status: number,
    readonly slug: string,
    readonly title: string,
    readonly detail: string,
    /** Extra response headers this problem needs (Allow, Accept-Patch, Retry-After, …). */
    readonly headers: Readonly<Record<string, string>> = {},
    /** The seed's wording, where it differs from `detail`. */
    readonly seedMessage: string = detail,
  ) {
    super(detail)
  }

  /** The problem type URI (RFC 9457 §3.1.1), relative to the service; documented at that path. */
  get type(): string {
    return `/problems/${this.slug}`
  }

  /** The JSON body: RFC 9457's members plus the seed's `message`. */
  toJSON(): Record<string, unknown> {
    return { type: this.type, title: this.title, status: this.status, detail: this.detail, message: this.seedMessage }
  }
}

/** The limit on request bodies, in bytes (API.md: 64 KiB, `413` beyond). */
export const BODY_LIMIT_BYTES = 64 * 1024

// the seed's wording for a mid-air collision
const STALE = 'Data already changed, get recent resource data and ETag first'

/** One problem type: its status and title, what it means, and the header fields it always carries. */
export interface ProblemType {
  /** The status; `client-error` takes the one Fastify or Node raised. */
  readonly status: number
  readonly title: string
  /** What it means, one or two sentences of Markdown: served at `/problems/{slug}` and tabled in docs/http-api.md. */
  readonly meaning: string
  /** Header fields every answer of this type carries, in words, for the docs. */
  readonly headers?: string
}

/**
 * Every problem type the service answers, by slug: the one catalogue. `/problems/{slug}` serves
 * its meaning, docs/http-api.md's table is written from it (`npm run docs:problems`; a test fails
 * when they differ), and `problems` below builds every answer from it.
 */
export const PROBLEM_TYPES = {
  'missing-body': { status: 400, title: 'Bad Request', meaning: 'The request needs a JSON object body and had none.' },
  'invalid-json': { status: 400, title: 'Bad Request', meaning: 'The request body is not a JSON object.' },
  'missing-field': { status: 400, title: 'Bad Request', meaning: 'A mandatory member (`person_id` on create, `person_name`) is missing or empty.' },
  'invalid-field': {
    status: 400,
    title: 'Bad Request',
    meaning:
      'A member breaks its rule: `person_id` is 1–64 of `A–Z a–z 0–9 . _ ~ -`; `person_name` is 1–200 code points, not only white space, no control characters.',
  },
  'invalid-query': {
    status: 400,
    title: 'Bad Request',
    meaning:
      'A query parameter breaks its rule: `limit` is a whole number from 1 to 1000; `after` is a person ID; `since` is `0` or a token the feed gave (`next`, or a `Link`); `wait` is a whole number of seconds from 1 to 60, with `since`.',
  },
  'bad-request': { status: 400, title: 'Bad Request', meaning: 'The request could not be read: a malformed URL, header section or body.' },
  'client-error': { status: 400, title: 'Client Error', meaning: 'The request was refused for a reason its status code names (such as `414`).' },
  unauthorized: {
    status: 401,
    title: 'Unauthorized',
    meaning: 'The server has `API_TOKEN` set: writes (and reads, with `API_TOKEN_READS=1`) need `Authorization: Bearer <token>`.',
    headers: '`WWW-Authenticate: Bearer realm="ifmatch"` (with `error="invalid_token"` for a wrong token)',
  },
  'not-found': { status: 404, title: 'Not Found', meaning: 'No such person, or no such resource.' },
  'method-not-allowed': {
    status: 405,
    title: 'Method Not Allowed',
    meaning: 'The method is not supported on this resource; the `Allow` header lists those that are.',
    headers: '`Allow`',
  },
  'request-timeout': { status: 408, title: 'Request Timeout', meaning: 'The request did not arrive completely in time (30 seconds); send it again, faster.' },
  'already-exists': { status: 409, title: 'Conflict', meaning: 'A person with this ID already exists.' },
  'changes-gone': {
    status: 410,
    title: 'Gone',
    meaning:
      'The changes feed cannot answer from this token: it comes from another database, from ahead of this one, or from before the oldest tombstone kept. Start again from `since=0`.',
    headers: '`Cache-Control: no-store`',
  },
  'precondition-failed': {
    status: 412,
    title: 'Precondition Failed',
    meaning:
      'A precondition (`If-Match`, `If-Unmodified-Since`, `If-None-Match`) is false: the person changed since you read it. GET it again and retry with its new ETag.',
  },
  'body-too-large': { status: 413, title: 'Content Too Large', meaning: 'The request body is over 64 KiB.' },
  'unsupported-media-type': {
    status: 415,
    title: 'Unsupported Media Type',
    meaning: 'PATCH takes `application/merge-patch+json`.',
    headers: '`Accept-Patch: application/merge-patch+json`',
  },
  'expectation-failed': {
    status: 417,
    title: 'Expectation Failed',
    meaning: 'The `Expect` header asked for something other than `100-continue` (RFC 9110 §10.1.1).',
  },
  'precondition-required': {
    status: 428,
    title: 'Precondition Required',
    meaning: 'Writes to an existing person must carry `If-Match` with its current ETag (RFC 6585 §3), so that no update is silently lost.',
  },
  internal: { status: 500, title: 'Internal Server Error', meaning: 'A bug in the service. It has been logged.' },
  'store-unavailable': {
    status: 503,
    title: 'Service Unavailable',
    meaning: 'The database could not be reached; retry after the `Retry-After` delay.',
    headers: '`Retry-After: 1`',
  },
  'not-ready': {
    status: 503,
    title: 'Service Unavailable',
    meaning: 'The instance is shutting down and no longer ready for traffic; retry on another instance.',
    headers: '`Retry-After: 1`',
  },
  'write-contention': {
    status: 503,
    title: 'Service Unavailable',
    meaning: 'The person changed too often during this write; retry after the `Retry-After` delay.',
    headers: '`Retry-After: 1`',
  },
} as const satisfies Readonly<Record<string, ProblemType>>

/** A problem type's slug: the last segment of its `type`. */
export type ProblemSlug = keyof typeof PROBLEM_TYPES

/** True when `slug` names a problem type. */
export function isProblemSlug(slug: string): slug is ProblemSlug {
  return Object.hasOwn(PROBLEM_TYPES, slug)
}

/**
 * The answer of type `slug` with this `detail`; `seedMessage` is the seed's wording where it
 * differs, `status` and `title` are for `client-error` only.
 */
function problem(
  slug: ProblemSlug,
  detail: string,
  options: { headers?: Readonly<Record<string, string>>; seedMessage?: string; status?: number; title?: string } = {},
): Problem {
  const type: ProblemType = PROBLEM_TYPES[slug]
  return new Problem(options.status ?? type.status, slug, options.title ?? type.title, detail, options.headers ?? {}, options.seedMessage ?? detail)
}

const RETRY_SOON = { 'retry-after': '1' }

export const problems = {
  missingBody: () => problem('missing-body', 'Missing JSON data in request'),
  invalidJson: () => problem('invalid-json', 'Request body is not valid JSON'),
  notAnObject: () => problem('invalid-json', 'Request body must be a JSON object'),
  personIdMandatory: () => problem('missing-field', 'Person ID is mandatory'),
  personNameMandatory: () => problem('missing-field', 'Person name is mandatory'),
  invalidField: (field: string, rule: string) => problem('invalid-field', `Invalid ${field}: ${rule}`),
  invalidQuery: (parameter: string, rule: string) => problem('invalid-query', `Invalid query parameter ${parameter}: ${rule}`),
  badRequest: (detail: string) => problem('bad-request', detail),
  /** Another 4xx that Fastify raised about the request itself (414, …). */
  clientError: (status: number, title: string, detail: string) => problem('client-error', detail, { status, title }),
  missingToken: () =>
    problem('unauthorized', 'This request needs an Authorization: Bearer <token> header (the server has API_TOKEN set)', {
      headers: { 'www-authenticate': 'Bearer realm="ifmatch"' },
    }),
  invalidToken: () =>
    problem(
      'unauthorized',
      'The bearer token is not valid',
      // RFC 6750 §3.1: a token that was sent but is wrong is invalid_token
      { headers: { 'www-authenticate': 'Bearer realm="ifmatch", error="invalid_token"' } },
    ),
  personNotFound: (id: string) => problem('not-found', `Person with ID ${id} not found`),
  routeNotFound: (method: string, path: string) => problem('not-found', `No resource at ${method} ${path}`),
  methodNotAllowed: (method: string, allow: readonly string[]) =>
    problem('method-not-allowed', `${method} is not allowed here; allowed: ${allow.join(', ')}`, { headers: { allow: allow.join(', ') } }),
  /** API.md: a changes token the database can no longer answer; the client starts again from 0. */
  changesGone: (why: string) => problem('changes-gone', `${why}; start again from since=0`, { headers: { 'cache-control': 'no-store' } }),
  personExists: (id: string) => problem('already-exists', `Person with ID ${id} already exists`),
  staleIfMatch: () => problem('precondition-failed', STALE),
  weakIfMatch: () =>
    problem(
      'precondition-failed',
      'If-Match named the current ETag only in weak form (W/"…"), or held only weak entity tags, and a weak tag never matches for a write' +
        ' (RFC 9110 §13.1.1 uses strong comparison); a proxy or compression may have weakened the ETag.' +
        ' Send the ETag exactly as the server gave it',
      { seedMessage: STALE },
    ),
  modifiedSince: () => problem('precondition-failed', 'The target was modified after the If-Unmodified-Since date', { seedMessage: STALE }),
  personAlreadyExistsForCreate: (id: string) => problem('precondition-failed', `Person with ID ${id} already exists (If-None-Match: * only creates)`),
  noneMatchFailed: () => problem('precondition-failed', 'If-None-Match matched the current ETag'),
  bodyTooLarge: () => problem('body-too-large', `Request body is larger than the limit of ${BODY_LIMIT_BYTES} bytes (64 KiB)`),
  requestTimeout: () => problem('request-timeout', 'The request did not arrive completely within 30 seconds'),
  expectationFailed: () => problem('expectation-failed', 'The only expectation this server meets is Expect: 100-continue'),
  unsupportedPatchType: (contentType: string) =>
    problem('unsupported-media-type', `PATCH takes a JSON Merge Patch (application/merge-patch+json, RFC 7396), not ${contentType}`, {
      headers: { 'accept-patch': 'application/merge-patch+json' },
    }),
  preconditionRequired: (method: string) =>
    problem(
      'precondition-required',
      `${method} needs an If-Match header with the person's current ETag` +
        (method === 'PUT' ? ' (or If-None-Match: * to create a new person)' : '') +
        '; GET the person first to learn it',
    ),
  storeUnavailable: () => problem('store-unavailable', 'The database is unavailable right now; retry shortly', { headers: RETRY_SOON }),
  notReady: () => problem('not-ready', 'The service is shutting down; send requests to another instance', { headers: RETRY_SOON }),
  writeContention: () => problem('write-contention', 'The person changed too often to complete this write; retry shortly', { headers: RETRY_SOON }),
  internal: () => problem('internal', 'An unexpected error occurred; it has been logged'),
} as const

/** The table of docs/http-api.md's "Errors" section, as Markdown rows, from the catalogue. */
export function problemTypesTable(): string {
  const rows = Object.entries(PROBLEM_TYPES).map(([slug, type]: [string, ProblemType]) => {
    const status = slug === 'client-error' ? 'its own 4xx' : String(type.status)
    return `| \`${slug}\` | ${status} | ${type.meaning} |${type.headers === undefined ? '' : ` ${type.headers}`} |`
  })
  return ['| `type` slug | status | meaning | extra headers |', '| --- | --- | --- | --- |', ...rows].join('\n')
}

/** What `/problems/{slug}` answers: the meaning in plain text. */
export function problemTypeText(slug: ProblemSlug): string {
  return `${slug}: ${PROBLEM_TYPES[slug].meaning.replaceAll('`', '')}\n`
}

/**
 * The problem of a 412 or 428 decision (undefined for proceed and not-modified): which field
 * failed, and for If-Match whether a weak tag is why. `createOnly` is a PUT with If-None-Match: *.
 */
export function preconditionProblem(decision: PreconditionDecision, method: string, id: string, createOnly: boolean): Problem | undefined {
  if (decision.outcome === 'precondition-required') return problems.preconditionRequired(method)
  if (decision.outcome !== 'precondition-failed') return undefined
  const { failed } = decision
  if (failed.field === 'if-match') return failed.becauseWeak ? problems.weakIfMatch() : problems.staleIfMatch()
  if (failed.field === 'if-unmodified-since') return problems.modifiedSince()
  return createOnly ? problems.personAlreadyExistsForCreate(id) : problems.noneMatchFailed()
}
