/**
 * The service's Prometheus metrics (prom-client), one Registry per app so that many apps can live
 * in one process (tests build dozens). A request is counted in plain numbers (one Map lookup and
 * one increment); prom-client is handed the totals when /metrics is scraped, so that a 304 does
 * not pay for its label hashing.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { StoreObserver, StoreOperation } from '../store/instrumented-person-store.js'

// store calls take tens of microseconds (SQLite) to tens of milliseconds (PostgreSQL over a network)
const STORE_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]

/** The label of requests that matched no route (404s and 405s): paths stay out of labels. */
const UNMATCHED_ROUTE = 'unmatched'

/** What to export besides the service's own metrics. */
export interface MetricsOptions {
  /** Also export prom-client's process metrics (CPU, memory, event loop lag, …); the server does. */
  readonly processMetrics?: boolean
  /**
   * The byte length of the body this process holds under a strong ETag (the representation
   * cache), if any: what a 304 for that ETag did not send.
   */
  readonly bodySize?: (etag: string) => number | undefined
}

/**
 * Counts what the issue asks an operator to see: requests by route, method and status; how many
 * conditional GETs a 304 answered and the bytes that saved; 412s and 428s; store latency.
 */
export class ServiceMetrics {
  readonly registry = new Registry()
  // requests by route, then method, then status (nested, so that counting builds no key string):
  // the totals prom-client reads on a scrape
  private readonly requestCounts = new Map<string, Map<string, Map<number, { count: number }>>>()
  private readonly children = new Map<string, Counter.Internal>()
  private readonly conditionalCounts = { not_modified: 0, full: 0, other: 0 }
  private bytesSavedCount = 0
  private unknownSizeCount = 0
  private readonly preconditionFailed: Counter<'route' | 'method'>
  private readonly preconditionRequired: Counter<'route' | 'method'>
  private readonly storeChildren = new Map<string, Histogram.Internal<'operation' | 'outcome'>>()
  private readonly storeSeconds: Histogram<'operation' | 'outcome'>
  private readonly bodySize: (etag: string) => number | undefined
  /**
   * The changes feed, counted in plain numbers by changes-feed.ts: requests waiting now (long
   * polls held by `wait`, open event streams) and the items served so far.
   */
  readonly changes = { waitingPolls: 0, openStreams: 0, servedInAnswers: 0, servedInStreams: 0 }
  private readonly compressed = new Map<string, number>()

