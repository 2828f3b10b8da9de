/**
 * The persons resource of API.md. Every conditional decision is made by the core from the stored
 * validator alone; every write is a compare-and-set on the version the decision was made against,
 * retried from the top when another write came first, so the check and the write are one step.
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema } from 'fastify'
import {
  evaluatePreconditions, formatEntityTag, parseEntityTagList,
  type ConditionalHeaders, type CurrentValidators, type PreconditionDecision,
} from '../core/index.js'
import type { PersonStore, PersonValidator, StoredPerson } from '../store/person-store.js'
import {
  checkBodyIdMatches, checkPersonId, checkPersonName, isValidPersonId, member, parseJsonObject, PERSON_ID_RULE,
} from './person-input.js'
import { Problem, problems } from './problems.js'
import {
  JSON_TYPE, currentValidators, pageEtag, pageRepresentation, personEtag, personRepresentation, validatorHeaders,
} from './representation.js'
import { setRepresentationHeaders } from './reply-headers.js'
import { codedEtag, negotiateCoding, type CodedRepresentations } from './content-coding.js'
import type { CachedRepresentation, RepresentationCache } from './representation-cache.js'
import { DEFAULT_PAGE_LIMIT, PERSON_SCHEMAS, QUERY_RULES } from './route-schemas.js'
import { wantsEventStream, type ChangesFeed } from './changes-feed.js'

/** How often a write re-reads and retries after losing a compare-and-set before it gives up (503). */
const MAX_WRITE_ATTEMPTS = 50
const SAFE_METHODS = ['GET', 'HEAD']

/**
 * Route options from a route's schema. Fastify validates params, querystring and headers; the body
 * schema only documents (bodies are raw text, judged by the route after its 404: API.md's order),
 * so it travels in `config.openapiBody`, which openapi.ts puts into the document.
 */
function withSchema(documented: object): { schema: FastifySchema; config: { openapiBody: unknown } } {
  const { body, ...schema } = documented as { body?: unknown }
  return { schema, config: { openapiBody: body } }
}

/** RFC 7396's media type. */
const MERGE_PATCH = 'application/merge-patch+json'

/**
 * API.md parses bodies as JSON whatever their Content-Type says (curl --data sends a form type,
 * fetch sends text/plain for a string), so a PATCH is read as a merge patch unless its type names
 * another patch format, such as application/json-patch+json (RFC 6902): that one means something
 * else, and RFC 5789 §2.2 answers it with 415.
 */
function isOtherPatchFormat(type: string | undefined): type is string {
  return type !== undefined && type !== MERGE_PATCH && type.includes('patch')
}

interface IdRoute { Params: { id: string } }
interface PageRoute { Querystring: { limit?: string; after?: string; since?: string; wait?: string } }

/**
 * The conditional request header fields of `request` (Fastify's or node:http's), for
 * `evaluatePreconditions`.
 */
export function conditionalHeaders(request: { readonly headers: IncomingHttpHeaders }): ConditionalHeaders {
  const h = request.headers
  return {
    ifMatch: h['if-match'],
    ifNoneMatch: h['if-none-match'],
    ifModifiedSince: h['if-modified-since'],
    ifUnmodifiedSince: h['if-unmodified-since'],
  }
}

function isCreateOnly(headers: ConditionalHeaders): boolean {
  return headers.ifNoneMatch !== undefined && parseEntityTagList(headers.ifNoneMatch).any
}

/**
 * The media type the client sent, lower-cased, without parameters. Read from the raw header list:
 * app.ts drops the parsed Content-Type so that Fastify never refuses a body for it.
 */
function mediaType(request: FastifyRequest): string | undefined {
  const raw = request.raw.rawHeaders
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === 'content-type') return raw[i + 1]!.split(';', 1)[0]!.trim().toLowerCase()
  }
  return undefined
}

