/**
 * Content negotiation of Accept-Encoding (RFC 9110 §12.5.3) and the coded entity tags it leads to
 * (§8.8.3: each coding of a representation has its own strong tag), as API.md "Compression and
 * HTTP caches" states them: a request gets br, gzip or identity, and a precondition naming the
 * current version in any coding is decided from the validator alone.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import * as zlib from 'node:zlib'
import { codedEtag, negotiateCoding, type ContentCoding } from '../../src/http/content-coding.js'
import { ifMatchHolds, ifNoneMatchHolds, type CurrentValidators } from '../../src/core/index.js'

// Zstandard came in Node 22.15; where Node has it, the service may offer it too
const HAS_ZSTD = typeof (zlib as unknown as { zstdCompress?: unknown }).zstdCompress === 'function'

interface Row {
  readonly name: string
  /** The Accept-Encoding field value, undefined when the request has none. */
  readonly acceptEncoding: string | undefined
  /** The coding the request gets; undefined is identity. */
  readonly gets: ContentCoding | undefined
}

function says(coding: ContentCoding | undefined): string {
  return coding === undefined ? 'identity' : coding
}

const ROWS: readonly Row[] = [
  { name: 'no Accept-Encoding', acceptEncoding: undefined, gets: undefined },
  // RFC 9110 §12.5.3: an empty field value means only identity is acceptable
  { name: 'an empty Accept-Encoding', acceptEncoding: '', gets: undefined },
  { name: 'white space only', acceptEncoding: ' \t', gets: undefined },
  { name: 'identity', acceptEncoding: 'identity', gets: undefined },
  { name: 'gzip', acceptEncoding: 'gzip', gets: 'gzip' },
  // §8.4.1.3: a recipient should take x-gzip as gzip
  { name: 'x-gzip', acceptEncoding: 'x-gzip', gets: 'gzip' },
  { name: 'br', acceptEncoding: 'br', gets: 'br' },
  { name: 'gzip, br (equal weights: br, the smaller)', acceptEncoding: 'gzip, br', gets: 'br' },
  { name: 'br, gzip', acceptEncoding: 'br, gzip', gets: 'br' },
  { name: 'what browsers send', acceptEncoding: 'gzip, deflate, br, zstd', gets: 'br' },
  { name: 'what curl --compressed sends', acceptEncoding: 'deflate, gzip, br, zstd', gets: 'br' },
  { name: 'gzip weighted above br', acceptEncoding: 'gzip;q=0.8, br;q=0.5', gets: 'gzip' },
  { name: 'gzip at 1 and br at 0.999', acceptEncoding: 'br;q=0.999, gzip;q=1', gets: 'gzip' },
  { name: 'br weighted above gzip', acceptEncoding: 'gzip;q=0.5, br;q=0.8', gets: 'br' },
  { name: 'gzip at q=1.000 and br at q=0.001', acceptEncoding: 'gzip;q=1.000, br;q=0.001', gets: 'gzip' },
  { name: 'br;q=0 alone', acceptEncoding: 'br;q=0', gets: undefined },
  { name: 'br;q=0 beside gzip', acceptEncoding: 'br;q=0, gzip', gets: 'gzip' },
  { name: 'gzip;q=0.000 beside br', acceptEncoding: 'gzip;q=0.000, br', gets: 'br' },
  { name: 'every coding refused', acceptEncoding: 'gzip;q=0, br;q=0', gets: undefined },
  { name: '*', acceptEncoding: '*', gets: 'br' },
  { name: '*;q=0', acceptEncoding: '*;q=0', gets: undefined },
  { name: 'gzip;q=0, * (any but gzip)', acceptEncoding: 'gzip;q=0, *', gets: 'br' },
  { name: 'br;q=0, * (any but br)', acceptEncoding: 'br;q=0, *', gets: 'gzip' },
  { name: '* below a named gzip', acceptEncoding: 'gzip;q=0.5, *;q=0.1', gets: 'gzip' },
  { name: 'a named br below *', acceptEncoding: 'br;q=0.1, *;q=0.5', gets: HAS_ZSTD ? 'zstd' : 'gzip' },
  { name: 'identity and *;q=0', acceptEncoding: 'identity, *;q=0', gets: undefined },
  { name: 'only codings this service does not send', acceptEncoding: 'deflate, compress', gets: undefined },
  { name: 'an unknown coding beside gzip', acceptEncoding: 'frobnicate, gzip;q=0.1', gets: 'gzip' },
  { name: 'zstd alone', acceptEncoding: 'zstd', gets: HAS_ZSTD ? 'zstd' : undefined },
  // RFC 9110 §12.4.2: qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ); anything else
  // is not a weight, and a member whose weight cannot be read is not taken as acceptable
  { name: 'an invalid q (a word)', acceptEncoding: 'gzip;q=abc', gets: undefined },
  { name: 'an invalid q (above 1)', acceptEncoding: 'gzip;q=1.5', gets: undefined },
  { name: 'an invalid q (four decimals)', acceptEncoding: 'gzip;q=0.0001', gets: undefined },
  { name: 'an invalid q (negative)', acceptEncoding: 'gzip;q=-1', gets: undefined },
  { name: 'an invalid q (empty)', acceptEncoding: 'gzip;q=', gets: undefined },
  { name: 'an invalid q on gzip beside a valid br', acceptEncoding: 'gzip;q=2, br;q=0.1', gets: 'br' },
  // RFC 9110 §8.4.1: content-coding names are case-insensitive; so are parameter names (§5.6.6)
  { name: 'GZIP in capitals', acceptEncoding: 'GZIP', gets: 'gzip' },
  { name: 'Br and GZip with Q in capitals', acceptEncoding: 'GZip;Q=0.4, Br;Q=0.5', gets: 'br' },
  { name: 'X-GZIP in capitals', acceptEncoding: 'X-GZIP', gets: 'gzip' },
  // RFC 9110 §5.6.1: optional white space around members, empty members; §12.4.2: OWS around ";"
  { name: 'spaces and tabs around members', acceptEncoding: '  gzip  ,\tbr\t', gets: 'br' },
  { name: 'spaces around ";" in weights', acceptEncoding: 'gzip ; q=0.9 ,br ;q=0.2', gets: 'gzip' },
  { name: 'empty list members', acceptEncoding: ', ,gzip,,', gets: 'gzip' },
]

