/**
 * Every problem the service answers, in one place (RFC 9457 problem details). Each `type` is
 * chosen once, here; `message` carries the seed's wording where the seed had one.
 */

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

export const problems = {
  missingBody: () =>
    new Problem(400, 'missing-body', 'Bad Request', 'Missing JSON data in request'),
  invalidJson: () =>
    new Problem(400, 'invalid-json', 'Bad Request', 'Request body is not valid JSON'),
  notAnObject: () =>
    new Problem(400, 'invalid-json', 'Bad Request', 'Request body must be a JSON object'),
  personIdMandatory: () =>
    new Problem(400, 'missing-field', 'Bad Request', 'Person ID is mandatory'),
  personNameMandatory: () =>
    new Problem(400, 'missing-field', 'Bad Request', 'Person name is mandatory'),
  invalidField: (field: string, rule: string) =>
    new Problem(400, 'invalid-field', 'Bad Request', `Invalid ${field}: ${rule}`),
  invalidQuery: (parameter: string, rule: string) =>
    new Problem(400, 'invalid-query', 'Bad Request', `Invalid query parameter ${parameter}: ${rule}`),
  badRequest: (detail: string) =>
    new Problem(400, 'bad-request', 'Bad Request', detail),
  /** Another 4xx that Fastify raised about the request itself (414, …). */
  clientError: (status: number, title: string, detail: string) =>
    new Problem(status, 'client-error', title, detail),
  missingToken: () =>
    new Problem(401, 'unauthorized', 'Unauthorized',
      'This request needs an Authorization: Bearer <token> header (the server has API_TOKEN set)',
      { 'www-authenticate': 'Bearer realm="ifmatch"' }),
  invalidToken: () =>
    new Problem(401, 'unauthorized', 'Unauthorized', 'The bearer token is not valid',
      // RFC 6750 §3.1: a token that was sent but is wrong is invalid_token
      { 'www-authenticate': 'Bearer realm="ifmatch", error="invalid_token"' }),
  personNotFound: (id: string) =>
    new Problem(404, 'not-found', 'Not Found', `Person with ID ${id} not found`),
  routeNotFound: (method: string, path: string) =>
    new Problem(404, 'not-found', 'Not Found', `No resource at ${method} ${path}`),
  methodNotAllowed: (method: string, allow: readonly string[]) =>
    new Problem(405, 'method-not-allowed', 'Method Not Allowed',
      `${method} is not allowed here; allowed: ${allow.join(', ')}`, { allow: allow.join(', ') }),
  /** API.md: a changes token the database can no longer answer; the client starts again from 0. */
  changesGone: (why: string) =>
    new Problem(410, 'changes-gone', 'Gone',
      `${why}; start again from since=0`, { 'cache-control': 'no-store' }),
  personExists: (id: string) =>
    new Problem(409, 'already-exists', 'Conflict', `Person with ID ${id} already exists`),
  staleIfMatch: () =>
    new Problem(412, 'precondition-failed', 'Precondition Failed', STALE),
  weakIfMatch: () =>
    new Problem(412, 'precondition-failed', 'Precondition Failed',
      'If-Match held only weak entity tags (W/"…"), and a weak tag never matches for a write' +
      ' (RFC 9110 §13.1.1 uses strong comparison); a proxy or compression may have weakened the ETag.' +
      ' Send the ETag exactly as the server gave it', {}, STALE),
  modifiedSince: () =>
    new Problem(412, 'precondition-failed', 'Precondition Failed',
      'The target was modified after the If-Unmodified-Since date', {}, STALE),
  personAlreadyExistsForCreate: (id: string) =>
    new Problem(412, 'precondition-failed', 'Precondition Failed',
      `Person with ID ${id} already exists (If-None-Match: * only creates)`),
  noneMatchFailed: () =>
    new Problem(412, 'precondition-failed', 'Precondition Failed',
      'If-None-Match matched the current ETag'),
  bodyTooLarge: () =>
    new Problem(413, 'body-too-large', 'Content Too Large',
      `Request body is larger than the limit of ${BODY_LIMIT_BYTES} bytes (64 KiB)`),
  requestTimeout: () =>
    new Problem(408, 'request-timeout', 'Request Timeout', 'The request did not arrive completely within 30 seconds'),
  expectationFailed: () =>
    new Problem(417, 'expectation-failed', 'Expectation Failed',
      'The only expectation this server meets is Expect: 100-continue'),
  unsupportedPatchType: (contentType: string) =>
    new Problem(415, 'unsupported-media-type', 'Unsupported Media Type',
      `PATCH takes a JSON Merge Patch (application/merge-patch+json, RFC 7396), not ${contentType}`,
      { 'accept-patch': 'application/merge-patch+json' }),
  preconditionRequired: (method: string) =>
    new Problem(428, 'precondition-required', 'Precondition Required',
      `${method} needs an If-Match header with the person's current ETag` +
      (method === 'PUT' ? ' (or If-None-Match: * to create a new person)' : '') +
      '; GET the person first to learn it'),
  storeUnavailable: () =>
    new Problem(503, 'store-unavailable', 'Service Unavailable',
      'The database is unavailable right now; retry shortly', { 'retry-after': '1' }),
  notReady: () =>
    new Problem(503, 'not-ready', 'Service Unavailable',
      'The service is shutting down; send requests to another instance', { 'retry-after': '1' }),
  writeContention: () =>
    new Problem(503, 'write-contention', 'Service Unavailable',
      'The person changed too often to complete this write; retry shortly', { 'retry-after': '1' }),
  internal: () =>
    new Problem(500, 'internal', 'Internal Server Error', 'An unexpected error occurred; it has been logged'),
} as const