/** Turns a 412 or 428 decision into its problem; undefined for proceed and not-modified. */
function problemFor(decision: PreconditionDecision, method: string, id: string, createOnly: boolean): Problem | undefined {
  if (decision.outcome === 'precondition-required') return problems.preconditionRequired(method)
  if (decision.outcome !== 'precondition-failed') return undefined
  const { failed } = decision
  if (failed.field === 'if-match') return failed.becauseWeak ? problems.weakIfMatch() : problems.staleIfMatch()
  if (failed.field === 'if-unmodified-since') return problems.modifiedSince()
  return createOnly ? problems.personAlreadyExistsForCreate(id) : problems.noneMatchFailed()
}

/**
 * Registers the persons routes on `app`, backed by `store`; `cache` holds serialised
 * representations by ETag (one per app: per process).
 */
export function personsRoutes(
  app: FastifyInstance, store: PersonStore, cache: RepresentationCache, coded: CodedRepresentations, feed: ChangesFeed,
): void {
  const validators = (v: PersonValidator): CurrentValidators => currentValidators(personEtag(store.epoch, v.version), v.changedAt)

  /**
   * Answers with `person` as the store returned it, and keeps its bytes under its ETag, so the
   * next GET of that version (after a write too) is served from the cache.
   */
  function sendPerson(reply: FastifyReply, person: StoredPerson): FastifyReply {
    const representation = personRepresentation(store.epoch, person)
    return sendRepresentation(reply, cache.set(representation.headers.etag!, representation))
  }

  function notModified(reply: FastifyReply, headers: Record<string, string>): FastifyReply {
    // RFC 9110 §15.4.5: a 304 carries the validators and Cache-Control, and no content
    return setRepresentationHeaders(reply.code(304), headers).send()
  }

  // GET and HEAD share one handler; Node sends no body for HEAD but keeps the Content-Length of the
  // 200, and a 304 gets none (Fastify's automatic HEAD route would send Content-Length: 0 on a 304)
  // the params schema holds ids to the id rule; one outside it is answered by invalidPersonIdProblem
  app.route<IdRoute>({ method: SAFE_METHODS, url: '/persons/:id', ...withSchema(PERSON_SCHEMAS.read), handler: async (request, reply) => {
    const { id } = request.params
    const current = await store.readValidator(id)
    if (current === undefined) throw problems.personNotFound(id)
    const etag = personEtag(store.epoch, current.version)
    const decision = evaluatePreconditions({
      method: request.method, headers: conditionalHeaders(request), current: currentValidators(etag, current.changedAt),
    })
    if (decision.outcome === 'not-modified') return notModified(reply, validatorHeaders(etag, current.changedAt))
    const problem = problemFor(decision, request.method, id, false)
    if (problem !== undefined) throw problem
    // only now is the body needed: the one cached under the ETag just read, else the stored row
    const cached = cache.get(formatEntityTag(etag))
    if (cached !== undefined) return sendRepresentation(reply, cached)
    const person = await store.read(id)
    if (person === undefined) throw problems.personNotFound(id)
    // keyed by the version of the row read, which may be newer than the validator above
    return sendPerson(reply, person)
  } })

  app.post('/persons', withSchema(PERSON_SCHEMAS.create), async (request, reply) => {
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

  app.put<IdRoute>('/persons/:id', withSchema(PERSON_SCHEMAS.replace), async (request, reply) => {
    const { id } = request.params
    const headers = conditionalHeaders(request)
    const createOnly = isCreateOnly(headers)
    let name: string | undefined
    // If-Match names one version and no other precondition is asked: the store's compare-and-set
    // on that version is both the precondition check and the write, with no read before it
    const expected = headers.ifNoneMatch === undefined ? versionNamedByIfMatch(headers.ifMatch, store.epoch) : undefined
    if (expected !== undefined && isValidPersonId(id)) {
      // an invalid body is answered below, after the 404 that comes first
      name = readReplacementIfValid(request.body as string | undefined, id)
      const result = name === undefined ? undefined : await store.update(id, name, expected)
      if (result?.ok === true) return sendPerson(reply, result.person)
      // absent, or another version is stored: nothing was written; decide from the top as usual
    }
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
      const current = await store.readValidator(id)
      // API.md order: 404 (unless If-None-Match: * creates), then 400/413, then 428, then 412
      if (current === undefined && !createOnly) throw problems.personNotFound(id)
      name ??= readReplacement(request.body as string | undefined, id)
      const decision = evaluatePreconditions({
        method: 'PUT', headers, current: current === undefined ? null : validators(current), requirePrecondition: true,
      })
      const problem = problemFor(decision, 'PUT', id, createOnly)
      if (problem !== undefined) throw problem
      const result = current === undefined
        ? await store.create(id, name)
        : await store.update(id, name, current.version)
      // lost the compare-and-set to another write: decide again against what is stored now
      if (!result.ok) continue
      if (current === undefined) reply.code(201).header('location', `/persons/${id}`)
      return sendPerson(reply, result.person)
    }
    throw problems.writeContention()
  })

  app.patch<IdRoute>('/persons/:id', withSchema(PERSON_SCHEMAS.patch), async (request, reply) => {
    const { id } = request.params
    const headers = conditionalHeaders(request)
    let patch: MergePatch | undefined
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
      const current = await store.read(id)
      if (current === undefined) throw problems.personNotFound(id)
      patch ??= readMergePatch(request, id)
      const decision = evaluatePreconditions({
        method: 'PATCH', headers, current: validators(current), requirePrecondition: true,
      })
      const problem = problemFor(decision, 'PATCH', id, false)
      if (problem !== undefined) throw problem
      // RFC 7396: a member absent from the patch keeps its current value
      const result = await store.update(id, patch.name ?? current.name, current.version)
      if (!result.ok) continue
      return sendPerson(reply, result.person)
    }
    throw problems.writeContention()
  })

  app.delete<IdRoute>('/persons/:id', withSchema(PERSON_SCHEMAS.delete), async (request, reply) => {
    const { id } = request.params
    const headers = conditionalHeaders(request)
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
      const current = await store.readValidator(id)
      if (current === undefined) throw problems.personNotFound(id)
      const decision = evaluatePreconditions({
        method: 'DELETE', headers, current: validators(current), requirePrecondition: true,
      })
      const problem = problemFor(decision, 'DELETE', id, false)
      if (problem !== undefined) throw problem
      const result = await store.delete(id, current.version)
      if (!result.ok) continue
      return reply.code(204).send()
    }
    throw problems.writeContention()
  })

  app.route<PageRoute>({ method: SAFE_METHODS, url: '/persons', ...withSchema(PERSON_SCHEMAS.list), handler: async (request, reply) => {
    // the querystring schema has checked both parameters (a 400 otherwise)
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
    const etag = pageEtag(store.epoch, collection.revision, limit, after)
    const coding = negotiateCoding(request.headers['accept-encoding'])
    const decision = evaluatePreconditions({
      method: request.method, headers: conditionalHeaders(request), current: currentValidators(etag, collection.changedAt),
    })
    // the 304 carries the tag of the coding this request would get
    if (decision.outcome === 'not-modified') return notModified(reply, validatorHeaders(codedEtag(etag, coding), collection.changedAt))
    const problem = problemFor(decision, request.method, '', false)
    if (problem !== undefined) throw problem
    // a page is fully determined by its ETag (the revision names every write before it)
    const cached = coded.get(formatEntityTag(codedEtag(etag, coding)))
    if (cached !== undefined) return sendRepresentation(reply, cached)
    let representation = cache.get(formatEntityTag(etag))
    if (representation === undefined) {
      const page = await store.readPage({ limit, after })
      // the page was read in its own snapshot: its validator, not the one above, names what is sent
      const fresh = pageRepresentation(store.epoch, page, limit, after)
      representation = cache.set(fresh.headers.etag!, fresh)
    }
    return sendRepresentation(reply, coding === undefined ? representation : await coded.code(representation, coding))
  } })
}

