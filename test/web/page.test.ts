/**
 * The persons page in a real browser: reads rely on the browser's HTTP cache, which revalidates
 * with If-None-Match (the server sees it and answers 304); the page lists, creates, edits and
 * deletes; and it runs under a strict same-origin Content-Security-Policy without a violation.
 */
import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import type { Browser } from 'playwright-core'
import { browserSkipReason } from '../helpers/browser.js'
import { createPerson } from '../helpers/http-answers.js'
import { PAGE_TIMEOUT_MS, pageFixture, PersonsPage, storedPerson } from '../helpers/persons-page.js'
import type { RunningServer } from '../helpers/start-server.js'
import type { WireLog } from '../helpers/wire-log.js'

const LIST_URL = '/persons?limit=100'

describe('the persons page in a browser', { skip: browserSkipReason() }, () => {
  const fixture = pageFixture()
  let server: RunningServer
  let wire: WireLog
  let browser: Browser

  before(async () => {
    ;({ server, wire, browser } = fixture)
    await createPerson(server.baseUrl, '1', 'Wim')
    await createPerson(server.baseUrl, '2', 'Ann')
  })

  const open = (waitFor = '1'): Promise<PersonsPage> => fixture.open(waitFor)

  describe('reloading the list', () => {
    it('makes the browser revalidate with If-None-Match, and the server answers 304 to everything', async () => {
      const user = await open()
      wire.clear()
      await user.page.reload()
      await user.row('2').waitFor()
      const seen = await wire.entries()
      const list = seen.find((e) => e.method === 'GET' && e.url === LIST_URL)
      assert.ok(list !== undefined, `no GET ${LIST_URL} after the reload: ${JSON.stringify(seen)}`)
      // the page's ETag in the coding the browser accepts (Chromium asks for br)
      assert.match(list.ifNoneMatch ?? '', /^"[^"]+\.l100\+br"$/)
      assert.equal(list.status, 304)
      const page = seen.find((e) => e.url === '/')
      assert.equal(page?.status, 304)
      // the page follows the changes feed from the moment of its list: a stream that stays open
      // (so it has no final status yet) and, with nothing changed, carries no change
      const changes = /<([^>]*)>\s*;\s*rel="changes"/.exec((await fetch(`${server.baseUrl}${LIST_URL}`)).headers.get('link') ?? '')
      assert.ok(changes !== null)
      const [stream, ...more] = seen.filter((e) => e.url.startsWith('/persons?since='))
      assert.deepEqual([stream?.url, stream?.status, more], [changes[1], undefined, []])
      // nothing changed, so no other response carried a body
      assert.deepEqual(
        seen.filter((e) => e.status !== 304 && e !== stream),
        [],
      )
    })

    it('shows what someone else changed: the revalidation answers 200 with the new list', async () => {
      const user = await open()
      const { etag } = await storedPerson(server.baseUrl, '2')
      const patched = await fetch(`${server.baseUrl}/persons/2`, {
        method: 'PATCH',
        headers: { 'if-match': etag!, 'content-type': 'application/merge-patch+json' },
        body: '{"person_name":"Ann B."}',
      })
      assert.equal(patched.status, 200)
      wire.clear()
      await user.page.reload()
      await user.row('2').getByText('Ann B.').waitFor()
      const list = (await wire.entries()).find((e) => e.url === LIST_URL)
      assert.ok(list?.ifNoneMatch !== undefined)
      assert.equal(list.status, 200)
    })
  })

  it('reads a person again through the browser cache: opening it twice is a 304 the second time', async () => {
    const user = await open()
    wire.clear()
    await user.openEditor('1')
    await user.editor.getByRole('button', { name: 'Cancel' }).click()
    await user.openEditor('1')
    const reads = (await wire.entries()).filter((e) => e.url === '/persons/1')
    assert.deepEqual(
      reads.map((e) => [e.ifNoneMatch === undefined, e.status]),
      [
        [true, 200],
        [false, 304],
      ],
    )
  })

  it('adds a person from the form, and says why when the id is taken', async () => {
    const user = await open()
    const form = user.page.getByRole('region', { name: 'Add a person' })
    await form.getByLabel('ID').fill('new-1')
    await form.getByLabel('Name').fill('Zoë')
    await form.getByRole('button', { name: 'Add person' }).click()
    await user.waitForStatus('Added new-1.')
    await user.row('new-1').getByText('Zoë').waitFor()
    assert.equal((await storedPerson(server.baseUrl, 'new-1')).name, 'Zoë')
    await form.getByLabel('ID').fill('new-1')
    await form.getByLabel('Name').fill('Another')
    await form.getByRole('button', { name: 'Add person' }).click()
    await user.waitForStatus('Not added: Person with ID new-1 already exists')
    assert.equal((await storedPerson(server.baseUrl, 'new-1')).name, 'Zoë')
  })

  it('saves an edit with If-Match set to the ETag of the version it showed', async () => {
    await createPerson(server.baseUrl, 'ed', 'Before')
    const user = await open('ed')
    const { etag } = await storedPerson(server.baseUrl, 'ed')
    await user.openEditor('ed')
    wire.clear()
    await user.saveName('After')
    await user.waitForStatus('Saved ed.')
    await user.row('ed').getByText('After').waitFor()
    const put = (await wire.entries()).find((e) => e.method === 'PUT')
    assert.deepEqual([put?.ifMatch, put?.status], [etag, 200])
    assert.equal((await storedPerson(server.baseUrl, 'ed')).name, 'After')
  })

  it('deletes a person after asking, with If-Match', async () => {
    await createPerson(server.baseUrl, 'del', 'Temporary')
    const user = await open('del')
    const { etag } = await storedPerson(server.baseUrl, 'del')
    await user.openEditor('del')
    await user.editor.getByRole('button', { name: 'Delete' }).click()
    await user.editor.getByRole('button', { name: 'No, keep' }).click()
    assert.equal((await storedPerson(server.baseUrl, 'del')).status, 200)
    wire.clear()
    await user.editor.getByRole('button', { name: 'Delete' }).click()
    await user.editor.getByRole('button', { name: 'Yes, delete' }).click()
    await user.waitForStatus('Deleted del.')
    const del = (await wire.entries()).find((e) => e.method === 'DELETE')
    assert.deepEqual([del?.ifMatch, del?.status], [etag, 204])
    assert.equal((await storedPerson(server.baseUrl, 'del')).status, 404)
    assert.equal(await user.row('del').count(), 0)
  })

  it('pages through a long list with Show more, following Link rel="next"', async () => {
    for (let i = 0; i < 101; i++) await createPerson(server.baseUrl, `z${String(i).padStart(3, '0')}`, `Person ${i}`)
    const user = await open('1')
    const more = user.page.getByRole('button', { name: 'Show more' })
    await more.click()
    await user.row('z100').waitFor()
    assert.ok(await more.isHidden())
  })

  it('works under a Content-Security-Policy that allows only same-origin scripts and styles', async () => {
    const context = await browser.newContext()
    context.setDefaultTimeout(PAGE_TIMEOUT_MS)
    const csp = "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; base-uri 'none'"
    // add the header to the page's own response only; everything else is fetched as usual
    await context.route(`${server.baseUrl}/`, async (route) => {
      const response = await route.fetch()
      await route.fulfill({ response, headers: { ...response.headers(), 'content-security-policy': csp } })
    })
    const page = await context.newPage()
    const violations: string[] = []
    page.on('console', (message) => {
      if (/Content.Security.Policy/i.test(message.text())) violations.push(message.text())
    })
    await page.exposeFunction('reportViolation', (text: string) => violations.push(text))
    // (in-page code as strings: the test suites are type-checked without the DOM's types)
    await page.addInitScript(`document.addEventListener('securitypolicyviolation',
      (event) => window.reportViolation(event.violatedDirective + ' ' + event.blockedURI))`)
    await page.goto(`${server.baseUrl}/`)
    const user = PersonsPage.of(page)
    await user.row('1').waitFor()
    await user.openEditor('1')
    await user.saveName('Wim under CSP')
    await user.waitForStatus('Saved 1.')
    // the changes feed (EventSource, under connect-src) is followed too
    await page.getByText(/^Live:/).waitFor()
    // the style sheet applied (body is 56rem wide at most), and the script ran: nothing was blocked
    assert.equal(await page.evaluate('getComputedStyle(document.body).maxWidth'), '896px')
    assert.deepEqual(violations, [])
    await context.close()
  })
})
