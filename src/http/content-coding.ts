/**
 * Content codings (RFC 9110 §8.4): which one a request gets, and the compressed representations,
 * each with its own strong ETag (§8.8.3: a different coding is a different representation, so it
 * cannot share the identity tag). The coded tag is the identity tag plus `+<coding>`, so a
 * precondition naming the version in any coding is decided from the validator alone
 * (core's `namesCurrentVersion`).
 *
 * Only pages and feed answers are compressed: a person is under 1 KiB by the field rules (a
 * 64-character id and 200 code points of name), below the 1 KiB threshold common servers use,
 * where a coding saves tens of bytes and costs a header and CPU. Deciding by resource rather than
 * by body size keeps the coding (and so the tag of a 304) known before any body is read.
 */
import { promisify } from 'node:util'
import * as zlib from 'node:zlib'
import type { EntityTag } from '../core/index.js'
import type { CachedRepresentation, RepresentationCache } from './representation-cache.js'

/** A content coding this service can send. */
export type ContentCoding = 'br' | 'zstd' | 'gzip'

type Compressor = (body: Buffer) => Promise<Buffer>

// fixed parameters: the same input always gives the same bytes, so one tag names one body in
// every process running the same Node. Brotli's quality 5 compresses a 90 KB page in about as
// long as gzip's default level and a fifth smaller; its default (11) takes a hundred times longer.
const COMPRESSORS: Partial<Record<ContentCoding, Compressor>> = {
  br: (
    (compress) => (body: Buffer) =>
      compress(body, {
        params: {
          [zlib.constants.BROTLI_PARAM_QUALITY]: 5,
          [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT,
          [zlib.constants.BROTLI_PARAM_SIZE_HINT]: body.length,
        },
      })
  )(promisify(zlib.brotliCompress)),
  gzip: (
    (compress) => (body: Buffer) =>
      compress(body, { level: 6 })
  )(promisify(zlib.gzip)),
}
// Node 22.15 and later have Zstandard; older ones do without it
const zstdCompress = (zlib as unknown as { zstdCompress?: (body: Buffer, callback: (error: Error | null, result: Buffer) => void) => void }).zstdCompress
if (zstdCompress !== undefined) COMPRESSORS.zstd = promisify(zstdCompress)

/** The codings this process can send, most preferred first when a client accepts several equally. */
export const CONTENT_CODINGS: readonly ContentCoding[] = (['br', 'zstd', 'gzip'] as const).filter((coding) => COMPRESSORS[coding] !== undefined)

/** API.md: every response for a person, a page or the feed, and its 304, carries this. */
export const VARY_ACCEPT_ENCODING = 'accept-encoding'

/**
 * The coding a request with this `Accept-Encoding` gets (RFC 9110 §12.5.3), or undefined for
 * identity: the acceptable coding with the highest weight, ties going to the smaller output.
 * No field, or nothing acceptable, is identity (the seed's plain curl stays readable).
 */
export function negotiateCoding(acceptEncoding: string | undefined): ContentCoding | undefined {
  if (acceptEncoding === undefined || acceptEncoding === '') return undefined
  // clients send a handful of distinct values, each on every request: each is weighed once
  const known = negotiated.get(acceptEncoding)
  if (known !== undefined) return known === IDENTITY ? undefined : known
  if (negotiated.size >= NEGOTIATED_MAX) negotiated.clear()
  const coding = weighCodings(acceptEncoding)
  negotiated.set(acceptEncoding, coding ?? IDENTITY)
  return coding
}

const IDENTITY = 'identity'
// bounded, so that a client sending a new value with every request costs only the weighing
const NEGOTIATED_MAX = 64
const negotiated = new Map<string, ContentCoding | typeof IDENTITY>()

function weighCodings(acceptEncoding: string): ContentCoding | undefined {
  const weights = new Map<string, number>()
  for (const member of acceptEncoding.split(',')) {
    const [name, ...parameters] = member.split(';')
    let coding = name!.trim().toLowerCase()
    if (coding === '') continue
    // RFC 9110 §8.4.1.3: x-gzip is gzip
    if (coding === 'x-gzip') coding = 'gzip'
    let weight = 1
    for (const parameter of parameters) {
      const [key, value] = parameter.split('=').map((part) => part.trim().toLowerCase())
      if (key === 'q') weight = /^(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)$/.test(value ?? '') ? Number(value) : 0
    }
    weights.set(coding, Math.max(weights.get(coding) ?? 0, weight))
  }
  const any = weights.get('*')
  let best: ContentCoding | undefined
  let bestWeight = 0
  for (const coding of CONTENT_CODINGS) {
    const weight = weights.get(coding) ?? any ?? 0
    if (weight > bestWeight) {
      best = coding
      bestWeight = weight
    }
  }
  return best
}

/** What a coding adds to the identity tag's opaque value: `+br`, `+gzip`; nothing for identity. */
export function codingSuffix(coding: ContentCoding | undefined): string {
  return coding === undefined ? '' : `+${coding}`
}

/** The strong ETag of the `coding` form of the representation whose identity tag is `etag`. */
export function codedEtag(etag: EntityTag, coding: ContentCoding | undefined): EntityTag {
  return coding === undefined ? etag : { weak: etag.weak, opaque: etag.opaque + codingSuffix(coding) }
}

/**
 * The compressed forms of representations, made once per ETag and coding and kept in the
 * representation cache under their own tag; concurrent requests for one share the compression.
 */
export class CodedRepresentations {
  private readonly compressing = new Map<string, Promise<CachedRepresentation>>()

  /** `onCompressed` is told of every body compressed (the metrics count them). */
  constructor(
    private readonly cache: RepresentationCache,
    private readonly onCompressed: (coding: ContentCoding) => void = () => {},
  ) {}

  /**
   * The bytes a read decided to send (conditional-read.ts): those cached under its tag, else the
   * identity bytes (cached under `identityEtag`, or `read()` and cached by it) in its coding.
   */
  async toSend(
    decision: { readonly etag: string; readonly identityEtag: string; readonly coding: ContentCoding | undefined },
    read: () => Promise<CachedRepresentation>,
  ): Promise<CachedRepresentation> {
    const cached = this.cache.get(decision.etag)
    if (cached !== undefined) return cached
    const identity = this.cache.get(decision.identityEtag) ?? (await read())
    return decision.coding === undefined ? identity : this.code(identity, decision.coding)
  }

  /**
   * `identity` in `coding`: from the cache, or compressed now (off the event loop, in libuv's
   * thread pool) and cached.
   */
  code(identity: CachedRepresentation, coding: ContentCoding): Promise<CachedRepresentation> {
    const identityTag = identity.headers.etag!
    // the coded tag of a quoted strong tag: the coding goes inside the quotes
    const etag = `${identityTag.slice(0, -1)}+${coding}"`
    const cached = this.cache.get(etag)
    if (cached !== undefined) return Promise.resolve(cached)
    let pending = this.compressing.get(etag)
    if (pending === undefined) {
      pending = COMPRESSORS[coding]!(identity.body)
        .then((body) => {
          this.onCompressed(coding)
          return body
        })
        .then((body) =>
          this.cache.set(etag, {
            body,
            headers: { ...identity.headers, etag, 'content-encoding': coding },
            ...(identity.items === undefined ? {} : { items: identity.items }),
          }),
        )
        .finally(() => this.compressing.delete(etag))
      this.compressing.set(etag, pending)
    }
    return pending
  }
}