function sendRepresentation(reply: FastifyReply, representation: CachedRepresentation): FastifyReply {
  return setRepresentationHeaders(reply, representation.headers).type(JSON_TYPE).send(representation.body)
}

/** Reads a PUT body: a JSON object with a valid `person_name` (and, if any, the URL's `person_id`). */
function readReplacement(raw: string | undefined, id: string): string {
  const body = parseJsonObject(raw)
  if (body instanceof Problem) throw body
  const idProblem = checkBodyIdMatches(body, id)
  if (idProblem !== undefined) throw idProblem
  // a PUT that creates (If-None-Match: *) must name a valid person
  if (!isValidPersonId(id)) throw problems.invalidField('person_id', PERSON_ID_RULE)
  const name = checkPersonName(member(body, 'person_name'))
  if (name instanceof Problem) throw name
  return name
}

function readReplacementIfValid(raw: string | undefined, id: string): string | undefined {
  try {
    return readReplacement(raw, id)
  } catch {
    return undefined
  }
}

// personEtag() writes the version in base 36: at most 11 digits below 2^53
const VERSION_DIGITS = /^[0-9a-z]{1,11}$/

/**
 * The version an `If-Match` field names when it is exactly one strong ETag of a person in this
 * database (epoch), written as personEtag() writes it; else undefined. A compare-and-set on that
 * version succeeds exactly when the field holds (RFC 9110 §13.1.1: strong comparison).
 */
