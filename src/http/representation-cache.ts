/**
 * Serialised representations, cached by their strong ETag. An ETag names exactly one
 * representation (API.md: it is never reused for a different one), so an entry found under the
 * ETag just read from the store is that representation, byte for byte: it can never be stale,
 * whichever process wrote last. A write makes a new ETag, and the old entry is simply never asked
 * for again; the least recently used ones make room when the size cap is reached.
 */
import { LRUCache } from 'lru-cache'

/** A serialised `200` response: its body and the headers that belong to exactly that body. */
export interface CachedRepresentation {
  readonly body: Buffer
  /** ETag, Last-Modified, Cache-Control, and (for a page) Link. */
  readonly headers: Readonly<Record<string, string>>
  /** A changes feed answer: how many items it holds (for the metrics). */
  readonly items?: number
}

/** The default cap on the cached bodies and headers, in bytes: 64 MiB, about 700 pages of 1,000. */
export const DEFAULT_CACHE_BYTES = 64 * 1024 * 1024

// an estimate of what one entry costs beyond its body: the key, the headers and the bookkeeping
const ENTRY_OVERHEAD_BYTES = 512

/**
 * A size-capped LRU of serialised representations keyed by the formatted strong ETag
 * (`"<epoch>.<version>"` for a person, `"<epoch>.<revision>.l<limit>a<after>"` for a page).
 *
 * @example
 * const cached = cache.get(formatEntityTag(etagJustRead))
 * if (cached !== undefined) return send(cached)
 * const person = await store.read(id)   // may be newer than the validator read before
 * const fresh = personRepresentation(store.epoch, person)
 * return send(cache.set(fresh.headers.etag, fresh))  // keyed by what was read with the row
 */
export class RepresentationCache {
  private readonly entries: LRUCache<string, CachedRepresentation>

  constructor(maxBytes: number = DEFAULT_CACHE_BYTES) {
    this.entries = new LRUCache<string, CachedRepresentation>({
      maxSize: maxBytes,
      sizeCalculation: (entry, key) => entry.body.length + key.length + ENTRY_OVERHEAD_BYTES,
    })
  }

  /** The byte length of the body cached under `etag`, if any; does not count as a use. */
  sizeOf(etag: string): number | undefined {
    return this.entries.peek(etag)?.body.length
  }

  /** The representation whose ETag is `etag`, if it is cached. */
  get(etag: string): CachedRepresentation | undefined {
    return this.entries.get(etag)
  }

  /**
   * Caches `representation` under `etag`, which must be the ETag of exactly these bytes as read
   * from the store in one snapshot; returns it. A body larger than the whole cap is not kept.
   */
  set(etag: string, representation: CachedRepresentation): CachedRepresentation {
    this.entries.set(etag, representation)
    return representation
  }
}
