/**
 * Per-request loggers made only when something is logged. Fastify gives every request a pino
 * child logger bound to its request id; making one costs more than deciding a 304 (pino copies
 * and serialises the bindings), and with request logging off almost no request ever logs.
 */
import type { FastifyBaseLogger, FastifyServerOptions } from 'fastify'

type Bindings = Parameters<FastifyBaseLogger['child']>[0]
type ChildOptions = Parameters<FastifyBaseLogger['child']>[1]

/** A logger that becomes `parent.child(bindings)` the first time it is used. */
class LazyChildLogger {
  private made: FastifyBaseLogger | undefined

  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly bindings: Bindings,
    private readonly options: ChildOptions,
  ) {}

  private get logger(): FastifyBaseLogger {
    this.made ??= this.parent.child(this.bindings, this.options)
    return this.made
  }

  get level(): string {
    return this.parent.level
  }

  set level(level: string) {
    this.logger.level = level
  }

  // each method forwards to the real child, with the same arguments pino takes
  fatal(...args: Parameters<FastifyBaseLogger['fatal']>): void {
    this.logger.fatal(...args)
  }
  error(...args: Parameters<FastifyBaseLogger['error']>): void {
    this.logger.error(...args)
  }
  warn(...args: Parameters<FastifyBaseLogger['warn']>): void {
    this.logger.warn(...args)
  }
  info(...args: Parameters<FastifyBaseLogger['info']>): void {
    this.logger.info(...args)
  }
  debug(...args: Parameters<FastifyBaseLogger['debug']>): void {
    this.logger.debug(...args)
  }
  trace(...args: Parameters<FastifyBaseLogger['trace']>): void {
    this.logger.trace(...args)
  }
  silent(...args: Parameters<FastifyBaseLogger['silent']>): void {
    this.logger.silent(...args)
  }

  child(bindings: Bindings, options?: ChildOptions): FastifyBaseLogger {
    return this.logger.child(bindings, options)
  }
}

/**
 * Fastify's `childLoggerFactory` option: the request logger carries the request id, as Fastify's
 * own does, but is made only when the request logs something.
 */
export const lazyChildLoggerFactory: NonNullable<FastifyServerOptions['childLoggerFactory']> = (logger, bindings, options) =>
  new LazyChildLogger(logger, bindings, options) as unknown as FastifyBaseLogger