function versionNamedByIfMatch(ifMatch: string | undefined, epoch: string): number | undefined {
  if (ifMatch === undefined) return undefined
  const list = parseEntityTagList(ifMatch)
  const tag = list.tags[0]
  if (list.any || list.malformed || list.tags.length !== 1 || tag === undefined || tag.weak) return undefined
  const prefix = `${epoch}.`
  if (!tag.opaque.startsWith(prefix)) return undefined
  const digits = tag.opaque.slice(prefix.length)
  if (!VERSION_DIGITS.test(digits)) return undefined
  const version = parseInt(digits, 36)
  // only the one spelling personEtag() gives names the version (no leading zeros)
  return version.toString(36) === digits ? version : undefined
}

interface MergePatch {
  readonly name?: string
}

/** Reads an RFC 7396 merge patch for a person: only `person_name` can change, and not to null. */
function readMergePatch(request: FastifyRequest, id: string): MergePatch {
  const type = mediaType(request)
  if (isOtherPatchFormat(type)) throw problems.unsupportedPatchType(type)
  const body = parseJsonObject(request.body as string | undefined)
  if (body instanceof Problem) throw body
  const idProblem = checkBodyIdMatches(body, id)
  if (idProblem !== undefined) throw idProblem
  if (!Object.hasOwn(body, 'person_name')) return {}
  // RFC 7396: null removes a member, but person_name is mandatory
  if (body.person_name === null) throw problems.invalidField('person_name', 'is mandatory and cannot be removed (null)')
  const name = checkPersonName(body.person_name)
  if (name instanceof Problem) throw name
  return { name }
}

/**
 * The answer to a request on /persons/{id} whose id breaks the id rule (the params schema caught
 * it): such a person cannot exist, so 404, whatever the preconditions (RFC 9110 §13.2.1), except
 * that a PUT with If-None-Match: * tries to create it, which is judged as a bad body would be (400).
 */
export function invalidPersonIdProblem(request: FastifyRequest): Problem {
  const { id } = request.params as { id: string }
  if (request.method === 'PUT' && isCreateOnly(conditionalHeaders(request))) {
    try {
      readReplacement(request.body as string | undefined, id)
    } catch (problem) {
      if (problem instanceof Problem) return problem
      throw problem
    }
  }
  return problems.personNotFound(id)
}