/** Each problem type, with a sentence on what it means: served at `/problems/{slug}`. */
export const PROBLEM_TYPES: Readonly<Record<string, string>> = {
  'missing-body': 'The request needs a JSON object body and had none.',
  'invalid-json': 'The request body is not a JSON object.',
  'missing-field': 'A mandatory member (person_id on create, person_name) is missing or empty.',
  'invalid-field': 'A member breaks its rule: person_id is 1–64 of A–Z a–z 0–9 . _ ~ -; person_name is 1–200 code points, not only white space, no control characters.',
  'invalid-query': 'A query parameter breaks its rule: limit is a whole number from 1 to 1000; after is a person ID; since is 0 or a token the feed gave (next, or a Link); wait is a whole number of seconds from 1 to 60, with since.',
  'bad-request': 'The request could not be read: a malformed URL, header section or body.',
  'client-error': 'The request was refused for a reason its status code names.',
  unauthorized: 'The server has API_TOKEN set: writes (and reads, with API_TOKEN_READS=1) need Authorization: Bearer <token>.',
  'not-found': 'No such person, or no such resource.',
  'method-not-allowed': 'The method is not supported on this resource; the Allow header lists those that are.',
  'already-exists': 'A person with this ID already exists.',
  'changes-gone': 'The changes feed cannot answer from this token: it comes from another database, from ahead of this one, or from before the oldest tombstone kept. Start again from since=0.',
  'precondition-failed': 'A precondition (If-Match, If-Unmodified-Since, If-None-Match) is false: the person changed since you read it. GET it again and retry with its new ETag.',
  'body-too-large': 'The request body is over 64 KiB.',
  'request-timeout': 'The request did not arrive completely in time; send it again, faster.',
  'expectation-failed': 'The Expect header asked for something other than 100-continue (RFC 9110 §10.1.1).',
  'unsupported-media-type': 'PATCH takes application/merge-patch+json.',
  'precondition-required': 'Writes to an existing person must carry If-Match with its current ETag (RFC 6585 §3), so that no update is silently lost.',
  'store-unavailable': 'The database could not be reached; retry after the Retry-After delay.',
  'not-ready': 'The instance is shutting down and no longer ready for traffic; retry on another instance.',
  'write-contention': 'The person changed too often during this write; retry after the Retry-After delay.',
  internal: 'A bug in the service. It has been logged.',
}
