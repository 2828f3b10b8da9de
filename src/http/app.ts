/**
 * buildApp() wires a store to the HTTP contract and returns a Fastify instance that has not
 * started listening (src/cli/serve.ts listens; tests listen on port 0).
 */
import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage } from 'node:http'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { InstrumentedPersonStore } from '../store/instrumented-person-store.js'
import type { PersonStore } from '../store/person-store.js'
import { bearerAuth } from './bearer-auth.js'
import { ChangeHub } from './change-hub.js'
import { changesFeed } from './changes-feed.js'
import { CodedRepresentations } from './content-coding.js'
import { registerCors, type CorsOrigins } from './cors.js'
import { answerFrameworkError, handleErrors } from './error-handler.js'
import { closeConnectionsWhenIdle, purgeTombstonesEvery, trackOpenResponses } from './lifecycle.js'
import { ServiceMetrics } from './metrics.js'
import { registerOpenApi } from './openapi.js'
import { operationsRoutes } from './operations-routes.js'
import { personsRoutes } from './persons-routes.js'
import { BODY_LIMIT_BYTES, isProblemSlug, problemTypeText, problems } from './problems.js'
import { answerClientError, answerExpectation } from './raw-answers.js'
import { fastPathAllowed, readFastPath, takeFailedRead, type ReadFastPath } from './read-fast-path.js'
import { RepresentationCache } from './representation-cache.js'
import { lazyChildLoggerFactory } from './request-logger.js'
import { OPERATIONS_RESPONSES, operationsSchema } from './route-schemas.js'
import { ALL_SECURITY_HEADERS, SECURITY_HEADERS } from './security-headers.js'
import { webRoutes } from './web-routes.js'

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
   * Answer cheap GETs and HEADs (304s, cached 200s) before routing (default true; see
   * read-fast-path.ts). Off, every request takes Fastify's path.
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
  // reads the framework would answer with more than a 304 or cached 200 cannot take the fast path
  // (read-fast-path.ts lists which options those are)
  const fastPath: ReadFastPath | undefined = !fastPathAllowed(options)
    ? undefined
    : readFastPath({
        reads: store.immediate === undefined ? { awaited: store } : { immediate: store.immediate },
        epoch: store.epoch,
        cache,
        metrics,
        closing: () => closing,
      })
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
      answerFrameworkError(error, reply)
    },
    clientErrorHandler: answerClientError,
    // the server Fastify would make, with the fast path in front of its handler
    serverFactory: (handler) => {
      const server = createServer(
        fastPath === undefined
          ? handler
          : (request, response) => {
              const answered = fastPath(request, response)
              if (answered === false) handler(request, response)
              else if (answered !== true) {
                void answered.then((done) => {
                  if (!done) handler(request, response)
                })
              }
            },
      )
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
  // the store outlives the app (its owner closes it): this app's metrics stop hearing of its statements
  app.addHook('onClose', (_instance, done) => {
    store.detach()
    done()
  })
  if (options.tombstoneRetentionMs !== undefined) purgeTombstonesEvery(app, store, options.tombstoneRetentionMs)

  // a request the fast path handed over after its awaited validator read failed is answered with
  // that failure (a 503 for an unavailable store), where its route's handler would have read
  if (fastPath !== undefined && store.immediate === undefined) {
    app.addHook('preHandler', (request, _reply, done) => {
      const failed = takeFailedRead(request.raw)
      if (failed === undefined) done()
      else done(failed as Error)
    })
  }

  // API.md: bodies are JSON whatever their Content-Type says, even one that is not a valid media
  // type, which Fastify would refuse with 415 before any route runs. Dropping the field sends every
  // body to the catch-all parser below; PATCH still reads the original (see person-writes.ts).
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
    // a 304 carries only what RFC 9110 §15.4.5 lists (security-headers.ts says why)
    if (reply.statusCode !== 304) secure(reply)
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
    personsRoutes(api, { store, cache, coded, feed })
  })
  // the web page and its files: not the API, so not in its document
  void app.register(async (web) => webRoutes(web))
  void app.register(async (operations) => {
    operationsRoutes(operations, store, metrics)
    operations.get(
      '/problems/:slug',
      {
        schema: operationsSchema('problemType', 'What a problem type means (the `type` of every problem body is such a path)', {
          200: OPERATIONS_RESPONSES.text('One sentence on the problem type.'),
          404: OPERATIONS_RESPONSES.notFound,
        }),
      },
      async (request: FastifyRequest<{ Params: { slug: string } }>, reply) => {
        const { slug } = request.params
        if (!isProblemSlug(slug)) throw problems.routeNotFound('GET', `/problems/${slug}`)
        return reply.type('text/plain; charset=utf-8').send(problemTypeText(slug))
      },
    )
  })

  handleErrors(app, store)
  return app
}

/** Sets the security headers; a route that set its own Content-Security-Policy keeps it. */
function secure(reply: FastifyReply): void {
  if (reply.hasHeader('content-security-policy')) reply.headers(SECURITY_HEADERS)
  else reply.headers(ALL_SECURITY_HEADERS)
}
