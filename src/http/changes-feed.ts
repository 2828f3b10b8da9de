/**
 * The changes feed of API.md: `GET /persons?since=<token>[&limit=n][&wait=s]`, answered as one JSON
 * object or, to `Accept: text/event-stream`, as a Server-Sent Events stream. Why it can neither
 * skip nor reorder a change, and why no wake-up is lost, is in docs/changes-feed.md.
 */
import type { OutgoingHttpHeaders } from 'node:http'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ChangesPage, CollectionValidator, PersonStore } from '../store/person-store.js'
import type { ChangeHub } from './change-hub.js'
import {
  NO_TOMBSTONES,
  START_TOKEN,
  changeVersion,
  changesEtag,
  isCaughtUp,
  newestRevisionNamed,
  nextPosition,
  parseChangesToken,
  positionAfter,
  type FeedPosition,
} from './changes-position.js'
import { decideRead } from './conditional-read.js'
import type { CodedRepresentations } from './content-coding.js'
import type { ServiceMetrics } from './metrics.js'
import { preconditionProblem, Problem, problems } from './problems.js'
import { sendNotModified, sendRepresentation } from './replies.js'
import type { CachedRepresentation, RepresentationCache } from './representation-cache.js'
import { CACHE_CONTROL, FEED_VARY, changeJson, changesRepresentation } from './representation.js'
import { COLLECTION_ROUTE } from './routes.js'
import { QUERY_RULES } from './route-schemas.js'
import { ALL_SECURITY_HEADERS } from './security-headers.js'

/** API.md: a comment line at least every 15 seconds keeps an idle stream (and the proxies on its way) open. */
export const DEFAULT_HEARTBEAT_MS = 10_000

/** How many items an event stream reads from the store at a time. */
const STREAM_BATCH = 1000

/** The feed's query parameters, as the route's schema has checked them. */
export interface ChangesQuery {
  readonly since?: string | undefined
  readonly limit: number
  readonly wait?: number | undefined
}

export interface ChangesFeedOptions {
  readonly store: PersonStore
  readonly cache: RepresentationCache
  /** The compressed forms of answers, made once per ETag and coding. */
  readonly coded: CodedRepresentations
  readonly metrics: ServiceMetrics
  readonly hub: ChangeHub
  /** The longest an event stream stays silent, in ms (default 10 s; API.md: at most 15 s). */
  readonly heartbeatMs?: number | undefined
}

/** Answers feed requests; `wantsStream` tells the persons route which requests are its. */
export interface ChangesFeed {
  answer(request: FastifyRequest, reply: FastifyReply, query: ChangesQuery): Promise<FastifyReply>
}

/**
 * Where `token` stands in the database with `epoch`: a problem when it is malformed (400) or
 * from another database (410).
 */
function readPosition(token: string, epoch: string): FeedPosition | Problem {
  const position = parseChangesToken(token, epoch)
  if (position === 'malformed') return problems.invalidQuery('since', QUERY_RULES.since!)
  if (position === 'other-database') return problems.changesGone('This token comes from another database (it was wiped, restored or replaced)')
  return position
}

/** The 410 for a position the database, as `collection` describes it, cannot answer from. */
function goneProblem(position: FeedPosition, collection: CollectionValidator): Problem | undefined {
  if (newestRevisionNamed(position) > collection.revision) {
    return problems.changesGone('This token is ahead of the database (it was restored from an older copy)')
  }
  if (position.tombstonesSince !== NO_TOMBSTONES && position.tombstonesSince < collection.horizon) {
    return problems.changesGone('This token is older than the oldest delete the database still remembers (TOMBSTONE_RETENTION)')
  }
  return undefined
}

/**
 * True when the client asks for an event stream: `text/event-stream` is acceptable and no less
 * preferred than JSON (RFC 9110 §12.5.1; EventSource sends exactly `Accept: text/event-stream`).
 */
