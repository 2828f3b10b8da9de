/**
 * buildApp() wires a store to the HTTP contract and returns a Fastify instance that has not
 * started listening (server.ts listens; tests listen on port 0).
 */
import { randomBytes } from 'node:crypto'
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { parseEntityTagList } from '../core/index.js'
import { InstrumentedPersonStore } from '../store/instrumented-person-store.js'
import { StoreUnavailableError, type PersonStore } from '../store/person-store.js'
import { bearerAuth } from './bearer-auth.js'
import { registerCors, type CorsOrigins } from './cors.js'
import { ServiceMetrics } from './metrics.js'
import { registerOpenApi } from './openapi.js'
import { operationsRoutes } from './operations-routes.js'
import { invalidPersonIdProblem, personsRoutes } from './persons-routes.js'
import { readFastPath, type ReadFastPath } from './read-fast-path.js'
import { RepresentationCache } from './representation-cache.js'
import { lazyChildLoggerFactory } from './request-logger.js'
import { BODY_LIMIT_BYTES, Problem, isProblemSlug, problemTypeText, problems } from './problems.js'
import { OPERATIONS_RESPONSES, operationsSchema, validationProblem } from './route-schemas.js'
import { CONTENT_SECURITY_POLICY, SECURITY_HEADERS } from './security-headers.js'
import { webRoutes } from './web-routes.js'
import { ChangeHub } from './change-hub.js'
import { changesFeed } from './changes-feed.js'
import { CodedRepresentations } from './content-coding.js'

export interface AppOptions {
  readonly store: PersonStore
  /** The most bytes of serialised representations kept in memory (default 64 MiB). */
  readonly cacheBytes?: number
  /** A pino logger or pino options; false (the default) logs nothing, as tests want. */
  readonly logger?: boolean | Record<string, unknown> | FastifyBaseLogger
  /** Log one line when each request arrives and one when it is answered (LOG_REQUESTS=1). Off by default: it costs more than a 304. */
  readonly logRequests?: boolean
  /** When set, writes need `Authorization: Bearer <apiToken>` (API_TOKEN). */
  readonly apiToken?: string | undefined
  /** With `apiToken`, reads need the token too (API_TOKEN_READS=1). */
  readonly protectReads?: boolean
  /** Export prom-client's process metrics too (CPU, memory, event loop lag); the server does. */
  readonly processMetrics?: boolean
  /** Origins whose scripts may call the API across origins (`*`: any); absent (the default): CORS is off. */
  readonly corsOrigins?: CorsOrigins | undefined
  /**
   * Answer cheap GETs and HEADs (304s, cached 200s) before routing, when the store's validator reads
   * are immediate (default true; see read-fast-path.ts). Off, every request takes Fastify's path.
   */
  readonly readFastPath?: boolean
  /**
   * How long tombstones of deletes are kept for the changes feed, in ms (TOMBSTONE_RETENTION);
   * absent (the default): for ever. Older ones are purged now and then, and tokens from before them get 410.
   */
  readonly tombstoneRetentionMs?: number | undefined
  /** The longest a changes event stream stays silent before a comment line, in ms (default 10 s). */
  readonly changesHeartbeatMs?: number | undefined
}

// the methods each resource answers; anything else there is a 405 with this Allow header
const COLLECTION_METHODS = ['GET', 'HEAD', 'POST']
const PERSON_METHODS = ['GET', 'HEAD', 'PUT', 'PATCH', 'DELETE']
const PERSON_PATH = /^\/persons\/[^/]+$/

/** How long an idle keep-alive connection stays open, in ms (Fastify's default). */
const KEEP_ALIVE_TIMEOUT_MS = 72_000

/** How long a client may take to send one whole request, headers and body, in ms. */
export const REQUEST_TIMEOUT_MS = 30_000

