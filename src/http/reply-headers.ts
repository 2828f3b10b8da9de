/**
 * Setting a representation's header fields on a Fastify reply without losing what a plugin set
 * before: `Vary` is a list (RFC 9110 §12.5.5), so CORS's `Vary: Origin` and the representation's
 * `Vary: Accept-Encoding` are joined, where a plain set would keep only the last.
 */
import type { FastifyReply } from 'fastify'

/** Sets `headers` on `reply`, appending to a `Vary` already there. */
export function setRepresentationHeaders(reply: FastifyReply, headers: Readonly<Record<string, string>>): FastifyReply {
  const vary = headers.vary
  const before = reply.getHeader('vary')
  reply.headers(headers)
  if (vary !== undefined && before !== undefined) reply.header('vary', `${String(before)}, ${vary}`)
  return reply
}
