/**
 * The one read decision (src/http/conditional-read.ts): decideRead answers the commonest
 * revalidation (If-None-Match with exactly the tag of the coding the request gets) before
 * evaluating the header fields in full. Here it is compared with the full evaluation on generated
 * requests: the two must give the same decision, field for field, for every request.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import type { IncomingHttpHeaders } from 'node:http'
import { decideRead, decideReadInFull, pageTarget, personTarget, type ReadTarget } from '../../src/http/conditional-read.js'
import { formatHttpDate } from '../../src/core/index.js'

const EPOCH = 'kX3fQ9vT1bZq'
const CHANGED_AT = Date.UTC(2026, 11, 3, 12, 0, 0, 250)
const PERSON = personTarget(EPOCH, { version: 1234, changedAt: CHANGED_AT })
const PAGE = pageTarget(EPOCH, { revision: 5678, changedAt: CHANGED_AT, horizon: 0 }, 100, undefined)
const PAGE_AFTER = pageTarget(EPOCH, { revision: 5678, changedAt: CHANGED_AT, horizon: 0 }, 10, 'p0042')
// no target of the service is weak; the decision must still be right for one
const WEAK: ReadTarget = { etag: { weak: true, opaque: `${EPOCH}.w` }, lastModified: CHANGED_AT, coded: true }
const TARGETS: readonly ReadTarget[] = [PERSON, PAGE, PAGE_AFTER, WEAK]

// tags a client may send: each target's own in every coding, strong, weak or unquoted; stale ones
function tagsNear(target: ReadTarget): string[] {
  const opaques = ['', '+br', '+gzip', '+zstd', '+deflate'].map((suffix) => target.etag.opaque + suffix)
  const stale = [`${EPOCH}.1`, `${EPOCH}.1+br`, 'other']
  return [...opaques, ...stale].flatMap((o) => [`"${o}"`, `W/"${o}"`, o, ` "${o}" `])
}

const ACCEPT_ENCODINGS = [undefined, '', 'identity', 'gzip', 'br', 'gzip, deflate, br, zstd', 'br;q=0, gzip', 'br;q=0', '*', 'x-gzip', 'gzip;q=0.5, br;q=0.4']
const DATES = [undefined, 'garbage', formatHttpDate(CHANGED_AT - 60_000), formatHttpDate(CHANGED_AT), formatHttpDate(CHANGED_AT + 60_000)]

const arbRequest = fc.integer({ min: 0, max: TARGETS.length - 1 }).chain((t) => {
  const target = TARGETS[t]!
  const tags = tagsNear(target)
  const arbTagField = fc.oneof(
    fc.constant(undefined),
    fc.constantFrom(...tags, '*', '', '"a", "b"'),
    fc.array(fc.constantFrom(...tags), { minLength: 1, maxLength: 3 }).map((members) => members.join(', ')),
  )
  return fc.record({
    target: fc.constant(target),
    method: fc.constantFrom('GET', 'HEAD'),
    ifNoneMatch: arbTagField,
    ifMatch: arbTagField,
    ifModifiedSince: fc.constantFrom(...DATES),
    ifUnmodifiedSince: fc.constantFrom(...DATES),
    acceptEncoding: fc.constantFrom(...ACCEPT_ENCODINGS),
  })
})

function headersOf(r: {
  ifNoneMatch?: string
  ifMatch?: string
  ifModifiedSince?: string
  ifUnmodifiedSince?: string
  acceptEncoding?: string
}): IncomingHttpHeaders {
  const headers: IncomingHttpHeaders = {}
  if (r.ifNoneMatch !== undefined) headers['if-none-match'] = r.ifNoneMatch
  if (r.ifMatch !== undefined) headers['if-match'] = r.ifMatch
  if (r.ifModifiedSince !== undefined) headers['if-modified-since'] = r.ifModifiedSince
  if (r.ifUnmodifiedSince !== undefined) headers['if-unmodified-since'] = r.ifUnmodifiedSince
  if (r.acceptEncoding !== undefined) headers['accept-encoding'] = r.acceptEncoding
  return headers
}

describe('decideRead', () => {
  it('decides every generated request as the full evaluation does', () => {
    fc.assert(
      fc.property(arbRequest, (r) => {
        const headers = headersOf(r)
        assert.deepEqual(decideRead(r.target, r.method, headers), decideReadInFull(r.target, r.method, headers), JSON.stringify(headers))
      }),
      { seed: 9110, numRuns: 5000 },
    )
  })

  // the requests its shortcut must leave to the full evaluation, each beside the exact tag
  const personTag = `"${PERSON.etag.opaque}"`
  const pageTag = `"${PAGE.etag.opaque}"`
  const cases: { name: string; target: ReadTarget; headers: IncomingHttpHeaders; outcome: string; etag?: string }[] = [
    {
      name: 'a person revalidated with its tag: 304 with that tag',
      target: PERSON,
      headers: { 'if-none-match': personTag },
      outcome: 'not-modified',
      etag: personTag,
    },
    {
      name: 'a person revalidated with its tag, asking for br (persons are not coded): 304 with that tag',
      target: PERSON,
      headers: { 'if-none-match': personTag, 'accept-encoding': 'br' },
      outcome: 'not-modified',
      etag: personTag,
    },
    {
      name: 'the current tag, and a stale If-Match (step 1 comes first): 412',
      target: PERSON,
      headers: { 'if-none-match': personTag, 'if-match': '"stale"' },
      outcome: 'precondition-failed',
    },
    {
      name: 'the current tag, and an If-Unmodified-Since before the change (step 2 comes first): 412',
      target: PERSON,
      headers: { 'if-none-match': personTag, 'if-unmodified-since': formatHttpDate(CHANGED_AT - 60_000) },
      outcome: 'precondition-failed',
    },
    {
      name: "a page's identity tag from a client asking for br: 304 with the br tag",
      target: PAGE,
      headers: { 'if-none-match': pageTag, 'accept-encoding': 'br' },
      outcome: 'not-modified',
      etag: `"${PAGE.etag.opaque}+br"`,
    },
    {
      name: "a page's br tag from a client asking for br: 304 with that tag",
      target: PAGE,
      headers: { 'if-none-match': `"${PAGE.etag.opaque}+br"`, 'accept-encoding': 'gzip, deflate, br, zstd' },
      outcome: 'not-modified',
      etag: `"${PAGE.etag.opaque}+br"`,
    },
    {
      name: "a page's gzip tag from a client asking for identity: 304 with the identity tag",
      target: PAGE,
      headers: { 'if-none-match': `"${PAGE.etag.opaque}+gzip"` },
      outcome: 'not-modified',
      etag: pageTag,
    },
  ]
  for (const c of cases)
    it(c.name, () => {
      const decision = decideRead(c.target, 'GET', c.headers)
      assert.equal(decision.outcome, c.outcome)
      if (decision.outcome === 'not-modified') assert.equal(decision.etag, c.etag)
      assert.deepEqual(decision, decideReadInFull(c.target, 'GET', c.headers))
    })
})