// a client's X-Request-Id is kept when it is short and harmless in a log line; else one is made
const REQUEST_ID = /^[A-Za-z0-9._~:/+=-]{1,128}$/
const REQUEST_ID_PREFIX = randomBytes(3).toString('hex')
let requestCount = 0

function requestId(request: IncomingMessage): string {
  const given = request.headers['x-request-id']
  if (typeof given === 'string' && REQUEST_ID.test(given)) return given
  // the prefix tells the processes of one deployment (--workers) apart
  return `${REQUEST_ID_PREFIX}-${(++requestCount).toString(36)}`
}

function sendProblem(reply: FastifyReply, problem: Problem): FastifyReply {
  return reply.code(problem.status).headers(problem.headers)
    .type('application/problem+json').send(JSON.stringify(problem.toJSON()))
}

/** Builds the service around `store`. */
export function buildApp(options: AppOptions): FastifyInstance {
  const logger = options.logger ?? false
  const cache = new RepresentationCache(options.cacheBytes)
  const metrics = new ServiceMetrics({ processMetrics: options.processMetrics === true, bodySize: (etag) => cache.sizeOf(etag) })
  const store = new InstrumentedPersonStore(options.store, metrics.observeStore)
  let closing = false
  const hub = new ChangeHub(store)
  const coded = new CodedRepresentations(cache, metrics.countCompressed)
  const feed = changesFeed({ store, cache, coded, metrics, hub, heartbeatMs: options.changesHeartbeatMs })
  // reads the framework would answer with more than a 304 or cached 200 cannot take the fast path:
  // a request log, a token on reads, or CORS headers (Vary: Origin on every answer)
  const fastPath: ReadFastPath | undefined = store.immediate === undefined || options.readFastPath === false ||
    options.logRequests === true || (options.apiToken !== undefined && options.protectReads === true) ||
    options.corsOrigins !== undefined
    ? undefined
    : readFastPath({ reads: store.immediate, epoch: store.epoch, cache, metrics, closing: () => closing })
  const app = Fastify({
    ...(typeof logger === 'object' && 'info' in logger ? { loggerInstance: logger as FastifyBaseLogger } : { logger }),
    bodyLimit: BODY_LIMIT_BYTES,
    // one log line per request costs more than a 304 itself; errors and lifecycle events still log
    logController: new LogController({ disableRequestLogging: options.logRequests !== true }),
    genReqId: requestId,
    childLoggerFactory: lazyChildLoggerFactory,
    // a client has this long to send a whole request (Node checks every 30 s): a slow-body
    // client cannot hold a connection, nor a graceful shutdown, for ever
    requestTimeout: REQUEST_TIMEOUT_MS,
    // ids are at most 64 characters; longer ones must still reach the route to be answered 404
    routerOptions: { maxParamLength: 2048 },
    // while closing, requests that still arrive on open connections are served (the store is still
    // open) with Connection: close, rather than answered a bare 503
    return503OnClosing: false,
    // errors Fastify raises before routing (a malformed %-escape in the URL, …) are problems too;
    // no hook runs for them, so they get their security headers here
    frameworkErrors: (error, _request, reply) => {
      secure(reply)
      void sendProblem(reply, clientProblem(error.statusCode, error.message))
    },
    clientErrorHandler: answerClientError,
    // the server Fastify would make, with the fast path in front of its handler
    serverFactory: (handler) => {
      const server = createServer(fastPath === undefined ? handler : (request, response) => {
        if (!fastPath(request, response)) handler(request, response)
      })
      trackOpenResponses(server)
      // what Fastify sets on a server it makes itself
      server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS
      server.requestTimeout = REQUEST_TIMEOUT_MS
      return server
    },
  })
  app.addHook('preClose', (done) => {
    closing = true
    // waiting long polls answer now with what there is, and event streams end
    hub.close()
    closeConnectionsWhenIdle(app)
    done()
  })
  if (options.tombstoneRetentionMs !== undefined) purgeTombstonesEvery(app, store, options.tombstoneRetentionMs)

  // API.md: bodies are JSON whatever their Content-Type says, even one that is not a valid media
  // type, which Fastify would refuse with 415 before any route runs. Dropping the field sends every
  // body to the catch-all parser below; PATCH still reads the original (see persons-routes.ts).
  // (set to undefined rather than deleted: a delete would turn the headers object into a slow
  // dictionary for every later read of it; Fastify treats an undefined type as an absent one)
  app.addHook('onRequest', (request, _reply, done) => {
    if (request.headers['content-type'] !== undefined) request.headers['content-type'] = undefined
    done()
  })

  // API.md: bodies are JSON whatever their Content-Type says (the seed's curl --data sends a form
  // type). The raw text goes to the route, which checks existence (404) before it parses (400).
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body))

  // Node answers an Expect other than 100-continue with a bare 417 unless someone listens
  app.server.on('checkExpectation', answerExpectation)

  if (options.corsOrigins !== undefined) registerCors(app, options.corsOrigins)

  // the one hook every response passes: security headers, the request id, and the metrics
  app.addHook('onSend', (request, reply, _payload, done) => {
    secure(reply)
    // a client that sent X-Request-Id gets back the id its request is logged under
    if (request.headers['x-request-id'] !== undefined) reply.header('x-request-id', request.id)
    metrics.observeResponse(request, reply)
    done()
  })

  registerOpenApi(app)

  // registered after @fastify/swagger has loaded, so that the document lists every route
  void app.register(async (api) => {
    // 401 comes first, before 404: an unauthenticated writer learns nothing about what exists
    if (options.apiToken !== undefined) api.addHook('onRequest', bearerAuth({ token: options.apiToken, protectReads: options.protectReads === true }))
    personsRoutes(api, store, cache, coded, feed)
  })
  // the web page and its files: not the API, so not in its document
  void app.register(async (web) => webRoutes(web))
  void app.register(async (operations) => {
    operationsRoutes(operations, store, metrics)
    operations.get('/problems/:slug', {
      schema: operationsSchema('problemType', 'What a problem type means (the `type` of every problem body is such a path)', {
        200: OPERATIONS_RESPONSES.text('One sentence on the problem type.'),
        404: OPERATIONS_RESPONSES.notFound,
      }),
    }, async (request: FastifyRequest<{ Params: { slug: string } }>, reply) => {
      const { slug } = request.params
      if (!isProblemSlug(slug)) throw problems.routeNotFound('GET', `/problems/${slug}`)
      return reply.type('text/plain; charset=utf-8').send(problemTypeText(slug))
    })
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
    if (error.validation !== undefined) {
      // an id outside the id rule names no person: the persons routes say what that means
      const idRule = error.validationContext === 'params' && request.routeOptions.url === '/persons/:id'
      return sendProblem(reply, idRule ? invalidPersonIdProblem(request) : validationProblem(error, request))
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

  return app
}

/**
 * Once no request is in flight, closes every connection. Node's server.close() closes only the
 * connections that are idle at that moment: a long poll answered during the shutdown leaves its
 * keep-alive connection open, and a connection on which no request was ever sent (Node's fetch opens
 * one after an aborted request) is not idle to it either; either would hold app.close() until the
 * keep-alive timeout (72 s).
 */
function closeConnectionsWhenIdle(app: FastifyInstance): void {
  let inFlight = 0
  const server = app.server
  const count = (_request: IncomingMessage, response: ServerResponse): void => {
    inFlight++
    response.once('close', () => inFlight--)
  }
  // from now on: requests already running are counted by the responses still open
  for (const response of openResponses.get(server) ?? []) {
    inFlight++
    response.once('close', () => inFlight--)
  }
  server.on('request', count)
  const sweep = setInterval(() => {
    if (inFlight === 0) server.closeAllConnections()
  }, 50)
  sweep.unref()
  server.once('close', () => {
    clearInterval(sweep)
    server.off('request', count)
  })
}

// the responses each server has open, so a shutdown knows what is still in flight
const openResponses = new WeakMap<Server, Set<ServerResponse>>()

function trackOpenResponses(server: Server): void {
  const open = new Set<ServerResponse>()
  openResponses.set(server, open)
  server.on('request', (_request: IncomingMessage, response: ServerResponse) => {
    open.add(response)
    response.once('close', () => open.delete(response))
  })
}

/**
 * Removes tombstones older than `retentionMs` when the app is ready and then at a tenth of the
 * retention (between 100 ms and an hour), until the app closes.
 */
function purgeTombstonesEvery(app: FastifyInstance, store: PersonStore, retentionMs: number): void {
  const purge = (): void => {
    store.purgeTombstones(Date.now() - retentionMs).catch((error: unknown) => {
      app.log.warn({ err: error }, 'could not purge tombstones; trying again later')
    })
  }
  let timer: NodeJS.Timeout | undefined
  app.addHook('onReady', (done) => {
    purge()
    timer = setInterval(purge, Math.min(Math.max(retentionMs / 10, 100), 3_600_000))
    timer.unref()
    done()
  })
  app.addHook('onClose', (_instance, done) => {
    clearInterval(timer)
    done()
  })
}

/** A problem for a 4xx that Fastify raised about the request itself. */
function clientProblem(status: number | undefined, message: string): Problem {
  if (status === undefined || status === 400 || status < 400 || status >= 500) return problems.badRequest(message)
  return problems.clientError(status, STATUS_CODES[status] ?? 'Client Error', message)
}

/** Sets the security headers; a route that set its own Content-Security-Policy keeps it. */
function secure(reply: FastifyReply): void {
  reply.headers(SECURITY_HEADERS)
  if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', CONTENT_SECURITY_POLICY)
}

/**
 * Answers what Node's HTTP parser refused before there was a request at all (a header section
 * over 16 KiB, bad framing) with a problem and the security headers, on the raw socket, which is
 * then closed.
 */
function answerClientError(error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === 'ECONNRESET' || !socket.writable) return
  // an answer already under way cannot be followed by another one
  if (socket.bytesWritten > 0) {
    socket.destroy()
    return
  }
  // API.md: a huge validator header is a 400, never a stall
  const problem = error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? problems.requestTimeout()
    : problems.badRequest(error.code === 'HPE_HEADER_OVERFLOW'
      ? 'The request header section is larger than 16 KiB'
      : 'The request is not valid HTTP/1.1')
  const body = JSON.stringify(problem.toJSON())
  const headers = Object.entries({ ...SECURITY_HEADERS, 'content-security-policy': CONTENT_SECURITY_POLICY })
    .map(([name, value]) => `${name}: ${value}`)
  socket.end([
    `HTTP/1.1 ${problem.status} ${problem.title}`,
    'Content-Type: application/problem+json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...headers,
    'Connection: close',
    '',
    // RFC 9110 §9.3.2: no content in an answer to HEAD (the bytes Node could not parse still say
    // which method they began with)
    isHeadRequest(error) ? '' : body,
  ].join('\r\n'))
}

function isHeadRequest(error: NodeJS.ErrnoException & { rawPacket?: unknown }): boolean {
  return Buffer.isBuffer(error.rawPacket) && error.rawPacket.subarray(0, 5).toString('latin1') === 'HEAD '
}

/**
 * RFC 9110 §10.1.1: an expectation other than 100-continue cannot be met; the 417 is a problem
 * with the security headers, like every other answer.
 */
function answerExpectation(_request: IncomingMessage, response: ServerResponse): void {
  const body = JSON.stringify(problems.expectationFailed().toJSON())
  response.writeHead(417, {
    ...SECURITY_HEADERS,
    'content-security-policy': CONTENT_SECURITY_POLICY,
    'content-type': 'application/problem+json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
  })
  response.end(body)
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
