/**
 * The routes an operator's tooling calls: liveness (/healthz), readiness (/readyz) and
 * Prometheus metrics (/metrics).
 */
import type { FastifyInstance } from 'fastify'
import type { PersonStore } from '../store/person-store.js'
import type { ServiceMetrics } from './metrics.js'
import { problems } from './problems.js'
import { OPERATIONS_RESPONSES, operationsSchema } from './route-schemas.js'

/** How long /readyz waits for the store before it calls it unreachable. */
export const READINESS_TIMEOUT_MS = 2000

/** Registers /healthz, /readyz and /metrics on `app`. */
export function operationsRoutes(app: FastifyInstance, store: PersonStore, metrics: ServiceMetrics): void {
  let closing = false
  // from the moment close() begins, load balancers must stop sending traffic here
  app.addHook('preClose', (done) => {
    closing = true
    done()
  })

  app.get(
    '/healthz',
    {
      schema: operationsSchema('health', 'Liveness: the process is up and serving HTTP (it does not touch the store)', {
        200: OPERATIONS_RESPONSES.status('The process is up.'),
      }),
    },
    async (_request, reply) => reply.header('cache-control', 'no-store').send({ status: 'ok' }),
  )

  app.get(
    '/readyz',
    {
      schema: operationsSchema('ready', 'Readiness: the store answers a trivial query and the process is not shutting down', {
        200: OPERATIONS_RESPONSES.status('Ready for traffic.'),
        503: OPERATIONS_RESPONSES.unavailable,
      }),
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store')
      if (closing) throw problems.notReady()
      try {
        await withTimeout(store.ping(), READINESS_TIMEOUT_MS)
      } catch (error) {
        request.log.warn({ err: error }, 'readiness check: the store does not answer')
        throw problems.storeUnavailable()
      }
      return reply.send({ status: 'ready' })
    },
  )

  app.get(
    '/metrics',
    {
      schema: operationsSchema('metrics', 'Prometheus metrics of this process (text exposition format)', {
        200: OPERATIONS_RESPONSES.text('The metrics.'),
      }),
    },
    async (_request, reply) => {
      const text = await metrics.registry.metrics()
      return reply.header('cache-control', 'no-store').type(metrics.registry.contentType).send(text)
    },
  )
}

function withTimeout<T>(pending: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
  })
  return Promise.race([pending, timeout]).finally(() => clearTimeout(timer))
}