  constructor(options: MetricsOptions = {}) {
    const registers = [this.registry]
    this.bodySize = options.bodySize ?? (() => undefined)
    if (options.processMetrics === true) collectDefaultMetrics({ register: this.registry })
    const metrics = this
    new Counter({
      name: 'ifmatch_http_requests_total',
      help: 'HTTP requests answered, by route pattern, method and status.',
      labelNames: ['route', 'method', 'status'],
      registers,
      collect() {
        this.reset()
        for (const [route, methods] of metrics.requestCounts) {
          for (const [method, statuses] of methods) {
            for (const [status, { count }] of statuses) this.inc({ route, method, status: String(status) }, count)
          }
        }
      },
    })
    new Counter({
      name: 'ifmatch_conditional_get_requests_total',
      help: 'GET and HEAD requests with If-None-Match or If-Modified-Since, by outcome: not_modified (304), full (2xx, the representation was sent), other.',
      labelNames: ['outcome'],
      registers,
      // every outcome is exported from the start, at 0, so that rate() over them works before the first conditional GET
      collect() {
        this.reset()
        for (const [outcome, count] of Object.entries(metrics.conditionalCounts)) this.inc({ outcome }, count)
      },
    })
    new Gauge({
      name: 'ifmatch_conditional_get_not_modified_ratio',
      help: 'The share of conditional GET/HEAD requests answered 304 since the process started (0 when there were none).',
      registers,
      collect() {
        const { not_modified: notModified, full, other } = metrics.conditionalCounts
        const all = notModified + full + other
        this.set(all === 0 ? 0 : notModified / all)
      },
    })
    new Counter({
      name: 'ifmatch_not_modified_bytes_saved_total',
      help: 'Body bytes that 304 answers to GET did not send: the size of the representation this process holds under the same ETag.',
      registers,
      collect() {
        this.reset()
        this.inc(metrics.bytesSavedCount)
      },
    })
    new Counter({
      name: 'ifmatch_not_modified_unknown_size_total',
      help: '304 answers to GET whose body size this process did not know (it holds no representation under that ETag), so not in bytes saved.',
      registers,
      collect() {
        this.reset()
        this.inc(metrics.unknownSizeCount)
      },
    })
    new Gauge({
      name: 'ifmatch_changes_waiting',
      help: 'Changes feed requests open now: long polls held by wait= (kind="long-poll") and event streams (kind="stream").',
      labelNames: ['kind'],
      registers,
      collect() {
        this.set({ kind: 'long-poll' }, metrics.changes.waitingPolls)
        this.set({ kind: 'stream' }, metrics.changes.openStreams)
      },
    })
    new Counter({
      name: 'ifmatch_changes_served_total',
      help: 'Changes feed items (persons and tombstones) sent, in JSON answers (kind="answer") and on event streams (kind="stream").',
      labelNames: ['kind'],
      registers,
      collect() {
        this.reset()
        this.inc({ kind: 'answer' }, metrics.changes.servedInAnswers)
        this.inc({ kind: 'stream' }, metrics.changes.servedInStreams)
      },
    })
    new Counter({
      name: 'ifmatch_representations_compressed_total',
      help: 'Bodies compressed, by content coding: once per ETag and coding, then served from the representation cache.',
      labelNames: ['coding'],
      registers,
      collect() {
        this.reset()
        for (const [coding, count] of metrics.compressed) this.inc({ coding }, count)
      },
    })
    this.preconditionFailed = new Counter({
      name: 'ifmatch_precondition_failed_total',
      help: '412 Precondition Failed answers, by route and method.',
      labelNames: ['route', 'method'],
      registers,
    })
    this.preconditionRequired = new Counter({
      name: 'ifmatch_precondition_required_total',
      help: '428 Precondition Required answers, by route and method.',
      labelNames: ['route', 'method'],
      registers,
    })
    this.storeSeconds = new Histogram({
      name: 'ifmatch_store_operation_duration_seconds',
      help: 'Time of each store call, by operation and outcome (ok, or error: it threw). Validator reads the read fast path (304s and cached 200s answered before routing) makes synchronously are not timed; those it awaits (a round trip to the database) are.',
      labelNames: ['operation', 'outcome'],
      buckets: STORE_BUCKETS,
      registers,
    })
  }

  /** Counts one body compressed in `coding`; give it to CodedRepresentations. */
  readonly countCompressed = (coding: string): void => {
    this.compressed.set(coding, (this.compressed.get(coding) ?? 0) + 1)
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

  /** Counts one response Fastify is about to send. */
  observeResponse(request: FastifyRequest, reply: FastifyReply): void {
    const route = request.is404 ? UNMATCHED_ROUTE : (request.routeOptions.url ?? UNMATCHED_ROUTE)
    const headers = request.headers
    const etag = reply.getHeader('etag')
    this.countResponse(
      route,
      request.method,
      reply.statusCode,
      headers['if-none-match'] !== undefined || headers['if-modified-since'] !== undefined,
      typeof etag === 'string' ? etag : undefined,
    )
  }

  /**
   * Counts one response: its route pattern, method and status; whether the request was a
   * conditional GET/HEAD (If-None-Match or If-Modified-Since); the ETag it carries, if any.
   */
  countResponse(route: string, method: string, status: number, conditional: boolean, etag: string | undefined): void {
    let methods = this.requestCounts.get(route)
    if (methods === undefined) {
      methods = new Map()
      this.requestCounts.set(route, methods)
    }
    let statuses = methods.get(method)
    if (statuses === undefined) {
      statuses = new Map()
      methods.set(method, statuses)
    }
    const counted = statuses.get(status)
    if (counted === undefined) statuses.set(status, { count: 1 })
    else counted.count++
    if (status === 412) this.child(this.preconditionFailed, route, method).inc()
    else if (status === 428) this.child(this.preconditionRequired, route, method).inc()
    if (conditional && (method === 'GET' || method === 'HEAD')) {
      if (status === 304) {
        this.conditionalCounts.not_modified++
        if (method === 'GET') this.countBytesSaved(etag)
        return
      }
      if (status >= 200 && status < 300) this.conditionalCounts.full++
      else this.conditionalCounts.other++
    }
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

  private countBytesSaved(etag: string | undefined): void {
    const size = etag === undefined ? undefined : this.bodySize(etag)
    if (size === undefined) this.unknownSizeCount++
    else this.bytesSavedCount += size
  }
}
