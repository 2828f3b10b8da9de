/**
 * The JSON Schemas of the routes. Fastify validates params, querystring and headers with them,
 * and @fastify/swagger turns the very same objects into the OpenAPI document at /openapi.json.
 * Request bodies are read as raw text (API.md's answer order puts 404 before 400), so their
 * schemas are documentation only: they state the rules person-input.ts checks, from its constants.
 */
import type { FastifyError, FastifyRequest, FastifySchema } from 'fastify'
import { MAX_NAME_CODE_POINTS, PERSON_ID_PATTERN, PERSON_ID_RULE } from './person-input.js'
import { BODY_LIMIT_BYTES, type Problem, problems } from './problems.js'

/** API.md: `limit` is a whole number from 1 to 1000 (at most four digits, leading zeros allowed). */
export const MAX_PAGE_LIMIT = 1000
/** API.md: a page holds 100 persons unless `limit` says otherwise. */
export const DEFAULT_PAGE_LIMIT = 100
export const PAGE_LIMIT_PATTERN = '^(?=[0-9]{1,4}$)0*(?:[1-9][0-9]{0,2}|1000)$'
/** API.md: a long poll waits 1–60 seconds. */
export const MAX_WAIT_SECONDS = 60
const WAIT_PATTERN = '^(?=[0-9]{1,3}$)0*(?:[1-9]|[1-5][0-9]|60)$'

/** What each query parameter must be, in the words of the 400 that says it is not. */
export const QUERY_RULES: Readonly<Record<string, string>> = {
  limit: `must be a whole number from 1 to ${MAX_PAGE_LIMIT}`,
  after: 'must be one person ID (1–64 characters of A–Z a–z 0–9 . _ ~ -)',
  since: 'must be 0 or a token the changes feed gave (its next, or a Link)',
  wait: `must be a whole number of seconds from 1 to ${MAX_WAIT_SECONDS}, and goes with since`,
}

const personId = {
  type: 'string',
  pattern: PERSON_ID_PATTERN,
  description: `A person ID: ${PERSON_ID_RULE.replace(/^must be /, '')}; chosen by the client.`,
} as const

const personName = {
  type: 'string',
  minLength: 1,
  maxLength: MAX_NAME_CODE_POINTS,
  // not only white space, and no control characters U+0000–U+001F, U+007F
  pattern: '^(?=[\\s\\S]*\\S)[^\\u0000-\\u001F\\u007F]+$',
  description: `1–${MAX_NAME_CODE_POINTS} Unicode code points, not only white space, no control characters.`,
} as const

/** A person as the service sends it. */
export const PERSON_SCHEMA = {
  type: 'object',
  required: ['person_id', 'person_name', 'change_date'],
  properties: {
    person_id: personId,
    person_name: personName,
    change_date: {
      type: 'string',
      format: 'date-time',
      description: 'Set by the server on every write: RFC 3339, UTC, milliseconds.',
    },
  },
} as const

