/**
 * Writing a representation, a 304 or a problem on a Fastify reply. Every answer of a person, a
 * page or a feed answer goes out through these, so its header fields are set one way.
 */
import type { FastifyReply } from 'fastify'
import type { Problem } from './problems.js'
import type { CachedRepresentation } from './representation-cache.js'
import { JSON_TYPE, validatorFields } from './representation.js'

/**
 * Sets `headers` on `reply` without losing what a plugin set before: `Vary` is a list (RFC 9110
 * §12.5.5), so CORS's `Vary: Origin` and a representation's `Vary: Accept-Encoding` are joined,
 * where a plain set would keep only the last.
 */
export function setRepresentationHeaders(reply: FastifyReply, headers: Readonly<Record<string, string>>): FastifyReply {
  const vary = headers.vary
  const before = reply.getHeader('vary')
  reply.headers(headers)
  if (vary !== undefined && before !== undefined) reply.header('vary', `${String(before)}, ${vary}`)
  return reply
}

/** Answers `200` (or the status already set) with a serialised representation and its fields. */
export function sendRepresentation(reply: FastifyReply, representation: CachedRepresentation): FastifyReply {
  return setRepresentationHeaders(reply, representation.headers).type(JSON_TYPE).send(representation.body)
}

/**
 * Answers `304` (RFC 9110 §15.4.5): the validators, Cache-Control and Vary, no content.
 * `vary` replaces the representation's usual Vary (a feed answer varies on Accept too).
 */
export function sendNotModified(reply: FastifyReply, etag: string, lastModified: string, vary?: string): FastifyReply {
  const fields = validatorFields(etag, lastModified)
  return setRepresentationHeaders(reply.code(304), vary === undefined ? fields : { ...fields, vary }).send()
}

/** Answers a problem as `application/problem+json` (RFC 9457) with its own header fields. */
export function sendProblem(reply: FastifyReply, problem: Problem): FastifyReply {
  return reply.code(problem.status).headers(problem.headers).type('application/problem+json').send(JSON.stringify(problem.toJSON()))
}
