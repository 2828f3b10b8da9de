/**
 * The live persons page in a real browser: it follows the changes feed (Server-Sent Events) from
 * the moment its list was read, so what other users (other pages, or plain HTTP) save or delete
 * shows up without a reload, and a person open in the editor says at once that it changed, with
 * the new version ready to load. A stream the server refuses (410 Gone) makes the page read the
 * list again and follow the feed from there.
 */
import assert from 'node:assert/strict'
import { statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import type { Browser } from 'playwright-core'
import { browserSkipReason, launchBrowser } from '../helpers/browser.js'
import { createPerson } from '../helpers/http-answers.js'
import { pageFixture, PersonsPage, storedPerson } from '../helpers/persons-page.js'
import { startServer, type RunningServer } from '../helpers/start-server.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'
import { tempDir } from '../helpers/test-stores.js'
import type { WireLog } from '../helpers/wire-log.js'

const SCREENSHOT = fileURLToPath(new URL('../../docs/live-edit-notice.png', import.meta.url))
const LIST_URL = '/persons?limit=100'

/** Renames a person over plain HTTP, as another client would, and returns the new ETag. */
async function rename(baseUrl: string, id: string, name: string): Promise<string> {
  const { etag } = await storedPerson(baseUrl, id)
  const response = await fetch(`${baseUrl}/persons/${id}`, {
    method: 'PUT',
    headers: { 'if-match': etag! },
    body: JSON.stringify({ person_id: id, person_name: name }),
  })
  assert.equal(response.status, 200)
  return response.headers.get('etag')!
}

/** Deletes a person over plain HTTP, as another client would. */
async function remove(baseUrl: string, id: string): Promise<void> {
  const { etag } = await storedPerson(baseUrl, id)
  const response = await fetch(`${baseUrl}/persons/${id}`, { method: 'DELETE', headers: { 'if-match': etag! } })
  assert.equal(response.status, 204)
}

/** Records the URLs of the requests a page makes from now on. */
function requestsOf(user: PersonsPage): string[] {
  const urls: string[] = []
  user.page.on('request', (request) => urls.push(new URL(request.url()).pathname + new URL(request.url()).search))
  return urls
}

/** Records the status of each changes-feed response a page gets from now on. */
function feedStatusesOf(user: PersonsPage): number[] {
  const statuses: number[] = []
  user.page.on('response', (response) => {
    if (new URL(response.url()).search.startsWith('?since=')) statuses.push(response.status())
  })
  return statuses
}

/** The ids the list shows, top to bottom. */
async function listedIds(user: PersonsPage): Promise<string[]> {
  return user.page.getByRole('region', { name: 'All persons' }).locator('tbody tr td:first-child').allTextContents()
}

describe('the live persons page, when persons change elsewhere', { skip: browserSkipReason() }, () => {
  const fixture = pageFixture()
  let server: RunningServer
  let wire: WireLog
  before(() => {
    ;({ server, wire } = fixture)
  })

  describe('the list', () => {
    it('shows a name another page saved, without reading the list again', async () => {
      await createPerson(server.baseUrl, 'l-edit', 'Before')
      const ann = await fixture.open('l-edit')
      const bob = await fixture.open('l-edit')
      await ann.page.getByText(/^Live:/).waitFor()
      const annRequests = requestsOf(ann)
      await bob.openEditor('l-edit')
      await bob.saveName('Saved by Bob')
      await bob.waitForStatus('Saved l-edit.')
      await ann.row('l-edit').getByText('Saved by Bob').waitFor()
      // the change came over the stream: Ann's page neither reloaded nor read the list
      assert.deepEqual(
        annRequests.filter((url) => url === '/' || url.startsWith('/persons')),
        [],
      )
    })

    it('adds a person created over HTTP at its place in the order', async () => {
      await createPerson(server.baseUrl, 'l-a', 'First')
      await createPerson(server.baseUrl, 'l-c', 'Third')
      const ann = await fixture.open('l-c')
      await createPerson(server.baseUrl, 'l-b', 'Second')
      await ann.row('l-b').getByText('Second').waitFor()
      const ids = await listedIds(ann)
      assert.deepEqual(
        ids.filter((id) => id.startsWith('l-')),
        ['l-a', 'l-b', 'l-c', 'l-edit'],
      )
    })

    it('removes the row of a person deleted elsewhere', async () => {
      await createPerson(server.baseUrl, 'l-gone', 'Short-lived')
      const ann = await fixture.open('l-gone')
      await remove(server.baseUrl, 'l-gone')
      await ann.row('l-gone').waitFor({ state: 'detached' })
      assert.equal(await ann.row('l-a').count(), 1)
    })
  })

  describe('a list longer than one page', () => {
    it('adds a person among the rows shown, and leaves one that sorts after them to Show more', async () => {
      for (let i = 0; i <= 100; i++) await createPerson(server.baseUrl, `p${String(i).padStart(3, '0')}`, `Person ${i}`)
      const ann = await fixture.open('p000')
      const more = ann.page.getByRole('button', { name: 'Show more' })
      assert.ok(await more.isVisible())
      const last = (await listedIds(ann)).at(-1)!
      // '~' sorts after every other id character: the first id sorts after the page, the second on it
      await createPerson(server.baseUrl, `${last}~`, 'After the page')
      await createPerson(server.baseUrl, 'p000~', 'On the page')
      await ann.row('p000~').getByText('On the page').waitFor()
      // the feed delivers in commit order, so the earlier create was handled (and left out) already
      assert.equal(await ann.row(`${last}~`).count(), 0)
      const ids = await listedIds(ann)
      assert.deepEqual(ids.slice(ids.indexOf('p000'), ids.indexOf('p000') + 3), ['p000', 'p000~', 'p001'])
      await more.click()
      await ann.row(`${last}~`).getByText('After the page').waitFor()
    })
  })

  describe('a person open in the editor', () => {
    it('says at once, before any save, that someone else changed it, naming the new name', async () => {
      await createPerson(server.baseUrl, 'e-notice', 'Original')
      const ann = await fixture.open('e-notice')
      await ann.openEditor('e-notice')
      await ann.editor.getByLabel('Name').fill('Ann is typing')
      wire.clear()
      await rename(server.baseUrl, 'e-notice', 'Changed elsewhere')
      const notice = ann.editor.getByRole('alert')
      await notice.getByText(/Someone else changed this person to “Changed elsewhere”/).waitFor()
      assert.ok(await notice.getByRole('button', { name: 'Load their version' }).isVisible())
      // the only write was the test's own: Ann's page sent nothing, and what she typed is untouched
      assert.deepEqual(
        (await wire.entries()).filter((e) => e.method !== 'GET').map((e) => [e.method, e.status]),
        [['PUT', 200]],
      )
      assert.equal(await ann.editor.getByLabel('Name').inputValue(), 'Ann is typing')
      const path = process.env.UPDATE_SCREENSHOTS === '1' ? SCREENSHOT : join(tempDir().path, 'live-edit-notice.png')
      await ann.page.screenshot({ path })
      assert.ok(statSync(path).size > 1000)
    })

    it('loads the new name and ETag on request, so the next save succeeds (200, not 412)', async () => {
      await createPerson(server.baseUrl, 'e-load', 'Original')
      const ann = await fixture.open('e-load')
      const bob = await fixture.open('e-load')
      await ann.openEditor('e-load')
      await bob.openEditor('e-load')
      await bob.saveName('Bob version')
      await bob.waitForStatus('Saved e-load.')
      const bobVersion = await storedPerson(server.baseUrl, 'e-load')
      await ann.editor.getByRole('button', { name: 'Load their version' }).click()
      assert.equal(await ann.editor.getByLabel('Name').inputValue(), 'Bob version')
      assert.ok(await ann.editor.getByRole('alert').isHidden())
      assert.ok((await ann.editor.getByText(/^Version /).textContent())!.includes(bobVersion.etag!))
      wire.clear()
      await ann.saveName('Ann over Bob')
      await ann.waitForStatus('Saved e-load.')
      assert.deepEqual(await wire.puts(), [[bobVersion.etag, 200]])
      assert.equal((await storedPerson(server.baseUrl, 'e-load')).name, 'Ann over Bob')
      await bob.row('e-load').getByText('Ann over Bob').waitFor()
    })

    it('keeps what the user had typed beside the loaded name, to merge by hand', async () => {
      await createPerson(server.baseUrl, 'e-merge', 'Original')
      const ann = await fixture.open('e-merge')
      await ann.openEditor('e-merge')
      await ann.editor.getByLabel('Name').fill('Ann draft')
      await rename(server.baseUrl, 'e-merge', 'Elsewhere')
      await ann.editor.getByRole('button', { name: 'Load their version' }).click()
      assert.equal(await ann.editor.getByLabel('Name').inputValue(), 'Elsewhere')
      assert.equal(await ann.editor.getByText('Ann draft').count(), 1)
    })

    it('still opens the conflict view when the user saves over the old version anyway', async () => {
      await createPerson(server.baseUrl, 'e-anyway', 'Original')
      const ann = await fixture.open('e-anyway')
      await ann.openEditor('e-anyway')
      const { etag: opened } = await storedPerson(server.baseUrl, 'e-anyway')
      await rename(server.baseUrl, 'e-anyway', 'Elsewhere')
      await ann.editor.getByRole('alert').waitFor()
      wire.clear()
      await ann.saveName('Ann anyway')
      await ann.conflict.getByRole('region', { name: 'Current value' }).getByText('Elsewhere').waitFor()
      assert.deepEqual(await wire.puts(), [[opened, 412]])
      assert.equal((await storedPerson(server.baseUrl, 'e-anyway')).name, 'Elsewhere')
    })

    it('says it was deleted elsewhere, and its row goes, and a save then offers to create it again', async () => {
      await createPerson(server.baseUrl, 'e-deleted', 'Original')
      const ann = await fixture.open('e-deleted')
      await ann.openEditor('e-deleted')
      await remove(server.baseUrl, 'e-deleted')
      const notice = ann.editor.getByRole('alert')
      await notice.getByText(/Someone else deleted this person/).waitFor()
      assert.ok(await notice.getByRole('button', { name: 'Load their version' }).isHidden())
      await ann.row('e-deleted').waitFor({ state: 'detached' })
      await ann.saveName('Ann again')
      await ann.conflict.getByRole('region', { name: 'Current value' }).getByText('(deleted by someone else)').waitFor()
      assert.equal((await storedPerson(server.baseUrl, 'e-deleted')).status, 404)
    })
  })
})

describe('the live persons page, when its stream breaks', { skip: browserSkipReason() }, () => {
  let first: RunningServer
  let second: RunningServer
  let browser: Browser
  let proxy: TcpProxy | undefined
  before(async () => {
    first = await startServer()
    second = await startServer()
    browser = await launchBrowser()
  })
  after(async () => {
    await browser?.close()
    await proxy?.close()
    await first?.close()
    await second?.close()
  })

  it('catches up after a dropped connection, resuming from the last event (Last-Event-ID), without reading the list', async () => {
    await createPerson(first.baseUrl, 'resumed', 'Before')
    proxy = await TcpProxy.start({ host: '127.0.0.1', port: Number(new URL(first.baseUrl).port) })
    const user = await PersonsPage.open(browser, `http://127.0.0.1:${proxy.port}`, 'resumed')
    await rename(first.baseUrl, 'resumed', 'Delivered before the drop')
    await user.row('resumed').getByText('Delivered before the drop').waitFor()
    await proxy.close()
    await user.page.getByText(/reconnecting/).waitFor()
    const resumes: Promise<Record<string, string>>[] = []
    user.page.on('request', (request) => {
      if (new URL(request.url()).search.startsWith('?since=')) resumes.push(request.allHeaders())
    })
    const requests = requestsOf(user)
    await rename(first.baseUrl, 'resumed', 'Saved while disconnected')
    await proxy.open()
    // EventSource reconnects by itself after the retry delay the server set
    await user.row('resumed').getByText('Saved while disconnected').waitFor({ timeout: 20_000 })
    assert.ok(!requests.includes(LIST_URL), `the list was read again: ${JSON.stringify(requests)}`)
    const headers = await Promise.all(resumes)
    assert.ok(headers.length >= 1 && headers.every((h) => h['last-event-id'] !== undefined), JSON.stringify(headers))
    await proxy.close()
    proxy = undefined
    await user.close()
  })

  it('reads the list again and follows the feed from there after a 410 for a token of another database', async () => {
    await createPerson(first.baseUrl, 'old', 'From the first database')
    await createPerson(second.baseUrl, 'new', 'From the second database')
    const port = (base: string): number => Number(new URL(base).port)
    proxy = await TcpProxy.start({ host: '127.0.0.1', port: port(first.baseUrl) })
    const user = await PersonsPage.open(browser, `http://127.0.0.1:${proxy.port}`, 'old')
    await user.page.getByText(/^Live:/).waitFor()
    // the same address now reaches another database: the stream's token means nothing there
    await proxy.close()
    proxy = await TcpProxy.start({ host: '127.0.0.1', port: port(second.baseUrl) }, proxy.port)
    const requests = requestsOf(user)
    const feedStatuses = feedStatusesOf(user)
    // EventSource reconnects after the retry delay the server set, and the page starts over 1 s after the refusal
    await user.row('new').waitFor({ timeout: 20_000 })
    assert.equal(await user.row('old').count(), 0)
    assert.ok(requests.includes(LIST_URL), `the list was not read again: ${JSON.stringify(requests)}`)
    await user.page.getByText(/^Live:/).waitFor()
    assert.deepEqual(feedStatuses, [410, 200])
    await createPerson(second.baseUrl, 'newer', 'Created after the restart')
    await user.row('newer').getByText('Created after the restart').waitFor()
    await user.close()
  })
})
