/**
 * The typed client running inside Chromium, calling the API on another origin: it works when the
 * API's CORS option is on (ETag exposed, If-Match allowed by the preflight), and the browser stops
 * it when CORS is off. The client's TypeScript sources are transpiled as they are (no bundling)
 * and handed to the page as ES modules, so an import of a Node-only module would fail here.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { readdirSync, readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import type { Browser, Page } from 'playwright-core'
import ts from 'typescript'
import { browserSkipReason, launchBrowser } from '../helpers/browser.js'
import { PAGE_TIMEOUT_MS, storedPerson } from '../helpers/persons-page.js'
import { startServer, type RunningServer } from '../helpers/start-server.js'
import { recordWire, type WireLog } from '../helpers/wire-log.js'

const CLIENT_DIR = new URL('../../src/client/', import.meta.url)

/** Each file of src/client/ as the browser gets it: `client.ts` → `client.js`, types removed. */
function clientModules(): Map<string, string> {
  const modules = new Map<string, string>()
  for (const file of readdirSync(CLIENT_DIR).filter((f) => f.endsWith('.ts'))) {
    const output = ts.transpileModule(readFileSync(new URL(file, CLIENT_DIR), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
    })
    modules.set(file.replace(/\.ts$/, '.js'), output.outputText)
  }
  return modules
}

/** What the in-page script reports back. */
interface Outcome {
  readonly ok: boolean
  readonly error?: string
  readonly names?: string[]
  readonly counter?: string
}

// runs in the page: create, read twice (the second a 304), and 8 parallel increments
async function useClient(apiBase: string): Promise<Outcome> {
  try {
    const { IfMatchClient } = (await import('/ifmatch-client/client.js' as string)) as typeof import('../../src/client/client.js')
    const client = new IfMatchClient({ baseUrl: apiBase })
    await client.create({ person_id: 'from-browser', person_name: '0' })
    const names = [(await client.get('from-browser')).person_name, (await client.get('from-browser')).person_name]
    await Promise.all(Array.from({ length: 8 }, () => client.update('from-browser', (p) => ({ person_name: String(Number(p.person_name) + 1) }))))
    return { ok: true, names, counter: (await client.get('from-browser')).person_name }
  } catch (error) {
    return { ok: false, error: `${(error as Error).name}: ${(error as Error).message}` }
  }
}

describe('the client in a browser, calling the API on another origin', { skip: browserSkipReason() }, () => {
  let site: Server
  let siteUrl: string
  let browser: Browser

  before(async () => {
    // the site the page comes from, serving the client's modules as an application would; the
    // APIs below are other origins (other ports). Not Playwright's page.route: while it routes
    // anything, Playwright answers CORS preflights itself and they never reach the server.
    const modules = clientModules()
    site = createServer((request, response) => {
      const body = request.url === '/' ? '<!doctype html><title>site</title>' : modules.get(request.url!.replace('/ifmatch-client/', ''))
      if (body === undefined) {
        response.writeHead(404).end()
        return
      }
      response.writeHead(200, { 'content-type': request.url === '/' ? 'text/html' : 'text/javascript' }).end(body)
    })
    site.listen(0, '127.0.0.1')
    await once(site, 'listening')
    siteUrl = `http://127.0.0.1:${(site.address() as AddressInfo).port}`
    browser = await launchBrowser()
  })
  after(async () => {
    await browser?.close()
    site?.close()
  })

  async function pageOnSite(): Promise<Page> {
    const context = await browser.newContext()
    context.setDefaultTimeout(PAGE_TIMEOUT_MS)
    const page = await context.newPage()
    await page.goto(`${siteUrl}/`)
    return page
  }

  describe("with CORS on for the site's origin", () => {
    let api: RunningServer
    let wire: WireLog
    before(async () => {
      api = await startServer({ corsOrigins: [siteUrl] })
      wire = recordWire(api)
    })
    after(async () => api?.close())

    it('reads the ETag, revalidates to a 304, and its parallel updates all land', async () => {
      const page = await pageOnSite()
      const outcome = await page.evaluate(useClient, api.baseUrl)
      assert.deepEqual(outcome, { ok: true, names: ['0', '0'], counter: '8' })
      const seen = await wire.entries()
      assert.equal((await storedPerson(api.baseUrl, 'from-browser')).name, '8')
      assert.ok(
        seen.every((e) => e.origin === siteUrl),
        "every request came from the site's origin",
      )
      const reads = seen.filter((e) => e.method === 'GET')
      assert.ok(
        reads.some((e) => e.ifNoneMatch !== undefined && e.status === 304),
        'a 304 on the wire',
      )
      // the preflight let the conditional writes through
      assert.ok(seen.some((e) => e.method === 'OPTIONS' && e.status === 204))
      const puts = seen.filter((e) => e.method === 'PUT')
      assert.ok(puts.length >= 8 && puts.every((e) => e.ifMatch !== undefined && [200, 412].includes(e.status!)))
      await page.context().close()
    })
  })

  describe('with CORS off (the default)', () => {
    let api: RunningServer
    let wire: WireLog
    before(async () => {
      api = await startServer()
      wire = recordWire(api)
    })
    after(async () => api?.close())

    it('is stopped by the browser, and nothing is written', async () => {
      const page = await pageOnSite()
      const outcome = await page.evaluate(useClient, api.baseUrl)
      assert.equal(outcome.ok, false)
      // the browser refuses the request after the preflight's 405: fetch fails without a response
      assert.match(outcome.error ?? '', /^TypeError: Failed to fetch/)
      assert.deepEqual(
        (await wire.entries()).map((e) => [e.method, e.status]),
        [['OPTIONS', 405]],
      )
      assert.equal((await storedPerson(api.baseUrl, 'from-browser')).status, 404)
      await page.context().close()
    })
  })
})
