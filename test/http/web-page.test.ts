/**
 * The web page's files over HTTP: served at / with strong ETags and Cache-Control: no-cache, so
 * that browsers revalidate them too; and written so that a strict Content-Security-Policy
 * (same-origin scripts and styles only) can forbid every inline script, style and handler.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, describe, it } from 'node:test'
import { startServer, type RunningServer } from '../helpers/start-server.js'

const ASSETS = [
  { path: '/', type: 'text/html; charset=utf-8', file: 'index.html' },
  { path: '/app.js', type: 'text/javascript; charset=utf-8', file: 'app.js' },
  { path: '/style.css', type: 'text/css; charset=utf-8', file: 'style.css' },
  { path: '/icon.svg', type: 'image/svg+xml', file: 'icon.svg' },
]

const source = (file: string): string => readFileSync(new URL(`../../src/web/${file}`, import.meta.url), 'utf8')

describe('the web page', () => {
  let server: RunningServer
  before(async () => {
    server = await startServer()
  })
  after(async () => server.close())

  for (const asset of ASSETS) {
    describe(`GET ${asset.path}`, () => {
      it('answers the file with its type, a strong ETag, Last-Modified and Cache-Control: no-cache', async () => {
        const response = await fetch(server.baseUrl + asset.path)
        assert.equal(response.status, 200)
        assert.equal(response.headers.get('content-type'), asset.type)
        assert.match(response.headers.get('etag') ?? '', /^"[A-Za-z0-9_-]{22}"$/)
        assert.ok(response.headers.get('last-modified'))
        assert.equal(response.headers.get('cache-control'), 'no-cache')
        assert.equal(await response.text(), source(asset.file))
      })

      it('answers 304 without a body to If-None-Match with that ETag, keeping the validators', async () => {
        const first = await fetch(server.baseUrl + asset.path)
        const etag = first.headers.get('etag')!
        const response = await fetch(server.baseUrl + asset.path, { headers: { 'if-none-match': etag } })
        assert.equal(response.status, 304)
        assert.equal(response.headers.get('etag'), etag)
        assert.equal(response.headers.get('cache-control'), 'no-cache')
        assert.equal(response.headers.get('last-modified'), first.headers.get('last-modified'))
        assert.equal(await response.text(), '')
      })

      it('answers 200 to If-None-Match with another ETag', async () => {
        const response = await fetch(server.baseUrl + asset.path, { headers: { 'if-none-match': '"other"' } })
        assert.equal(response.status, 200)
      })
    })
  }

  it('answers HEAD / with the headers of GET and no body', async () => {
    const get = await fetch(`${server.baseUrl}/`)
    const head = await fetch(`${server.baseUrl}/`, { method: 'HEAD' })
    assert.equal(head.status, 200)
    assert.equal(head.headers.get('etag'), get.headers.get('etag'))
    assert.equal(await head.text(), '')
  })

  it('answers 412 as a problem to a GET whose If-Match names another version', async () => {
    const response = await fetch(`${server.baseUrl}/app.js`, { headers: { 'if-match': '"other"' } })
    assert.equal(response.status, 412)
    assert.equal(response.headers.get('content-type'), 'application/problem+json; charset=utf-8')
  })

  it('links its script and style sheet by relative URL, and has no inline script, style or event handler', () => {
    const html = source('index.html')
    assert.match(html, /<script type="module" src="app\.js"><\/script>/)
    assert.match(html, /<link rel="stylesheet" href="style\.css">/)
    // every <script> has a src, and nothing else carries code or styles
    assert.deepEqual(html.match(/<script(?![^>]*\bsrc=)[^>]*>/g), null)
    assert.deepEqual(html.match(/<style\b|\sstyle=|\son[a-z]+=|javascript:/gi), null)
  })

  it('sets no inline styles or markup from its script (CSP forbids the first; the second would let names inject HTML)', () => {
    const js = source('app.js')
    assert.deepEqual(js.match(/\.style\b|setAttribute\(\s*'style'|innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function/g), null)
  })
})
