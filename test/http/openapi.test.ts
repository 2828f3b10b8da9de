/**
 * The OpenAPI document at /openapi.json: a valid OpenAPI 3.1 document, generated from the route
 * schemas, listing exactly the routes the server registers, and documenting the conditional
 * request headers and answers. And the rendered documentation at /docs, served without a CDN.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { Validator } from '@seriousme/openapi-schema-validator'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/http/app.js'
import { WEB_ASSETS } from '../../src/http/web-routes.js'
import type { PersonStore } from '../../src/store/person-store.js'
import { TEST_DRIVERS, type TestDatabase } from '../helpers/test-stores.js'

interface OpenApiDocument {
  openapi: string
  paths: Record<string, Record<string, Operation>>
}
interface Operation {
  parameters?: { in: string; name: string; schema: { pattern?: string } }[]
  responses: Record<string, { headers?: Record<string, unknown>; content?: Record<string, unknown> }>
  requestBody?: { content: Record<string, unknown> }
  security?: unknown[]
}

const HTTP_METHODS = ['get', 'head', 'put', 'post', 'patch', 'delete', 'options', 'trace']

/** Fastify's `/persons/:id` is OpenAPI's `/persons/{id}`. */
function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')
}

/** Listens on an ephemeral port; `close` closes the app, then its store, then drops the database. */
async function listen(app: FastifyInstance, store: PersonStore, database: TestDatabase): Promise<{ baseUrl: string; close: () => Promise<void> }> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no TCP address')
  return {
    baseUrl: `http://127.0.0.1:${address.port}`,
    close: async () => {
      await app.close()
      await store.close()
      await database.cleanup()
    },
  }
}

