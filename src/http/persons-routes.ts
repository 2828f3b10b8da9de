/**
 * The persons resource of API.md: reading a person or a page (one conditional-read decision,
 * conditional-read.ts, made from the stored validator alone), the changes feed on the collection's
 * URL, creating a person, and the conditional writes (person-writes.ts).
 */
import type { FastifyInstance, FastifyReply } from 'fastify'
import { SAFE_METHODS } from '../core/index.js'
import type { PersonStore, StoredPerson } from '../store/person-store.js'
import { wantsEventStream, type ChangesFeed } from './changes-feed.js'
import { decideRead, pageTarget, personTarget } from './conditional-read.js'
import type { CodedRepresentations } from './content-coding.js'
import { checkPersonId, checkPersonName, member, parseJsonObject } from './person-input.js'
import { personWriteRoutes } from './person-writes.js'
import { preconditionProblem, Problem, problems } from './problems.js'
import { sendNotModified, sendRepresentation } from './replies.js'
import type { RepresentationCache } from './representation-cache.js'
import { pageRepresentation, personRepresentation } from './representation.js'
import { COLLECTION_ROUTE, PERSON_ROUTE } from './routes.js'
import { DEFAULT_PAGE_LIMIT, PERSON_SCHEMAS, QUERY_RULES, routeOptions } from './route-schemas.js'

interface IdRoute {
  Params: { id: string }
}
interface PageRoute {
  Querystring: { limit?: string; after?: string; since?: string; wait?: string }
}

/** What the persons routes share with the rest of the app (one of each per app: per process). */
export interface PersonsRoutesOptions {
  readonly store: PersonStore
  /** Serialised representations by ETag. */
  readonly cache: RepresentationCache
  /** Their compressed forms, made once per ETag and coding. */
  readonly coded: CodedRepresentations
  readonly feed: ChangesFeed
}

/** Registers the persons routes on `app`. */
export function personsRoutes(app: FastifyInstance, options: PersonsRoutesOptions): void {
  const { store, cache, coded, feed } = options

  /**
   * Answers with `person` as the store returned it, and keeps its bytes under its ETag, so the
   * next GET of that version (after a write too) is served from the cache.
   */
  function sendPerson(reply: FastifyReply, person: StoredPerson): FastifyReply {
    const representation = personRepresentation(store.epoch, person)
    return sendRepresentation(reply, cache.set(representation.headers.etag!, representation))
  }

  // GET and HEAD share one handler; Node sends no body for HEAD but keeps the Content-Length of the
  // 200, and a 304 gets none (Fastify's automatic HEAD route would send Content-Length: 0 on a 304)
  // the params schema holds ids to the id rule; one outside it is answered by invalidPersonIdProblem
  app.route<IdRoute>({
    method: [...SAFE_METHODS],
    url: PERSON_ROUTE,
    ...routeOptions(PERSON_SCHEMAS.read),
    handler: async (request, reply) => {
      const { id } = request.params
      const current = await store.readValidator(id)
      if (current === undefined) throw problems.personNotFound(id)
      const decision = decideRead(personTarget(store.epoch, current), request.method, request.headers)
      if (decision.outcome === 'not-modified') return sendNotModified(reply, decision.etag, decision.lastModified)
      if (decision.outcome === 'precondition-failed') throw preconditionProblem(decision.decision, request.method, id, false)!
      return sendRepresentation(
        reply,
        await coded.toSend(decision, async () => {
          // keyed by the version of the row read, which may be newer than the validator above
          const person = await store.read(id)
          if (person === undefined) throw problems.personNotFound(id)
          const representation = personRepresentation(store.epoch, person)
          return cache.set(representation.headers.etag!, representation)
        }),
      )
    },
  })

  app.route<PageRoute>({
    method: [...SAFE_METHODS],
    url: COLLECTION_ROUTE,
    ...routeOptions(PERSON_SCHEMAS.list),
    handler: async (request, reply) => {
      // the querystring schema has checked every parameter (a 400 otherwise)
      const limit = request.query.limit === undefined ? DEFAULT_PAGE_LIMIT : Number(request.query.limit)
      const { after, since, wait } = request.query
      // the changes feed shares the URL: since=, or an EventSource reconnecting with Last-Event-ID
      const resumes = request.headers['last-event-id'] !== undefined && wantsEventStream(request.headers.accept)
      if (since !== undefined || wait !== undefined || resumes) {
        if (after !== undefined) throw problems.invalidQuery('after', 'cannot go with since (the changes feed is in commit order, not by ID)')
        if (since === undefined && !resumes) throw problems.invalidQuery('wait', QUERY_RULES.wait!)
        return feed.answer(request, reply, { since, limit, wait: wait === undefined ? undefined : Number(wait) })
      }
      // the 304 path reads the store-wide revision alone, never a row
      const collection = await store.readCollectionValidator()
      const decision = decideRead(pageTarget(store.epoch, collection, limit, after), request.method, request.headers)
      if (decision.outcome === 'not-modified') return sendNotModified(reply, decision.etag, decision.lastModified)
      if (decision.outcome === 'precondition-failed') throw preconditionProblem(decision.decision, request.method, '', false)!
      return sendRepresentation(
        reply,
        await coded.toSend(decision, async () => {
          const page = await store.readPage({ limit, after })
          // the page was read in its own snapshot: its validator, not the one above, names what is sent
          const representation = pageRepresentation(store.epoch, page, limit, after)
          return cache.set(representation.headers.etag!, representation)
        }),
      )
    },
  })

  app.post(COLLECTION_ROUTE, routeOptions(PERSON_SCHEMAS.create), async (request, reply) => {
    const body = parseJsonObject(request.body as string | undefined)
    if (body instanceof Problem) throw body
    const id = checkPersonId(member(body, 'person_id'))
    if (id instanceof Problem) throw id
    const name = checkPersonName(member(body, 'person_name'))
    if (name instanceof Problem) throw name
    const result = await store.create(id, name)
    if (!result.ok) throw problems.personExists(id)
    return sendPerson(reply.code(201).header('location', `/persons/${id}`), result.person)
  })

  personWriteRoutes(app, store, sendPerson)
}
