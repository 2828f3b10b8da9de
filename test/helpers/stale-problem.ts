/**
 * The problems the HTTP suites expect, built the way API.md words them: first the answer to a
 * write whose If-Match no longer matches (Writes and mid-air collisions), then the others, and
 * the one check that an answer is exactly the expected problem.
 */
import assert from 'node:assert/strict'
import { assertNoLeak } from './leaks.js'

/** The `detail` and `message` of a 412 for a stale If-Match, as API.md words it. */
export const STALE = 'Data already changed, get recent resource data and ETag first'

/** The whole problem body of a 412 for a stale If-Match. */
export const STALE_PROBLEM = {
  type: '/problems/precondition-failed',
  title: 'Precondition Failed',
  status: 412,
  detail: STALE,
  message: STALE,
}

/** A problem as a test expects it; `message` is `detail` unless said otherwise. */
export interface ExpectedProblem {
  readonly status: number
  readonly type: string
  readonly title: string
  readonly detail: string
  readonly message?: string
}

/** A 400 whose `type` is `/problems/${slug}`. */
export function badRequest(slug: string, detail: string): ExpectedProblem {
  return { status: 400, type: `/problems/${slug}`, title: 'Bad Request', detail }
}

/** A 412; `message` is the seed's STALE for the write preconditions, `detail` for the others. */
export function precondition(detail: string, message = detail): ExpectedProblem {
  return { status: 412, type: '/problems/precondition-failed', title: 'Precondition Failed', detail, message }
}

/** The problems both the persons and the preconditions suites expect, in API.md's words. */
export const expectedProblems = {
  invalidJson: (): ExpectedProblem => badRequest('invalid-json', 'Request body is not valid JSON'),
  nameMandatory: (): ExpectedProblem => badRequest('missing-field', 'Person name is mandatory'),
  notFound: (id: string): ExpectedProblem => ({ status: 404, type: '/problems/not-found', title: 'Not Found', detail: `Person with ID ${id} not found` }),
  tooLarge: (): ExpectedProblem => ({
    status: 413,
    type: '/problems/body-too-large',
    title: 'Content Too Large',
    detail: 'Request body is larger than the limit of 65536 bytes (64 KiB)',
  }),
  notMergePatch: (type: string): ExpectedProblem => ({
    status: 415,
    type: '/problems/unsupported-media-type',
    title: 'Unsupported Media Type',
    detail: `PATCH takes a JSON Merge Patch (application/merge-patch+json, RFC 7396), not ${type}`,
  }),
  preconditionRequired: (method: string): ExpectedProblem => {
    const detail =
      `${method} needs an If-Match header with the person's current ETag` +
      (method === 'PUT' ? ' (or If-None-Match: * to create a new person)' : '') +
      '; GET the person first to learn it'
    return { status: 428, type: '/problems/precondition-required', title: 'Precondition Required', detail }
  },
}

/**
 * Asserts a whole RFC 9457 problem: status, media type, exact members, and nothing leaked. The
 * answer to a HEAD (`method`) has the status and media type, and no body.
 */
export async function assertProblem(response: Response, problem: ExpectedProblem, method = 'GET'): Promise<void> {
  assert.equal(response.status, problem.status)
  assert.match(response.headers.get('content-type') ?? '', /^application\/problem\+json(\s*;|$)/)
  const text = await response.text()
  if (method === 'HEAD') {
    assert.equal(text, '')
    return
  }
  assertNoLeak(text, 'the problem')
  assert.deepEqual(JSON.parse(text), {
    type: problem.type,
    title: problem.title,
    status: problem.status,
    detail: problem.detail,
    message: problem.message ?? problem.detail,
  })
}
