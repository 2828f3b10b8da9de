/**
 * The service's Prometheus metrics (prom-client), one Registry per app so that many apps can live
 * in one process (tests build dozens). The request path costs one Map lookup and one increment;
 * label children are created once and cached.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { StoreObserver, StoreOperation } from '../store/instrumented-person-store.js'

/** How many ETags the "bytes saved" estimate remembers the body size of (oldest forgotten first). */
export const REMEMBERED_BODY_SIZES = 10_000

// store calls take tens of microseconds (SQLite) to tens of milliseconds (PostgreSQL over a network)
const STORE_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]

/** The label of requests that matched no route (404s and 405s): paths stay out of labels. */
const UNMATCHED_ROUTE = 'unmatched'

/** What to export besides the service's own metrics. */
export interface MetricsOptions {
  /** Also export prom-client's process metrics (CPU, memory, event loop lag, …); the server does. */
  readonly processMetrics?: boolean
}

/**
 * Counts what the issue asks an operator to see: requests by route, method and status; how many
 * conditional GETs a 304 answered and the bytes that saved; 412s and 428s; store latency.
 */
export class ServiceMetrics {
  readonly registry = new Registry()
  private readonly requests: Counter<'route' | 'method' | 'status'>
  private readonly children = new Map<string, Counter.Internal>()
  private readonly conditional: { notModified: Counter.Internal; full: Counter.Internal; other: Counter.Internal }
  private readonly bytesSaved: Counter
  private readonly unknownSize: Counter
  private readonly preconditionFailed: Counter<'route' | 'method'>
  private readonly preconditionRequired: Counter<'route' | 'method'>
  private readonly storeChildren = new Map<string, Histogram.Internal<'operation' | 'outcome'>>()
  private readonly storeSeconds: Histogram<'operation' | 'outcome'>
  // ETag → byte length of the body last sent with it: what a later 304 for that ETag did not send
  private readonly bodySizes = new Map<string, number>()
  private notModifiedCount = 0
  private conditionalCount = 0

  constructor(options: MetricsOptions = {}) {
    const registers = [this.registry]
    if (options.processMetrics === true) collectDefaultMetrics({ register: this.registry })
    this.requests = new Counter({
      name: 'ifmatch_http_requests_total', help: 'HTTP requests answered, by route pattern, method and status.',
      labelNames: ['route', 'method', 'status'], registers,
    })
    const conditional = new Counter({
      name: 'ifmatch_conditional_get_requests_total',
      help: 'GET and HEAD requests with If-None-Match or If-Modified-Since, by outcome: not_modified (304), full (2xx, the representation was sent), other.',
      labelNames: ['outcome'], registers,
    })
    this.conditional = { notModified: conditional.labels('not_modified'), full: conditional.labels('full'), other: conditional.labels('other') }
    // exported from the start, at 0, so that rate() over them works before the first conditional GET
    for (const child of Object.values(this.conditional)) child.inc(0)
    const metrics = this
    new Gauge({
      name: 'ifmatch_conditional_get_not_modified_ratio',
      help: 'The share of conditional GET/HEAD requests answered 304 since the process started (0 when there were none).',
      registers,
      collect() {
        this.set(metrics.conditionalCount === 0 ? 0 : metrics.notModifiedCount / metrics.conditionalCount)
      },
    })
    this.bytesSaved = new Counter({
      name: 'ifmatch_not_modified_bytes_saved_total',
      help: 'Body bytes that 304 answers to GET did not send: the size of the body last sent with the same ETag by this process.',
      registers,
    })
    this.unknownSize = new Counter({
      name: 'ifmatch_not_modified_unknown_size_total',
      help: '304 answers to GET whose body size this process did not know (it never sent that ETag with a body), so not in bytes saved.',
      registers,
    })
    this.preconditionFailed = new Counter({
      name: 'ifmatch_precondition_failed_total', help: '412 Precondition Failed answers, by route and method.',
      labelNames: ['route', 'method'], registers,
    })
    this.preconditionRequired = new Counter({
      name: 'ifmatch_precondition_required_total', help: '428 Precondition Required answers, by route and method.',
      labelNames: ['route', 'method'], registers,
    })
    this.storeSeconds = new Histogram({
      name: 'ifmatch_store_operation_duration_seconds', help: 'Time of each store call, by operation and outcome (ok, or error: it threw).',
      labelNames: ['operation', 'outcome'], buckets: STORE_BUCKETS, registers,
    })
  }

  /** Feeds the store latency histogram; give it to InstrumentedPersonStore. */
  readonly observeStore: StoreObserver = (operation: StoreOperation, outcome: 'ok' | 'error', seconds: number): void => {
    const key = `${operation} ${outcome}`
    let child = this.storeChildren.get(key)
    if (child === undefined) {
      child = this.storeSeconds.labels(operation, outcome)
      this.storeChildren.set(key, child)
    }
    child.observe(seconds)
  }

  /** Counts one response just before it is sent; `payload` is the serialised body, if any. */
  observeResponse(request: FastifyRequest, reply: FastifyReply, payload: unknown): void {
    const route = request.is404 ? UNMATCHED_ROUTE : request.routeOptions.url ?? UNMATCHED_ROUTE
    const { method } = request
    const status = reply.statusCode
    this.child(this.requests, route, method, String(status)).inc()
    if (status === 412) this.child(this.preconditionFailed, route, method).inc()
    else if (status === 428) this.child(this.preconditionRequired, route, method).inc()
    if (method !== 'GET' && method !== 'HEAD') {
      if (status === 200 || status === 201) this.rememberBodySize(reply, payload)
      return
    }
    const headers = request.headers
    if (headers['if-none-match'] !== undefined || headers['if-modified-since'] !== undefined) {
      this.conditionalCount++
      if (status === 304) {
        this.notModifiedCount++
        this.conditional.notModified.inc()
        if (method === 'GET') this.countBytesSaved(reply)
        return
      }
      if (status >= 200 && status < 300) this.conditional.full.inc()
      else this.conditional.other.inc()
    }
    if (status === 200 && method === 'GET') this.rememberBodySize(reply, payload)
  }

  // prom-client hashes the label values on every labels() call: each child is looked up once
  private child(counter: Counter<string>, ...values: string[]): Counter.Internal {
    const key = `${(counter as unknown as { name: string }).name} ${values.join(' ')}`
    let child = this.children.get(key)
    if (child === undefined) {
      child = counter.labels(...values)
      this.children.set(key, child)
    }
    return child
  }

  private countBytesSaved(reply: FastifyReply): void {
    const etag = reply.getHeader('etag')
    const size = typeof etag === 'string' ? this.bodySizes.get(etag) : undefined
    if (size === undefined) this.unknownSize.inc()
    else this.bytesSaved.inc(size)
  }

  // a strong ETag names one representation, so its size never changes: measured once
  private rememberBodySize(reply: FastifyReply, payload: unknown): void {
    const etag = reply.getHeader('etag')
    if (typeof etag !== 'string' || this.bodySizes.has(etag)) return
    const size = typeof payload === 'string' ? Buffer.byteLength(payload) : Buffer.isBuffer(payload) ? payload.length : undefined
    if (size === undefined) return
    this.bodySizes.set(etag, size)
    if (this.bodySizes.size > REMEMBERED_BODY_SIZES) this.bodySizes.delete(this.bodySizes.keys().next().value!)
  }
}
