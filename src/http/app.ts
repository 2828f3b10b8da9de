/**
 * buildApp() wires a store to the HTTP contract and returns a Fastify instance that has not
 * started listening (server.ts listens; tests listen on port 0).
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { STATUS_CODES } from 'node:http'
import { parseEntityTagList } from '../core/index.js'
import { StoreUnavailableError, type PersonStore } from '../store/person-store.js'
import { registerCors, type CorsOrigins } from './cors.js'
import { personsRoutes } from './persons-routes.js'
import { RepresentationCache } from './representation-cache.js'
import { lazyChildLoggerFactory } from './request-logger.js'
import { BODY_LIMIT_BYTES, PROBLEM_TYPES, Problem, problems } from './problems.js'
import { webRoutes } from './web-routes.js'

export interface AppOptions {
  readonly store: PersonStore
  /** The most bytes of serialised representations kept in memory (default 64 MiB). */
  readonly cacheBytes?: number
  /** A pino logger or pino options; false (the default) logs nothing, as tests want. */
  readonly logger?: boolean | Record<string, unknown> | FastifyBaseLogger
  /** Origins whose scripts may call the API across origins (`*`: any); absent (the default): CORS is off. */
  readonly corsOrigins?: CorsOrigins | undefined
}

// the methods each resource answers; anything else there is a 405 with this Allow header
const COLLECTION_METHODS = ['GET', 'HEAD', 'POST']
const PERSON_METHODS = ['GET', 'HEAD', 'PUT', 'PATCH', 'DELETE']
const PERSON_PATH = /^\/persons\/[^/]+$/

function sendProblem(reply: FastifyReply, problem: Problem): FastifyReply {
  return reply.code(problem.status).headers(problem.headers)
    .type('application/problem+json').send(JSON.stringify(problem.toJSON()))
}

/** Builds the service around `store`. */
export function buildApp(options: AppOptions): FastifyInstance {
  const { store } = options
  const logger = options.logger ?? false
  const app = Fastify({
    ...(typeof logger === 'object' && 'info' in logger ? { loggerInstance: logger as FastifyBaseLogger } : { logger }),
    bodyLimit: BODY_LIMIT_BYTES,
    // one log line per request costs more than a 304 itself; errors and lifecycle events still log
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: lazyChildLoggerFactory,
    // ids are at most 64 characters; longer ones must still reach the route to be answered 404
    routerOptions: { maxParamLength: 2048 },
    // errors Fastify raises before routing (a malformed %-escape in the URL, …) are problems too
    frameworkErrors: (error, _request, reply) => {
      void sendProblem(reply, clientProblem(error.statusCode, error.message))
    },
    // errors before there is a request at all (Node's parser: header section over 16 KiB, bad
    // framing) get a problem too, written on the raw socket, which is then closed
    clientErrorHandler: (error: NodeJS.ErrnoException, socket) => {
      if (error.code === 'ECONNRESET' || !socket.writable) return
      // API.md: a huge validator header is a 400, never a stall
      const detail = error.code === 'HPE_HEADER_OVERFLOW'
        ? 'The request header section is larger than 16 KiB'
        : 'The request is not valid HTTP/1.1'
      const body = JSON.stringify(problems.badRequest(detail).toJSON())
      socket.end([
        'HTTP/1.1 400 Bad Request',
        'Content-Type: application/problem+json; charset=utf-8',
        `Content-Length: ${Buffer.byteLength(body)}`,
        'Connection: close',
        '',
        body,
      ].join('\r\n'))
    },
  })

  // API.md: bodies are JSON whatever their Content-Type says, even one that is not a valid media
  // type, which Fastify would refuse with 415 before any route runs. Dropping the field sends every
  // body to the catch-all parser below; PATCH still reads the original (see persons-routes.ts).
  app.addHook('onRequest', (request, _reply, done) => {
    if (request.headers['content-type'] !== undefined) delete request.headers['content-type']
    done()
  })

  // API.md: bodies are JSON whatever their Content-Type says (the seed's curl --data sends a form
  // type). The raw text goes to the route, which checks existence (404) before it parses (400).
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body))

  if (options.corsOrigins !== undefined) registerCors(app, options.corsOrigins)
  personsRoutes(app, store, new RepresentationCache(options.cacheBytes))
  webRoutes(app)

  app.get('/problems/:slug', async (request: FastifyRequest<{ Params: { slug: string } }>, reply) => {
    const { slug } = request.params
    const description = Object.hasOwn(PROBLEM_TYPES, slug) ? PROBLEM_TYPES[slug] : undefined
    if (description === undefined) throw problems.routeNotFound('GET', `/problems/${slug}`)
    return reply.type('text/plain; charset=utf-8').send(`${slug}: ${description}\n`)
  })

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?', 1)[0]!
    const allow = path === '/persons' ? COLLECTION_METHODS : PERSON_PATH.test(path) ? PERSON_METHODS : undefined
    if (allow !== undefined && !allow.includes(request.method)) {
      return sendProblem(reply, problems.methodNotAllowed(request.method, allow))
    }
    return sendProblem(reply, problems.routeNotFound(request.method, path))
  })

  app.setErrorHandler(async (error: FastifyError, request, reply) => {
    if (error instanceof Problem) {
      // API.md: a write to an absent person is a 404 before its body is judged (413 included)
      if (error.status === 413) return sendProblem(reply, await absentWriteTarget(store, request) ?? error)
      return sendProblem(reply, error)
    }
    if (error instanceof StoreUnavailableError) {
      request.log.warn({ err: error }, 'store unavailable')
      return sendProblem(reply, problems.storeUnavailable())
    }
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return sendProblem(reply, await absentWriteTarget(store, request) ?? problems.bodyTooLarge())
    }
    const status = error.statusCode ?? 500
    if (status >= 400 && status < 500 && error.code?.startsWith('FST_')) {
      // Fastify's own client errors (bad Content-Length, malformed URL, …) speak of the request only
      return sendProblem(reply, clientProblem(status, error.message))
    }
    // a bug: log it with its cause, tell the client nothing about it
    request.log.error({ err: error }, 'unhandled error')
    return sendProblem(reply, problems.internal())
  })

  return app
}

/** A problem for a 4xx that Fastify raised about the request itself. */
function clientProblem(status: number | undefined, message: string): Problem {
  if (status === undefined || status === 400 || status < 400 || status >= 500) return problems.badRequest(message)
  return problems.clientError(status, STATUS_CODES[status] ?? 'Client Error', message)
}

/** The 404 for a PUT/PATCH/DELETE whose person is absent (and not created by If-None-Match: *). */
async function absentWriteTarget(store: PersonStore, request: FastifyRequest): Promise<Problem | undefined> {
  if (!['PUT', 'PATCH', 'DELETE'].includes(request.method)) return undefined
  const path = request.url.split('?', 1)[0]!
  if (!PERSON_PATH.test(path)) return undefined
  const id = (request.params as { id?: string }).id
  if (id === undefined) return undefined
  const ifNoneMatch = request.headers['if-none-match']
  if (request.method === 'PUT' && ifNoneMatch !== undefined && parseEntityTagList(ifNoneMatch).any) return undefined
  try {
    return (await store.readValidator(id)) === undefined ? problems.personNotFound(id) : undefined
  } catch {
    return undefined
  }
}
