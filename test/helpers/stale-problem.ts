/**
 * The answer to a write whose If-Match no longer matches (API.md, Writes and mid-air collisions):
 * the message, and the whole application/problem+json body it comes in.
 */

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
