/**
 * Reading compressed answers as a client that asked for them would: the body decoded by its
 * Content-Encoding, the tag a coding gets, and the field names a response varies on.
 */
import { brotliDecompressSync, gunzipSync } from 'node:zlib'
import type { RawResponse } from './raw-request.js'

/** The codings the service sends besides identity (Node 20 has no Zstandard). */
export const CODINGS = ['gzip', 'br'] as const

/** One of CODINGS. */
export type Coding = (typeof CODINGS)[number]

/** The body of `response` with its Content-Encoding undone; fails on a coding no client asked for. */
export function decodeBody(response: RawResponse): Buffer {
  const coding = response.headers.get('content-encoding')
  switch (coding) {
    case undefined:
      return response.body
    case 'gzip':
      return gunzipSync(response.body)
    case 'br':
      return brotliDecompressSync(response.body)
    default:
      throw new Error(`unexpected Content-Encoding: ${coding}`)
  }
}

/**
 * The tag of the `coding` form of the representation whose identity tag is `etag` (API.md
 * and content-coding.ts: the coding goes inside the quotes, after a `+`); identity keeps `etag`.
 */
export function codedTag(etag: string, coding: Coding | undefined): string {
  if (coding === undefined) return etag
  if (!/^"[^"]*"$/.test(etag)) throw new Error(`not a strong quoted tag: ${etag}`)
  return `${etag.slice(0, -1)}+${coding}"`
}

/** The field names in `response`'s Vary, lower case (RFC 9110 §12.5.5: a list, case-insensitive). */
export function varyNames(response: RawResponse): string[] {
  const vary = response.headers.get('vary')
  return vary === undefined
    ? []
    : vary
        .split(',')
        .map((name) => name.trim().toLowerCase())
        .filter((name) => name !== '')
}
