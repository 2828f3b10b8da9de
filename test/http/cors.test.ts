/**
 * CORS: off by default (OPTIONS stays a 405, no Access-Control-* headers); when origins are
 * configured, preflights for conditional writes are answered and ETag is exposed to scripts.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import { parseCorsOrigins } from '../../src/http/cors.js'
import { spawnServer } from '../helpers/spawn-server.js'
import { createPerson } from '../helpers/http-answers.js'
import { startServer, type RunningServer } from '../helpers/start-server.js'
import { tempDir } from '../helpers/test-stores.js'

const A = 'https://a.example'
const B = 'http://localhost:8080'

/** A browser's preflight for a conditional PUT from `origin`. */
function preflight(url: string, origin: string): Promise<Response> {
  return fetch(url, {
    method: 'OPTIONS',
    headers: {
      origin,
      'access-control-request-method': 'PUT',
      'access-control-request-headers': 'content-type,if-match',
    },
  })
}

/** The members of a comma-separated header, lower-cased. */
function list(value: string | null): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '')
}

describe('CORS', () => {
  describe('when no origins are configured (the default)', () => {
    let server: RunningServer
    before(async () => {
      server = await startServer()
    })
    after(async () => server.close())

    it('answers a preflight on /persons/:id with 405 and Allow, as for any other unsupported method', async () => {
      await createPerson(server.baseUrl, '1')
      const response = await preflight(`${server.baseUrl}/persons/1`, A)
      assert.equal(response.status, 405)
      assert.equal(response.headers.get('allow'), 'GET, HEAD, PUT, PATCH, DELETE')
      assert.equal(response.headers.get('access-control-allow-origin'), null)
      assert.equal(((await response.json()) as { status: number }).status, 405)
    })

    it('adds no Access-Control headers to a GET from another origin', async () => {
      const response = await fetch(`${server.baseUrl}/persons`, { headers: { origin: A } })
      assert.equal(response.status, 200)
      for (const name of ['access-control-allow-origin', 'access-control-expose-headers']) {
        assert.equal(response.headers.get(name), null, name)
      }
    })
  })

  describe('when origins are configured', () => {
    let server: RunningServer
    let etag: string
    before(async () => {
      server = await startServer({ corsOrigins: [A, B] })
      etag = await createPerson(server.baseUrl, '1')
    })
    after(async () => server.close())

    it('answers a preflight for a conditional write with 204, the methods, and If-Match among the allowed headers', async () => {
      const response = await preflight(`${server.baseUrl}/persons/1`, A)
      assert.equal(response.status, 204)
      assert.equal(response.headers.get('access-control-allow-origin'), A)
      assert.deepEqual(list(response.headers.get('access-control-allow-methods')), ['get', 'head', 'post', 'put', 'patch', 'delete'])
      assert.deepEqual(list(response.headers.get('access-control-allow-headers')), ['if-match', 'if-none-match', 'content-type', 'authorization'])
      assert.equal(response.headers.get('access-control-max-age'), '600')
      assert.equal(await response.text(), '')
    })

    it('answers a preflight on the collection too', async () => {
      const response = await preflight(`${server.baseUrl}/persons`, B)
      assert.equal(response.status, 204)
      assert.equal(response.headers.get('access-control-allow-origin'), B)
    })

    it('exposes ETag, Last-Modified, Location and Link to scripts of an allowed origin', async () => {
      const response = await fetch(`${server.baseUrl}/persons/1`, { headers: { origin: A } })
      assert.equal(response.status, 200)
      assert.equal(response.headers.get('access-control-allow-origin'), A)
      assert.deepEqual(list(response.headers.get('access-control-expose-headers')), ['etag', 'last-modified', 'location', 'link'])
      assert.ok(list(response.headers.get('vary')).includes('origin'))
    })

    it('keeps the Access-Control headers on a 304, so a cross-origin revalidation can be read', async () => {
      const response = await fetch(`${server.baseUrl}/persons/1`, { headers: { origin: A, 'if-none-match': etag } })
      assert.equal(response.status, 304)
      assert.equal(response.headers.get('access-control-allow-origin'), A)
      assert.equal(response.headers.get('etag'), etag)
    })

    it('keeps them on a 412, so a cross-origin writer can read the conflict', async () => {
      const response = await fetch(`${server.baseUrl}/persons/1`, {
        method: 'PUT',
        headers: { origin: A, 'if-match': '"stale"' },
        body: JSON.stringify({ person_name: 'x' }),
      })
      assert.equal(response.status, 412)
      assert.equal(response.headers.get('access-control-allow-origin'), A)
    })

    it('does not allow an origin that is not configured', async () => {
      const response = await fetch(`${server.baseUrl}/persons/1`, { headers: { origin: 'https://evil.example' } })
      assert.equal(response.status, 200)
      assert.equal(response.headers.get('access-control-allow-origin'), null)
      const refused = await preflight(`${server.baseUrl}/persons/1`, 'https://evil.example')
      assert.equal(refused.headers.get('access-control-allow-origin'), null)
    })

    it('still answers 405 with Allow to an OPTIONS request that is not a preflight', async () => {
      const response = await fetch(`${server.baseUrl}/persons/1`, { method: 'OPTIONS' })
      assert.equal(response.status, 405)
      assert.equal(response.headers.get('allow'), 'GET, HEAD, PUT, PATCH, DELETE')
      assert.equal(response.headers.get('access-control-allow-origin'), null)
    })
  })

  describe('when any origin is allowed (*)', () => {
    let server: RunningServer
    before(async () => {
      server = await startServer({ corsOrigins: '*' })
    })
    after(async () => server.close())

    it('allows every origin and still exposes ETag', async () => {
      const response = await fetch(`${server.baseUrl}/persons`, { headers: { origin: 'https://anyone.example' } })
      assert.equal(response.headers.get('access-control-allow-origin'), '*')
      assert.ok(list(response.headers.get('access-control-expose-headers')).includes('etag'))
    })
  })

  describe('the CORS_ORIGINS setting', () => {
    const cases = [
      { name: 'absent is off', raw: undefined, origins: undefined },
      { name: 'empty is off', raw: ' ', origins: undefined },
      { name: '* is any origin', raw: '*', origins: '*' },
      { name: 'a list is trimmed', raw: `${A}, ${B} ,`, origins: [A, B] },
      { name: 'a trailing slash is dropped', raw: `${A}/`, origins: [A] },
    ]
    for (const c of cases) it(`reads it: ${c.name}`, () => assert.deepEqual(parseCorsOrigins(c.raw), c.origins))

    for (const raw of ['a.example', 'https://a.example/path', 'ftp://a.example', `*, ${A}`]) {
      it(`refuses ${JSON.stringify(raw)}, which is not an origin`, () => assert.throws(() => parseCorsOrigins(raw)))
    }

    it('is read by the ifmatch command from --cors-origins', async () => {
      const dir = tempDir()
      const server = await spawnServer(`sqlite:${dir.path}/db.sqlite`, ['--cors-origins', A])
      try {
        const response = await preflight(`${server.baseUrl}/persons`, A)
        assert.equal(response.status, 204)
        assert.equal(response.headers.get('access-control-allow-origin'), A)
      } finally {
        await server.stop()
        dir.cleanup()
      }
    })

    it('makes the ifmatch command exit 2 with a message when it is not a list of origins', async () => {
      const result = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/server.ts', '--port', '0'], {
        cwd: fileURLToPath(new URL('../..', import.meta.url)),
        env: { ...process.env, CORS_ORIGINS: 'a.example', DATABASE_URL: 'sqlite::memory:' },
      }).then(
        () => ({ code: 0, stderr: '' }),
        (error: { code: number; stderr: string }) => error,
      )
      assert.equal(result.code, 2)
      assert.match(result.stderr, /CORS_ORIGINS: "a\.example" is not an origin/)
    })
  })
})
