/**
 * PUT, PATCH and DELETE of a person: one write pipeline. Each decides its preconditions from the
 * stored version and writes with a compare-and-set on exactly that version; when another write
 * came first, the store says so and the request is decided again from the top. The check and the
 * write are therefore one step: of N writers holding one ETag exactly one wins, the rest get 412.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { evaluatePreconditions, isCreateOnly, parseEntityTagList, type ConditionalHeaders } from '../core/index.js'
import type { DeleteResult, PersonStore, PersonValidator, StoredPerson, WriteResult } from '../store/person-store.js'
import { conditionalHeaders } from './conditional-read.js'
import { isValidPersonId, readMergePatch, readReplacement } from './person-input.js'
import { preconditionProblem, Problem, problems } from './problems.js'
import { currentValidators, personEtag } from './representation.js'
import { PERSON_ROUTE } from './routes.js'
import { PERSON_SCHEMAS, routeOptions } from './route-schemas.js'

/** How often a write re-reads and retries after losing a compare-and-set before it gives up (503). */
const MAX_WRITE_ATTEMPTS = 50

interface IdRoute {
  Params: { id: string }
}

/** One conditional write: how it reads what is stored, judges its body, and writes. */
interface WriteSteps<Current extends PersonValidator, Input> {
  readonly method: 'PUT' | 'PATCH' | 'DELETE'
  readonly id: string
  readonly headers: ConditionalHeaders
  /** A PUT with If-None-Match: * creates: an absent person is not a 404 for it. */
  readonly createOnly: boolean
  readonly read: () => Promise<Current | undefined>
  /** The body, judged after the 404 (API.md's order: 404, then 400/413/415, then 428, then 412). */
  readonly input: () => Input | Problem
  readonly write: (current: Current | undefined, input: Input) => Promise<WriteResult | DeleteResult>
}

/** What a write that succeeded wrote, and whether it created the person. */
interface Written {
  readonly result: WriteResult | DeleteResult
  readonly created: boolean
}

/** Sends a person written by a PUT or PATCH (201 with Location when it was created). */
export type SendPerson = (reply: FastifyReply, person: StoredPerson) => FastifyReply

/** Registers PUT, PATCH and DELETE of a person on `app`. */
export function personWriteRoutes(app: FastifyInstance, store: PersonStore, sendPerson: SendPerson): void {
  const epoch = store.epoch

  async function conditionalWrite<Current extends PersonValidator, Input>(steps: WriteSteps<Current, Input>): Promise<Written> {
    let input: Input | undefined
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
      const current = await steps.read()
      if (current === undefined && !steps.createOnly) throw problems.personNotFound(steps.id)
      if (input === undefined) {
        const read = steps.input()
        if (read instanceof Problem) throw read
        input = read
      }
      const decision = evaluatePreconditions({
        method: steps.method,
        headers: steps.headers,
        requirePrecondition: true,
        current: current === undefined ? null : currentValidators(personEtag(epoch, current.version), current.changedAt),
      })
      const problem = preconditionProblem(decision, steps.method, steps.id, steps.createOnly)
      if (problem !== undefined) throw problem
      const result = await steps.write(current, input)
      // lost the compare-and-set to another write: decide again against what is stored now
      if (!result.ok) continue
      return { result, created: current === undefined }
    }
    throw problems.writeContention()
  }

  function sendWritten(reply: FastifyReply, id: string, written: Written): FastifyReply {
    if (!written.result.ok || !('person' in written.result)) return reply.code(204).send()
    if (written.created) reply.code(201).header('location', `/persons/${id}`)
    return sendPerson(reply, written.result.person)
  }

  app.put<IdRoute>(PERSON_ROUTE, routeOptions(PERSON_SCHEMAS.replace), async (request, reply) => {
    const { id } = request.params
    const headers = conditionalHeaders(request.headers)
    const body = request.body as string | undefined
    // If-Match names one version and no other precondition is asked: the store's compare-and-set
    // on that version is both the precondition check and the write, with no read before it
    const expected = headers.ifNoneMatch === undefined ? versionNamedByIfMatch(headers.ifMatch, epoch) : undefined
    if (expected !== undefined && isValidPersonId(id)) {
      const name = readReplacement(body, id)
      // an invalid body is answered below, after the 404 that comes first
      const result = name instanceof Problem ? undefined : await store.update(id, name, expected)
      if (result?.ok === true) return sendPerson(reply, result.person)
      // absent, or another version is stored: nothing was written; decide from the top as usual
    }
    const createOnly = isCreateOnly(headers)
    return sendWritten(
      reply,
      id,
      await conditionalWrite({
        method: 'PUT',
        id,
        headers,
        createOnly,
        read: () => store.readValidator(id),
        input: () => readReplacement(body, id),
        write: (current, name) => (current === undefined ? store.create(id, name) : store.update(id, name, current.version)),
      }),
    )
  })

  app.patch<IdRoute>(PERSON_ROUTE, routeOptions(PERSON_SCHEMAS.patch), async (request, reply) => {
    const { id } = request.params
    return sendWritten(
      reply,
      id,
      await conditionalWrite({
        method: 'PATCH',
        id,
        headers: conditionalHeaders(request.headers),
        createOnly: false,
        read: () => store.read(id),
        input: () => readMergePatch(mediaType(request), request.body as string | undefined, id),
        // RFC 7396: a member absent from the patch keeps its current value
        write: (current, patch) => store.update(id, patch.name ?? current!.name, current!.version),
      }),
    )
  })

  app.delete<IdRoute>(PERSON_ROUTE, routeOptions(PERSON_SCHEMAS.delete), async (request, reply) => {
    const { id } = request.params
    return sendWritten(
      reply,
      id,
      await conditionalWrite({
        method: 'DELETE',
        id,
        headers: conditionalHeaders(request.headers),
        createOnly: false,
        read: () => store.readValidator(id),
        input: () => true,
        write: (current) => store.delete(id, current!.version),
      }),
    )
  })
}

/**
 * The answer to a request on /persons/{id} whose id breaks the id rule (the params schema caught
 * it): such a person cannot exist, so 404, whatever the preconditions (RFC 9110 §13.2.1), except
 * that a PUT with If-None-Match: * tries to create it, which is judged as a bad body would be (400).
 */
export function invalidPersonIdProblem(request: FastifyRequest): Problem {
  const { id } = request.params as { id: string }
  if (request.method === 'PUT' && isCreateOnly(conditionalHeaders(request.headers))) {
    const name = readReplacement(request.body as string | undefined, id)
    if (name instanceof Problem) return name
  }
  return problems.personNotFound(id)
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
