/**
 * How every error becomes an answer: a Problem as `application/problem+json`, a schema violation
 * as the contract words it, an unavailable store as 503, Fastify's and Node's client errors as
 * problems that speak of the request only, and anything else as a logged bug behind a generic
 * 500 (STYLE.md: expose client messages, hide server ones).
 */
import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { isCreateOnly } from '../core/index.js'
import { StoreUnavailableError, type PersonStore } from '../store/person-store.js'
import { conditionalHeaders } from './conditional-read.js'
import { invalidPersonIdProblem } from './person-writes.js'
import { Problem, problems } from './problems.js'
import { sendProblem } from './replies.js'
import { allowedMethods, isPersonPath, PERSON_ROUTE } from './routes.js'
import { validationProblem } from './route-schemas.js'

/** Sets the app's 404/405 handler and its error handler. */
export function handleErrors(app: FastifyInstance, store: PersonStore): void {
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?', 1)[0]!
    const allow = allowedMethods(path)
    if (allow !== undefined && !allow.includes(request.method)) {
      return sendProblem(reply, problems.methodNotAllowed(request.method, allow))
    }
    return sendProblem(reply, problems.routeNotFound(request.method, path))
  })

  app.setErrorHandler(async (error: FastifyError, request, reply) => {
    if (error instanceof Problem) {
      // API.md: a write to an absent person is a 404 before its body is judged (413 included)
      if (error.status === 413) return sendProblem(reply, (await absentWriteTarget(store, request)) ?? error)
      return sendProblem(reply, error)
    }
    if (error.validation !== undefined) {
      // an id outside the id rule names no person: the persons routes say what that means
      const idRule = error.validationContext === 'params' && request.routeOptions.url === PERSON_ROUTE
      return sendProblem(reply, idRule ? invalidPersonIdProblem(request) : validationProblem(error, request))
    }
    if (error instanceof StoreUnavailableError) {
      request.log.warn({ err: error }, 'store unavailable')
      return sendProblem(reply, problems.storeUnavailable())
    }
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return sendProblem(reply, (await absentWriteTarget(store, request)) ?? problems.bodyTooLarge())
    }
    const status = error.statusCode ?? 500
    if (status >= 400 && status < 500 && error.code?.startsWith('FST_')) {
      // Fastify's own client errors (bad Content-Length, malformed URL, …) speak of the request only
      return sendProblem(reply, clientProblem(status, error.message))
    }
    if (status >= 400 && status < 500) {
      // a client error raised below Fastify (a body cut off by the client: Node's "aborted", a
      // plugin's 404): the client's doing, not a bug; its message is not ours to repeat
      request.log.info({ err: error }, 'client error')
      return sendProblem(reply, clientProblem(status, 'The request could not be read'))
    }
    // a bug: log it with its cause, tell the client nothing about it
    request.log.error({ err: error }, 'unhandled error')
    return sendProblem(reply, problems.internal())
  })
}

/** A problem for a 4xx that Fastify raised about the request itself. */
export function clientProblem(status: number | undefined, message: string): Problem {
  if (status === undefined || status === 400 || status < 400 || status >= 500) return problems.badRequest(message)
  return problems.clientError(status, STATUS_CODES[status] ?? 'Client Error', message)
}

/** Answers an error Fastify raised before routing (no hook runs for those). */
export function answerFrameworkError(error: FastifyError, reply: FastifyReply): void {
  void sendProblem(reply, clientProblem(error.statusCode, error.message))
}

/** The 404 for a PUT/PATCH/DELETE whose person is absent (and not created by If-None-Match: *). */
async function absentWriteTarget(store: PersonStore, request: FastifyRequest): Promise<Problem | undefined> {
  if (!['PUT', 'PATCH', 'DELETE'].includes(request.method)) return undefined
  if (!isPersonPath(request.url.split('?', 1)[0]!)) return undefined
  const id = (request.params as { id?: string }).id
  if (id === undefined) return undefined
  if (request.method === 'PUT' && isCreateOnly(conditionalHeaders(request.headers))) return undefined
  try {
    return (await store.readValidator(id)) === undefined ? problems.personNotFound(id) : undefined
  } catch {
    return undefined
  }
}