describe('negotiateCoding', () => {
  for (const row of ROWS) {
    it(`gives ${says(row.gets)} for ${row.name}`, () => {
      assert.equal(negotiateCoding(row.acceptEncoding), row.gets)
    })
  }

  // each value is weighed once and remembered, in a bounded table
  it('gives the same answers asked again, and after a flood of distinct values', () => {
    const answers = () => ROWS.map((row) => negotiateCoding(row.acceptEncoding))
    const expected = ROWS.map((row) => row.gets)
    assert.deepEqual(answers(), expected)
    assert.deepEqual(answers(), expected)
    for (let i = 0; i < 1000; i++) assert.equal(negotiateCoding(`x-unknown-${i}, gzip;q=0.${i % 10}`), i % 10 === 0 ? undefined : 'gzip')
    assert.deepEqual(answers(), expected)
  })
})

describe('codedEtag', () => {
  const identity = { weak: false, opaque: 'e1.v2' }

  it('keeps the identity tag for identity', () => {
    assert.deepEqual(codedEtag(identity, undefined), identity)
  })

  it('puts the coding inside the opaque value, so the coded tag stays strong', () => {
    assert.deepEqual(codedEtag(identity, 'gzip'), { weak: false, opaque: 'e1.v2+gzip' })
    assert.deepEqual(codedEtag(identity, 'br'), { weak: false, opaque: 'e1.v2+br' })
  })
})

describe('preconditions across codings', () => {
  const current: CurrentValidators = { etag: { weak: false, opaque: 'e1.v2' }, lastModified: 0, codings: ['br', 'gzip'] }

  describe('If-Match', () => {
    const holds: readonly string[] = ['"e1.v2"', '"e1.v2+gzip"', '"e1.v2+br"', 'e1.v2+gzip', '"e1.v1", "e1.v2+br"', '"e1.v1+gzip", "e1.v2+gzip"', '*']
    for (const value of holds) {
      it(`holds for ${value}, which names the current version`, () => {
        assert.equal(ifMatchHolds(value, current), true)
      })
    }
    const fails: readonly string[] = [
      // weak tags never satisfy If-Match, in any coding
      'W/"e1.v2+gzip"',
      'W/"e1.v2"',
      'W/"e1.v2+br"',
      // stale versions, in any coding
      '"e1.v1"',
      '"e1.v1+gzip"',
      '"e1.v1+br"',
      // tags that look like a coding of the current version but are none this service sent
      '"e1.v2+deflate"',
      '"e1.v2+gzipx"',
      '"e1.v2+"',
      '"e1.v2+GZIP"',
      '"e1.v2+gzip+gzip"',
      '"e1.v20+gzip"',
      '"e1.v+gzip"',
      // a coding is a suffix of the identity tag, not a replacement for its end
      '"e1.v+br"',
      '"gzip"',
      '"+gzip"',
    ]
    for (const value of fails) {
      it(`fails for ${value}`, () => {
        assert.equal(ifMatchHolds(value, current), false)
      })
    }
  })

  describe('If-None-Match', () => {
    // false means "matches": a 304 for GET and HEAD
    const matches: readonly string[] = ['"e1.v2"', '"e1.v2+gzip"', '"e1.v2+br"', 'e1.v2+br', 'W/"e1.v2+gzip"', 'W/"e1.v2"', '"e1.v1", "e1.v2+gzip"', '*']
    for (const value of matches) {
      it(`matches ${value}, which names the current version`, () => {
        assert.equal(ifNoneMatchHolds(value, current), false)
      })
    }
    const misses: readonly string[] = ['"e1.v1"', '"e1.v1+gzip"', 'W/"e1.v1+br"', '"e1.v2+deflate"', '"e1.v2+"', '"e1.v20+gzip"', '"e1.v2+gzip+gzip"']
    for (const value of misses) {
      it(`does not match ${value}`, () => {
        assert.equal(ifNoneMatchHolds(value, current), true)
      })
    }
  })

  it('matches no coded tag for a version that lists no codings', () => {
    const plain: CurrentValidators = { etag: { weak: false, opaque: 'e1.v2' }, lastModified: 0 }
    assert.equal(ifMatchHolds('"e1.v2+gzip"', plain), false)
    assert.equal(ifNoneMatchHolds('"e1.v2+gzip"', plain), true)
  })
})