describe('the OpenAPI document', () => {
  let database: TestDatabase
  let store: PersonStore
  let baseUrl: string
  let close: () => Promise<void>
  const registered: { method: string; url: string; hidden: boolean }[] = []
  let document: OpenApiDocument

  before(async () => {
    database = await TEST_DRIVERS[0]!.createDatabase()
    store = await database.openStore()
    const app = buildApp({ store })
    // every route, as Fastify registers it (buildApp registers its routes in plugins loaded later)
    app.addHook('onRoute', (route) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method]
      const hidden = (route.schema as { hide?: boolean } | undefined)?.hide === true
      for (const method of methods) registered.push({ method: method.toLowerCase(), url: route.url, hidden })
    })
    const listening = await listen(app, store, database)
    baseUrl = listening.baseUrl
    close = listening.close
    const response = await fetch(`${baseUrl}/openapi.json`)
    assert.equal(response.status, 200)
    assert.match(response.headers.get('content-type') ?? '', /^application\/json/)
    document = (await response.json()) as OpenApiDocument
  })

  after(async () => close())

  it('is a valid OpenAPI 3.1 document', async () => {
    const validator = new Validator()
    const result = await validator.validate(structuredClone(document) as unknown as Parameters<Validator['validate']>[0])
    assert.equal(document.openapi, '3.1.0')
    assert.equal(validator.version, '3.1')
    assert.deepEqual(result.errors, undefined)
    assert.equal(result.valid, true)
  })

  it('lists every route the server registers, and no other', () => {
    const served = new Set(registered.filter((r) => !r.hidden).map((r) => `${r.method} ${openApiPath(r.url)}`))
    const documented = new Set<string>()
    for (const [path, item] of Object.entries(document.paths)) {
      for (const method of Object.keys(item)) if (HTTP_METHODS.includes(method)) documented.add(`${method} ${path}`)
    }
    assert.deepEqual([...documented].sort(), [...served].sort())
    for (const route of [
      'get /persons/{id}',
      'head /persons/{id}',
      'put /persons/{id}',
      'patch /persons/{id}',
      'delete /persons/{id}',
      'get /persons',
      'head /persons',
      'post /persons',
      'get /healthz',
      'get /readyz',
      'get /metrics',
      'get /openapi.json',
    ]) {
      assert.ok(documented.has(route), `${route} is documented`)
    }
  })

  it('leaves out only the web page and the documentation page, with their files', () => {
    const hidden = registered.filter((r) => r.hidden)
    assert.ok(hidden.length > 0)
    const webPaths = new Set(WEB_ASSETS.map((asset) => asset.path))
    for (const route of hidden) {
      assert.ok(/^\/docs(\/|$)/.test(route.url) || webPaths.has(route.url), `${route.method} ${route.url} is hidden`)
    }
  })

  it('documents If-None-Match and If-Match on GET, and the ETag and 304 it answers with', () => {
    const get = document.paths['/persons/{id}']!.get!
    const headers = (get.parameters ?? []).filter((p) => p.in === 'header').map((p) => p.name.toLowerCase())
    assert.ok(headers.includes('if-none-match'))
    assert.ok(headers.includes('if-match'))
    assert.ok(get.responses['200']?.headers?.ETag !== undefined, 'the 200 documents ETag')
    assert.ok(get.responses['304']?.headers?.ETag !== undefined, 'the 304 documents ETag')
    assert.equal(get.responses['304']?.content, undefined, 'a 304 has no body')
    assert.ok(get.responses['404'] !== undefined)
  })

  it('documents If-Match, 412 and 428 on every write to a person, and its problem body', () => {
    for (const method of ['put', 'patch', 'delete']) {
      const operation = document.paths['/persons/{id}']![method]!
      const headers = (operation.parameters ?? []).filter((p) => p.in === 'header').map((p) => p.name.toLowerCase())
      assert.ok(headers.includes('if-match'), `${method} documents If-Match`)
      for (const status of ['404', '412', '428']) {
        assert.ok(operation.responses[status]?.content?.['application/problem+json'] !== undefined, `${method} documents ${status}`)
      }
      assert.ok(operation.responses['401'] !== undefined, `${method} documents the 401 of API_TOKEN`)
      assert.ok(operation.security !== undefined, `${method} documents the bearer token`)
    }
    const put = document.paths['/persons/{id}']!.put!
    assert.ok(put.responses['201']?.headers?.Location !== undefined, 'PUT with If-None-Match: * documents its 201')
  })

  it('documents the request bodies, PATCH as a JSON Merge Patch', () => {
    assert.ok(document.paths['/persons']!.post!.requestBody?.content['application/json'] !== undefined)
    assert.ok(document.paths['/persons/{id}']!.put!.requestBody?.content['application/json'] !== undefined)
    assert.ok(document.paths['/persons/{id}']!.patch!.requestBody?.content['application/merge-patch+json'] !== undefined)
  })

  describe('its query parameter rules', () => {
    // the document's pattern is the one Fastify validates with: they cannot disagree
    it('agree with what the server answers for limit', async () => {
      const limit = document.paths['/persons']!.get!.parameters!.find((p) => p.name === 'limit')!
      const pattern = new RegExp(limit.schema.pattern!, 'u')
      for (const value of ['0', '1', '01', '0100', '999', '1000', '1001', '00000', '10000', '1e2', '0x10', ' 5', '+5', '-1', '5.0', '']) {
        const response = await fetch(`${baseUrl}/persons?limit=${encodeURIComponent(value)}`)
        await response.arrayBuffer()
        assert.equal(response.status, pattern.test(value) ? 200 : 400, `limit=${JSON.stringify(value)}`)
      }
    })
  })
})

describe('the documentation page /docs', () => {
  let database: TestDatabase
  let store: PersonStore
  let baseUrl: string
  let close: () => Promise<void>

  before(async () => {
    database = await TEST_DRIVERS[0]!.createDatabase()
    store = await database.openStore()
    const app = buildApp({ store })
    const listening = await listen(app, store, database)
    baseUrl = listening.baseUrl
    close = listening.close
  })

  after(async () => close())

  it('is an HTML page that loads its scripts and styles from this server only', async () => {
    const response = await fetch(`${baseUrl}/docs`)
    assert.equal(response.status, 200)
    assert.match(response.headers.get('content-type') ?? '', /^text\/html/)
    const html = await response.text()
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!)
    assert.ok(assets.length >= 3)
    for (const asset of assets) {
      assert.doesNotMatch(asset, /^(https?:)?\/\//, `${asset} is served here, not from a CDN`)
      const loaded = await fetch(new URL(asset, `${baseUrl}/docs/`))
      await loaded.arrayBuffer()
      assert.equal(loaded.status, 200, asset)
    }
  })

  it('has a Content-Security-Policy that allows only this origin and no framing', async () => {
    const response = await fetch(`${baseUrl}/docs`)
    await response.arrayBuffer()
    const csp = response.headers.get('content-security-policy') ?? ''
    assert.match(csp, /default-src 'self'/)
    assert.match(csp, /frame-ancestors 'none'/)
    assert.doesNotMatch(csp, /script-src[^;]*unsafe-inline/)
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff')
  })
})