export function wantsEventStream(accept: string | undefined): boolean {
  if (accept === undefined || !accept.includes('text/event-stream')) return false
  let stream = 0
  let json = 0
  for (const range of accept.split(',')) {
    const [type, ...parameters] = range.split(';').map((part) => part.trim().toLowerCase())
    const q = parameters.find((p) => p.startsWith('q='))
    const weight = q === undefined ? 1 : Number(q.slice(2))
    if (!(weight >= 0 && weight <= 1)) continue
    if (type === 'text/event-stream') stream = Math.max(stream, weight)
    else if (type === 'application/json' || type === 'application/*' || type === '*/*') json = Math.max(json, weight)
  }
  return stream > 0 && stream >= json
}

/** Builds the feed's handler around the app's store, cache, metrics and hub. */
export function changesFeed(options: ChangesFeedOptions): ChangesFeed {
  const { store, cache, coded, metrics, hub } = options
  const heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS
  const epoch = store.epoch
  // answers being read, by the ETag they were asked under: a thousand long polls woken by one
  // write share one read of the store
  const reading = new Map<string, Promise<CachedRepresentation>>()

  function readAnswer(etag: string, position: FeedPosition, limit: number): Promise<CachedRepresentation> {
    const cached = cache.get(etag)
    if (cached !== undefined) return Promise.resolve(cached)
    let pending = reading.get(etag)
    if (pending === undefined) {
      pending = store
        .readChanges({ since: position.since, limit, tombstonesSince: position.tombstonesSince })
        .then((page) => {
          const gone = goneProblem(position, page.collection)
          if (gone !== undefined) throw gone
          // the page was read in its own snapshot, perhaps newer: its own tag names it
          const representation = changesRepresentation(epoch, page, position, limit)
          return cache.set(representation.headers.etag!, representation)
        })
        .finally(() => reading.delete(etag))
      reading.set(etag, pending)
    }
    return pending
  }

  async function answerJson(request: FastifyRequest, reply: FastifyReply, position: FeedPosition, query: ChangesQuery): Promise<FastifyReply> {
    let collection = await store.readCollectionValidator()
    let gone = goneProblem(position, collection)
    if (gone !== undefined) throw gone
    if (query.wait !== undefined && isCaughtUp(position) && collection.revision <= position.since) {
      // nothing committed after `since`: hold the request until something is, or `wait` runs out
      const stop = new AbortController()
      const onClose = (): void => stop.abort()
      reply.raw.once('close', onClose)
      metrics.changes.waitingPolls++
      try {
        collection = (await hub.waitBeyond(position.since, query.wait * 1000, stop.signal)) ?? (await store.readCollectionValidator())
      } finally {
        metrics.changes.waitingPolls--
        reply.raw.off('close', onClose)
      }
      gone = goneProblem(position, collection)
      if (gone !== undefined) throw gone
    }
    // the 304 is decided from the revision alone, never from a person
    const target = { etag: changesEtag(epoch, collection.revision, position, query.limit), lastModified: collection.changedAt, coded: true }
    const decision = decideRead(target, request.method, request.headers)
    if (decision.outcome === 'not-modified') return sendNotModified(reply, decision.etag, decision.lastModified, FEED_VARY)
    if (decision.outcome === 'precondition-failed') throw preconditionProblem(decision.decision, request.method, '', false)!
    const representation = await coded.toSend(decision, () => readAnswer(decision.identityEtag, position, query.limit))
    if (request.method === 'GET') metrics.changes.servedInAnswers += representation.items ?? 0
    return sendRepresentation(reply, representation)
  }

  async function answerStream(request: FastifyRequest, reply: FastifyReply, start: FeedPosition): Promise<FastifyReply> {
    // a token the database cannot answer is a problem, before any stream starts
    const gone = goneProblem(start, await store.readCollectionValidator())
    if (gone !== undefined) throw gone
    // what plugins set on the reply (CORS: an EventSource from another origin needs them) goes
    // out with the stream's own fields, which the framework no longer writes once hijacked
    const vary = reply.getHeader('vary')
    const pluginHeaders = reply.getHeaders() as OutgoingHttpHeaders
    reply.hijack()
    const response = reply.raw
    response.writeHead(200, {
      ...pluginHeaders,
      ...ALL_SECURITY_HEADERS,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': CACHE_CONTROL,
      // streams are sent uncompressed (an event must reach the client when it is written), but the
      // same URL answers JSON in any coding
      vary: vary === undefined ? FEED_VARY : `${String(vary)}, ${FEED_VARY}`,
      // nginx would otherwise hold the events back in its buffer
      'x-accel-buffering': 'no',
    })
    metrics.countResponse(COLLECTION_ROUTE, request.method, 200, false, undefined)
    if (request.method === 'HEAD') {
      response.end()
      return reply
    }
    const stop = new AbortController()
    response.once('close', () => stop.abort())
    metrics.changes.openStreams++
    try {
      await stream(response, start, stop.signal)
    } catch (error) {
      // the store went away mid-stream: end it; EventSource reconnects with Last-Event-ID
      request.log.warn({ err: error }, 'changes stream ended by an error')
    } finally {
      metrics.changes.openStreams--
      response.end()
    }
    return reply
  }

  async function stream(response: FastifyReply['raw'], start: FeedPosition, signal: AbortSignal): Promise<void> {
    let position = start
    // sent at once, so that the client sees the stream open before the first change
    if (!(await write(response, `retry: 1000\n: changes after ${start.token}\n\n`, signal))) return
    while (!signal.aborted && !hub.closed) {
      const page: ChangesPage = await store.readChanges({
        since: position.since,
        limit: STREAM_BATCH,
        tombstonesSince: position.tombstonesSince,
      })
      if (goneProblem(position, page.collection) !== undefined) {
        // the horizon passed this stream while it waited: the client must start again
        await write(response, 'event: gone\ndata: {}\n\n', signal)
        return
      }
      let events = ''
      for (const change of page.changes) {
        const id = positionAfter(epoch, changeVersion(change), page.collection.revision, position).token
        events += `event: change\nid: ${id}\ndata: ${JSON.stringify(changeJson(epoch, change))}\n\n`
      }
      if (events !== '') {
        if (!(await write(response, events, signal))) return
        metrics.changes.servedInStreams += page.changes.length
      }
      position = nextPosition(epoch, page, position)
      if (page.hasMore) continue
      const woken = await hub.waitBeyond(position.since, heartbeatMs, signal)
      if (woken === undefined && !signal.aborted && !hub.closed) {
        if (!(await write(response, ': heartbeat\n\n', signal))) return
      }
    }
  }

  return {
    async answer(request, reply, query) {
      const streamed = wantsEventStream(request.headers.accept)
      // EventSource sends the id of the last event it saw when it reconnects to the same URL
      const lastEventId = streamed ? request.headers['last-event-id'] : undefined
      const token = typeof lastEventId === 'string' && lastEventId !== '' ? lastEventId : (query.since ?? START_TOKEN)
      const position = readPosition(token, epoch)
      if (position instanceof Problem) throw position
      return streamed ? answerStream(request, reply, position) : answerJson(request, reply, position, query)
    },
  }
}

/**
 * Writes `chunk`; when the socket's buffer is full, waits for it to drain. Resolves false when the
 * client went away instead.
 */
async function write(response: FastifyReply['raw'], chunk: string, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted || response.destroyed) return false
  if (response.write(chunk)) return true
  return new Promise((resolve) => {
    const done = (drained: boolean): void => {
      response.off('drain', onDrain)
      signal.removeEventListener('abort', onAbort)
      resolve(drained)
    }
    const onDrain = (): void => done(true)
    const onAbort = (): void => done(false)
    response.once('drain', onDrain)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}
