/**
 * deploy/varnish/ifmatch.vcl, run by the real varnishd in front of a real ifmatch: the
 * shared-cache promises of API.md (test/helpers/cache-suite.ts), and what the VCL does when
 * varnishd was started without the parameter it asks for.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { describeThroughCache } from '../helpers/cache-suite.js'
import { exchange } from '../helpers/exchange.js'
import { VARNISH, type RunningCache } from '../helpers/shared-cache.js'
import { startServer, type RunningServer } from '../helpers/start-server.js'

describeThroughCache(VARNISH)

describe('Varnish started with its default http_gzip_support=on in front of ifmatch', { skip: VARNISH.skipReason() }, () => {
  let server: RunningServer
  let front: RunningCache | undefined

  before(async () => {
    server = await startServer()
    front = await VARNISH.start(server.baseUrl, { args: ['-p', 'http_gzip_support=on'] })
    const created = await exchange(server.baseUrl, 'POST', '/persons', { body: { person_id: 'wim', person_name: 'Wim' } })
    assert.equal(created.status, 201)
  })

  after(async () => {
    await front?.stop()
    await server?.close()
  })

  it('refuses, with a 503 that names the parameter, a read whose Accept-Encoding Varnish rewrote', async () => {
    // Varnish would ask ifmatch for gzip on this client's behalf, then gunzip it and weaken the ETag
    const clients: readonly Record<string, string>[] = [{}, { 'accept-encoding': 'gzip, deflate, br' }]
    for (const headers of clients) {
      const answer = await exchange(front!.baseUrl, 'GET', '/persons/wim', { headers })
      assert.equal(answer.status, 503)
      assert.match(answer.text, /http_gzip_support=off/)
    }
  })

  it("still serves a client that asks for exactly gzip, with ifmatch's strong ETag", async () => {
    const answer = await exchange(front!.baseUrl, 'GET', '/persons/wim', { headers: { 'accept-encoding': 'gzip' } })
    assert.equal(answer.status, 200)
    assert.doesNotMatch(answer.header('etag') ?? '', /^W\//)
    assert.equal(answer.json<{ person_name: string }>().person_name, 'Wim')
  })
})
