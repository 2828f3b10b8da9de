/**
 * Optional write protection (API_TOKEN): requests must carry `Authorization: Bearer <token>`
 * (RFC 6750 §2.1), compared in constant time. It runs in onRequest, before the route looks
 * anything up, so an unauthenticated writer learns nothing, not even whether a person exists.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { onRequestHookHandler } from 'fastify'
import { problems } from './problems.js'

/** RFC 7235 §2.1: the scheme is case-insensitive; RFC 6750 §2.1: one space, then the token. */
const BEARER = /^bearer +(\S+) *$/i
/** RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/

/** True when `token` can be sent in an Authorization: Bearer header (RFC 6750's b64token). */
export function isValidBearerToken(token: string): boolean {
  return B64TOKEN.test(token)
}

/** The methods that only read; everything else writes. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/** The token, and whether reads need it too. */
export interface BearerAuthOptions {
  /** The secret every protected request must present. */
  readonly token: string
  /** Protect GET and HEAD too (API_TOKEN_READS=1); by default reads stay open. */
  readonly protectReads?: boolean
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest()
}

/**
 * True when `authorization` is a Bearer credential for `expected` (a SHA-256 digest). Both sides
 * are hashed first so that timingSafeEqual compares equal lengths and the time taken says
 * nothing about the token, not even its length.
 */
export function isAuthorized(authorization: string | undefined, expected: Buffer): boolean {
  const match = authorization === undefined ? null : BEARER.exec(authorization)
  return match !== null && timingSafeEqual(digest(match[1]!), expected)
}

/**
 * An onRequest hook that answers 401 (with `WWW-Authenticate: Bearer realm="ifmatch"`) to any
 * write, and to reads when `protectReads`, that lacks the token.
 *
 * @example
 * app.addHook('onRequest', bearerAuth({ token: process.env.API_TOKEN }))
 */
export function bearerAuth(options: BearerAuthOptions): onRequestHookHandler {
  if (!isValidBearerToken(options.token)) throw new Error('API_TOKEN must be a bearer token: letters, digits and - . _ ~ + /, then optional =')
  const expected = digest(options.token)
  const protectReads = options.protectReads === true
  return (request, _reply, done) => {
    if (!protectReads && SAFE_METHODS.has(request.method)) return done()
    const authorization = request.headers.authorization
    if (isAuthorized(authorization, expected)) return done()
    done(authorization === undefined ? problems.missingToken() : problems.invalidToken())
  }
}
