/**
 * Where a client stands in the changes feed, and the opaque tokens that say so
 * (docs/changes-feed.md, "Tokens").
 *
 * A position has two parts: live persons are owed after `since`, tombstones after
 * `tombstonesSince` (never below `since`). Usually they are equal. A copy that starts from
 * nothing (`0`) is owed no tombstones at all until its first answer, read at revision R, is
 * complete: every person it has not been sent yet has a version above the last one sent, and every
 * delete it must hear of came after R. So while such a copy is cut by `limit`, its token carries
 * both parts (`<epoch>.<since>.<R>`), and only tombstones after R are owed, which a horizon moved
 * by a purge of old tombstones does not reach: a large collection can always be copied from `0`.
 */
import type { EntityTag } from '../core/index.js'
import type { ChangesPage, StoredChange } from '../store/person-store.js'

/** `tombstonesSince` of a copy from nothing, before its first answer: no tombstone is owed. */
export const NO_TOMBSTONES = Number.MAX_SAFE_INTEGER

/** The token that starts the feed from nothing. */
export const START_TOKEN = '0'

/** A position in the feed, and the token it was written as. */
export interface FeedPosition {
  readonly since: number
  readonly tombstonesSince: number
  readonly token: string
}

/** The start of a copy from nothing. */
export const START: FeedPosition = { since: 0, tombstonesSince: NO_TOMBSTONES, token: START_TOKEN }

// `<epoch>.<since>[.<tombstones since>]`, revisions in base 36 without leading zeros
const TOKEN = /^([A-Za-z0-9_-]{12})\.(0|[1-9a-z][0-9a-z]{0,10})(?:\.([1-9a-z][0-9a-z]{0,10}))?$/

/** The position after a revision: everything up to it has been sent. */
export function positionAt(epoch: string, revision: number): FeedPosition {
  return { since: revision, tombstonesSince: revision, token: `${epoch}.${revision.toString(36)}` }
}

function positionOf(epoch: string, since: number, tombstonesSince: number): FeedPosition {
  if (tombstonesSince <= since) return positionAt(epoch, since)
  return { since, tombstonesSince, token: `${epoch}.${since.toString(36)}.${tombstonesSince.toString(36)}` }
}

/** What a token says: a position, `malformed`, or `other-database` (another epoch). */
export function parseChangesToken(token: string, epoch: string): FeedPosition | 'malformed' | 'other-database' {
  if (token === START_TOKEN) return START
  const match = TOKEN.exec(token)
  if (match === null) return 'malformed'
  const since = parseInt(match[2]!, 36)
  const tombstonesSince = match[3] === undefined ? since : parseInt(match[3], 36)
  // one spelling per position: the long form only where the two parts differ
  if (!Number.isSafeInteger(since) || !Number.isSafeInteger(tombstonesSince) || tombstonesSince < since) return 'malformed'
  if (match[3] !== undefined && tombstonesSince === since) return 'malformed'
  if (match[1] !== epoch) return 'other-database'
  return { since, tombstonesSince, token }
}

/** The highest revision a position names: a token above the database's revision is from its future. */
export function newestRevisionNamed(position: FeedPosition): number {
  return position.tombstonesSince === NO_TOMBSTONES ? position.since : position.tombstonesSince
}

/** The version of a feed item: the revision of the write it shows. */
export function changeVersion(change: StoredChange): number {
  return change.deleted ? change.version : change.person.version
}

/**
 * The position after an item at `version` of an answer read at `revision`, from `from`: the
 * token of an event, or the `next` of a cut answer.
 */
export function positionAfter(epoch: string, version: number, revision: number, from: FeedPosition): FeedPosition {
  // a copy from nothing owes the deletes after the snapshot of its first answer
  const owed = from.tombstonesSince === NO_TOMBSTONES ? revision : from.tombstonesSince
  return positionOf(epoch, version, Math.max(owed, version))
}

/**
 * Where a client stands after `page`: after its last item when `limit` cut it short, else at the
 * snapshot's revision; with nothing new, exactly where it stood (API.md: `next` equals what was sent).
 */
export function nextPosition(epoch: string, page: ChangesPage, from: FeedPosition): FeedPosition {
  const last = page.changes.at(-1)
  const revision = page.collection.revision
  if (page.hasMore && last !== undefined) return positionAfter(epoch, changeVersion(last), revision, from)
  if (page.changes.length === 0 && isCaughtUp(from) && revision === from.since) return from
  return positionAt(epoch, revision)
}

/**
 * True when everything up to the revision a position names has been sent: nothing more is owed
 * until a write commits after it, so a long poll from it may wait. A copy cut by `limit` is not.
 */
export function isCaughtUp(position: FeedPosition): boolean {
  return position.since === newestRevisionNamed(position)
}

/**
 * The strong ETag of one feed answer. The answer is fully determined by the database (epoch), the
 * revision of the snapshot, the position it starts from and its limit; tombstones purged later all
 * lie at or below the horizon, and a position owing tombstones below the horizon is answered 410,
 * never from this tag.
 */
export function changesEtag(epoch: string, revision: number, from: FeedPosition, limit: number): EntityTag {
  const position =
    from.tombstonesSince === NO_TOMBSTONES
      ? '-'
      : from.tombstonesSince === from.since
        ? from.since.toString(36)
        : `${from.since.toString(36)}_${from.tombstonesSince.toString(36)}`
  return { weak: false, opaque: `${epoch}.${revision.toString(36)}.f${position}.${limit}` }
}