/** An RFC 9457 problem, plus the seed's `message`. */
export const PROBLEM_SCHEMA = {
  type: 'object',
  required: ['type', 'title', 'status', 'detail', 'message'],
  properties: {
    type: { type: 'string', description: 'A path on this service that explains the problem type.' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    message: { type: 'string', description: "The seed's wording, where it had one." },
  },
} as const

/** A changes feed answer. */
export const CHANGES_SCHEMA = {
  type: 'object',
  required: ['changes', 'next', 'complete'],
  properties: {
    changes: {
      type: 'array',
      description: 'Every person created, updated or deleted after since, in commit order, each ID at most once with its latest state.',
      items: {
        oneOf: [
          {
            type: 'object',
            required: ['person_id', 'person_name', 'change_date', 'etag'],
            properties: {
              ...PERSON_SCHEMA.properties,
              etag: { type: 'string', description: 'The ETag a GET of the person returns (quotes included), usable in If-Match.' },
            },
          },
          {
            type: 'object',
            required: ['person_id', 'deleted'],
            properties: { person_id: PERSON_SCHEMA.properties.person_id, deleted: { type: 'boolean', enum: [true] } },
          },
        ],
      },
    },
    next: { type: 'string', description: 'The token to send as since next time; equal to since when nothing changed.' },
    complete: { type: 'boolean', description: 'False when limit cut the list short (a Link rel="next" then names the rest).' },
  },
} as const

const unknownMembers = 'Unknown members are ignored. The body is parsed as JSON whatever its Content-Type says.'

/** Documentation of the POST body (not validated by Fastify: see the file comment). */
const CREATE_BODY = {
  type: 'object',
  required: ['person_id', 'person_name'],
  properties: { person_id: personId, person_name: personName },
  description: `A new person. ${unknownMembers} At most ${BODY_LIMIT_BYTES} bytes.`,
} as const

/** Documentation of the PUT body. */
const REPLACE_BODY = {
  type: 'object',
  required: ['person_name'],
  properties: { person_id: { ...personId, description: 'If present, must equal the ID in the URL.' }, person_name: personName },
  description: `The new state of the person. ${unknownMembers} At most ${BODY_LIMIT_BYTES} bytes.`,
} as const

/** Documentation of the PATCH body (RFC 7396). */
const MERGE_PATCH_BODY = {
  type: 'object',
  properties: { person_id: { ...personId, description: 'If present, must equal the ID in the URL.' }, person_name: personName },
  description: `A JSON Merge Patch (RFC 7396): an absent member keeps its value; person_name cannot be null. ${unknownMembers}`,
} as const

const etagHeader = { type: 'string', description: 'The strong entity tag of the representation (RFC 9110 §8.8.3); never reused for another one.' }
const lastModifiedHeader = { type: 'string', description: 'change_date as an HTTP-date (RFC 9110 §8.8.2).' }
const cacheControlHeader = { type: 'string', description: 'no-cache: caches may store the response but must revalidate it.' }
const varyHeader = { type: 'string', description: 'accept-encoding (a feed answer: accept, accept-encoding): a cache keeps one copy per coding.' }
const validatorHeaders = { ETag: etagHeader, 'Last-Modified': lastModifiedHeader, 'Cache-Control': cacheControlHeader, Vary: varyHeader }
const contentEncodingHeader = {
  type: 'string',
  description:
    'br or gzip (zstd on a Node that has it) when Accept-Encoding allows: pages and feed answers only; each coding has its own strong ETag (<identity tag>+<coding>).',
}

function json(description: string, schema: object, headers: object = {}) {
  return { description, headers, content: { 'application/json': { schema } } }
}

function problem(description: string, headers: object = {}) {
  return { description, headers, content: { 'application/problem+json': { schema: PROBLEM_SCHEMA } } }
}

const RESPONSES = {
  notModified: {
    type: 'null',
    description: 'Not Modified: If-None-Match matched (weak comparison) or If-Modified-Since held; no body.',
    headers: validatorHeaders,
  },
  badRequest: problem('Bad Request: the body, a field or a query parameter breaks its rule.'),
  unauthorized: problem('Unauthorized: API_TOKEN is set and the request has no valid bearer token.', {
    'WWW-Authenticate': { type: 'string', description: 'Bearer realm="ifmatch"' },
  }),
  notFound: problem('Not Found: no person with this ID (answered before any precondition).'),
  preconditionFailed: problem(
    'Precondition Failed: If-Match did not match (strong comparison), If-Unmodified-Since failed, or If-None-Match matched on a write.',
  ),
  tooLarge: problem(`Content Too Large: the body is over ${BODY_LIMIT_BYTES} bytes.`),
  preconditionRequired: problem('Precondition Required (RFC 6585 §3): a write to an existing person needs If-Match.'),
  unavailable: problem('Service Unavailable: the database is unreachable or too contended; retry after Retry-After.', {
    'Retry-After': { type: 'string', description: 'Seconds to wait.' },
  }),
} as const

/** RFC 9110 §13.1: the conditional request header fields (Fastify matches header names case-insensitively). */
const ifMatch = {
  type: 'string',
  description:
    'Entity tags, or *; the request proceeds only if one matches by strong comparison (RFC 9110 §13.1.1). Required on writes to an existing person (428 otherwise).',
}
const ifNoneMatch = {
  type: 'string',
  description: 'Entity tags, or *; matched by weak comparison (RFC 9110 §13.1.2): 304 for GET/HEAD, 412 for writes. Unquoted tags are accepted.',
}
const ifModifiedSince = { type: 'string', description: 'An HTTP-date; 304 when not modified since (ignored when If-None-Match is present).' }
const ifUnmodifiedSince = {
  type: 'string',
  description: 'An HTTP-date; 412 when modified since (ignored when If-Match is present). Never replaces If-Match on a write.',
}

const readHeaders = {
  type: 'object',
  properties: { 'If-None-Match': ifNoneMatch, 'If-Modified-Since': ifModifiedSince, 'If-Match': ifMatch, 'If-Unmodified-Since': ifUnmodifiedSince },
} as const
const writeHeaders = {
  type: 'object',
  properties: { 'If-Match': ifMatch, 'If-Unmodified-Since': ifUnmodifiedSince },
} as const
const putHeaders = {
  type: 'object',
  properties: {
    ...writeHeaders.properties,
    'If-None-Match': { type: 'string', description: '* creates the person (201), and fails with 412 when it exists.' },
  },
} as const

const idParams = { type: 'object', required: ['id'], properties: { id: personId } } as const

/** A write route may need a bearer token (API_TOKEN); `{}` says it may also need none. */
const WRITE_SECURITY = [{ bearerToken: [] }, {}]
const PERSONS = ['persons']

/** The schema of each persons route, by method and URL. */
export const PERSON_SCHEMAS = {
  read: {
    tags: PERSONS,
    operationId: 'getPerson',
    summary: 'Read a person (HEAD: the same without the body)',
    params: idParams,
    headers: readHeaders,
    response: {
      200: json('The person.', PERSON_SCHEMA, validatorHeaders),
      304: RESPONSES.notModified,
      404: RESPONSES.notFound,
      412: RESPONSES.preconditionFailed,
      503: RESPONSES.unavailable,
    },
  },
  create: {
    tags: PERSONS,
    operationId: 'createPerson',
    summary: 'Create a person',
    security: WRITE_SECURITY,
    body: CREATE_BODY,
    response: {
      201: json('Created.', PERSON_SCHEMA, { ...validatorHeaders, Location: { type: 'string', description: "The new person's URL." } }),
      400: RESPONSES.badRequest,
      401: RESPONSES.unauthorized,
      409: problem('Conflict: a person with this ID already exists.'),
      413: RESPONSES.tooLarge,
      503: RESPONSES.unavailable,
    },
  },
  replace: {
    tags: PERSONS,
    operationId: 'replacePerson',
    summary: 'Replace a person (If-Match), or create one (If-None-Match: *)',
    security: WRITE_SECURITY,
    params: idParams,
    headers: putHeaders,
    body: REPLACE_BODY,
    response: {
      200: json('Replaced.', PERSON_SCHEMA, validatorHeaders),
      201: json('Created (If-None-Match: *).', PERSON_SCHEMA, { ...validatorHeaders, Location: { type: 'string' } }),
      400: RESPONSES.badRequest,
      401: RESPONSES.unauthorized,
      404: RESPONSES.notFound,
      412: RESPONSES.preconditionFailed,
      413: RESPONSES.tooLarge,
      428: RESPONSES.preconditionRequired,
      503: RESPONSES.unavailable,
    },
  },
  patch: {
    tags: PERSONS,
    operationId: 'patchPerson',
    summary: 'Change a person with a JSON Merge Patch (If-Match)',
    security: WRITE_SECURITY,
    params: idParams,
    headers: writeHeaders,
    body: { content: { 'application/merge-patch+json': { schema: MERGE_PATCH_BODY } } },
    response: {
      200: json('Changed.', PERSON_SCHEMA, validatorHeaders),
      400: RESPONSES.badRequest,
      401: RESPONSES.unauthorized,
      404: RESPONSES.notFound,
      412: RESPONSES.preconditionFailed,
      413: RESPONSES.tooLarge,
      415: problem('Unsupported Media Type: another patch format than JSON Merge Patch.', { 'Accept-Patch': { type: 'string' } }),
      428: RESPONSES.preconditionRequired,
      503: RESPONSES.unavailable,
    },
  },
  delete: {
    tags: PERSONS,
    operationId: 'deletePerson',
    summary: 'Delete a person (If-Match)',
    security: WRITE_SECURITY,
    params: idParams,
    headers: writeHeaders,
    response: {
      204: { type: 'null', description: 'Deleted.' },
      401: RESPONSES.unauthorized,
      404: RESPONSES.notFound,
      412: RESPONSES.preconditionFailed,
      428: RESPONSES.preconditionRequired,
      503: RESPONSES.unavailable,
    },
  },
  list: {
    tags: PERSONS,
    operationId: 'listPersons',
    summary: 'A page of persons, sorted by ID in code-point order (HEAD: without the body)',
    querystring: {
      type: 'object',
      properties: {
        limit: { type: 'string', pattern: PAGE_LIMIT_PATTERN, description: `Persons per page: 1–${MAX_PAGE_LIMIT} (default ${DEFAULT_PAGE_LIMIT}).` },
        after: { ...personId, description: 'Only persons whose ID comes after this one (not with since).' },
        since: {
          type: 'string',
          maxLength: 100,
          description:
            'The changes feed: only what changed after this token (0: from nothing; else a `next` or a rel="changes"/rel="next" Link the service gave). Answers a ChangesAnswer instead of a page, or an event stream to Accept: text/event-stream (Last-Event-ID takes precedence over since).',
        },
        wait: {
          type: 'string',
          pattern: WAIT_PATTERN,
          description: `With since: while nothing has changed, hold the request up to this many seconds (1–${MAX_WAIT_SECONDS}) and answer as soon as a write commits.`,
        },
      },
    },
    headers: {
      type: 'object',
      properties: {
        ...readHeaders.properties,
        Accept: {
          type: 'string',
          description:
            'With since: text/event-stream answers a Server-Sent Events stream, one `change` event per item, `id:` the token after it, a comment at least every 15 s.',
        },
        'Last-Event-ID': { type: 'string', description: 'With Accept: text/event-stream: resume after this token (EventSource sends it on reconnection).' },
      },
    },
    response: {
      200: {
        description:
          'Without since: the page; its ETag changes whenever any person is created, updated or deleted. With since: the changes after it, in commit order (or, to Accept: text/event-stream, a stream of them).',
        headers: {
          ...validatorHeaders,
          Link: {
            type: 'string',
            description:
              'A page: <…>; rel="next" when there is a next page, and <…?since=…>; rel="changes", the moment it was read. A feed answer: <…>; rel="next" when limit cut it short.',
          },
          'Content-Encoding': contentEncodingHeader,
        },
        content: {
          'application/json': { schema: { oneOf: [{ type: 'array', items: PERSON_SCHEMA }, CHANGES_SCHEMA] } },
          'text/event-stream': { schema: { type: 'string', description: 'event: change / id: <token> / data: <a ChangesAnswer item>, one per item.' } },
        },
      },
      304: RESPONSES.notModified,
      400: RESPONSES.badRequest,
      410: problem(
        'Gone: the since token comes from another database, is ahead of it, or is older than the tombstones kept. Cache-Control: no-store. Start again from since=0.',
      ),
      412: RESPONSES.preconditionFailed,
      503: RESPONSES.unavailable,
    },
  },
} as const

/**
 * Route options from a route's schema. Fastify validates params, querystring and headers; the body
 * schema only documents (bodies are raw text, judged by the route after its 404: API.md's order),
 * so it travels in `config.openapiBody`, which openapi.ts puts into the document.
 */
export function routeOptions(documented: object): { schema: FastifySchema; config: { openapiBody: unknown } } {
  const { body, ...schema } = documented as { body?: unknown }
  return { schema, config: { openapiBody: body } }
}

/** The schema of a plain-text or JSON operations route (health, metrics, documentation). */
export function operationsSchema(operationId: string, summary: string, response: Record<number, object>): object {
  return { tags: ['operations'], operationId, summary, response }
}

/** The answers the operations routes document: a JSON status, plain text, and their problems. */
export const OPERATIONS_RESPONSES = {
  status: (description: string) => json(description, { type: 'object', properties: { status: { type: 'string' } } }),
  text: (description: string, type = 'text/plain') => ({ description, content: { [type]: { schema: { type: 'string' } } } }),
  unavailable: RESPONSES.unavailable,
  notFound: problem('Not Found.'),
} as const

/**
 * The problem for a request Fastify's schema validation refused, worded as the contract words it.
 * A person id outside the id rule is handled by the persons routes (it is a 404 there).
 */
export function validationProblem(error: FastifyError, request: FastifyRequest): Problem {
  if (error.validationContext === 'querystring') {
    const parameter = error.validation?.[0]?.instancePath.replace(/^\//, '') ?? ''
    const rule = Object.hasOwn(QUERY_RULES, parameter) ? QUERY_RULES[parameter] : undefined
    if (rule !== undefined) return problems.invalidQuery(parameter, rule)
  }
  return problems.badRequest(`The request's ${error.validationContext ?? 'input'} does not match ${request.method} ${request.routeOptions.url ?? ''}`)
}
