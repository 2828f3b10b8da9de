/**
 * The mid-air collision in a real browser: two users (two browser contexts) open the same person
 * and both edit it; the second save gets a 412 and the conflict view. Each way out of it must end
 * in the state the user chose, checked over HTTP afterwards.
 */
import assert from 'node:assert/strict'
import { statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { before, describe, it } from 'node:test'
import { browserSkipReason } from '../helpers/browser.js'
import { createPerson } from '../helpers/http-answers.js'
import { pageFixture, type PersonsPage, storedPerson } from '../helpers/persons-page.js'
import type { RunningServer } from '../helpers/start-server.js'
import { tempDir } from '../helpers/test-stores.js'
import type { WireLog } from '../helpers/wire-log.js'

const SCREENSHOT = fileURLToPath(new URL('../../docs/conflict-view.png', import.meta.url))

describe('the conflict view, when two users edit the same person', { skip: browserSkipReason() }, () => {
  const fixture = pageFixture()
  let server: RunningServer
  let wire: WireLog
  before(() => {
    ;({ server, wire } = fixture)
  })

  /**
   * Ann and Bob open person `id`; Ann saves first; Bob's save meets the conflict view.
   * Returns Bob's page and the ETag of Ann's version.
   */
  async function collide(id: string): Promise<{ bob: PersonsPage; annEtag: string }> {
    await createPerson(server.baseUrl, id, 'Original')
    const ann = await fixture.open(id)
    const bob = await fixture.open(id)
    await ann.openEditor(id)
    await bob.openEditor(id)
    await ann.saveName('Ann edit')
    await ann.waitForStatus(`Saved ${id}.`)
    const annVersion = await storedPerson(server.baseUrl, id)
    assert.equal(annVersion.name, 'Ann edit')
    wire.clear()
    await bob.saveName('Bob edit')
    await bob.conflict.waitFor()
    // Bob's write was refused on the wire with the ETag he opened, and nothing was overwritten
    const puts = (await wire.entries()).filter((e) => e.method === 'PUT')
    assert.deepEqual(
      puts.map((e) => e.status),
      [412],
    )
    assert.notEqual(puts[0]!.ifMatch, annVersion.etag)
    assert.deepEqual(await storedPerson(server.baseUrl, id), annVersion)
    return { bob, annEtag: annVersion.etag! }
  }

  it("shows the user's edit beside the current value, with three choices", async () => {
    const { bob } = await collide('shown')
    assert.equal(await bob.conflict.getByRole('region', { name: 'Your edit' }).getByText('Bob edit').count(), 1)
    assert.equal(await bob.conflict.getByRole('region', { name: 'Current value' }).getByText('Ann edit').count(), 1)
    for (const name of ['Keep mine', 'Take theirs', 'Edit again']) {
      assert.ok(await bob.conflict.getByRole('button', { name }).isEnabled(), name)
    }
    assert.ok(await bob.editor.isHidden())
    const path = process.env.UPDATE_SCREENSHOTS === '1' ? SCREENSHOT : join(tempDir().path, 'conflict-view.png')
    await bob.page.screenshot({ path })
    assert.ok(statSync(path).size > 1000)
  })

  it("Keep mine re-sends the user's edit with the new ETag, and it is stored", async () => {
    const { bob, annEtag } = await collide('keep-mine')
    wire.clear()
    await bob.conflict.getByRole('button', { name: 'Keep mine' }).click()
    await bob.waitForStatus('Saved keep-mine.')
    assert.deepEqual(await wire.puts(), [[annEtag, 200]])
    assert.equal((await storedPerson(server.baseUrl, 'keep-mine')).name, 'Bob edit')
    await bob.row('keep-mine').getByText('Bob edit').waitFor()
    assert.ok(await bob.conflict.isHidden())
  })

  it("Take theirs discards the user's edit, writes nothing, and shows the current value", async () => {
    const { bob, annEtag } = await collide('take-theirs')
    wire.clear()
    await bob.conflict.getByRole('button', { name: 'Take theirs' }).click()
    await bob.waitForStatus(/Kept the current version of take-theirs/)
    await bob.row('take-theirs').getByText('Ann edit').waitFor()
    assert.deepEqual(
      (await wire.entries()).filter((e) => e.method !== 'GET'),
      [],
    )
    const stored = await storedPerson(server.baseUrl, 'take-theirs')
    assert.deepEqual([stored.name, stored.etag], ['Ann edit', annEtag])
    assert.ok(await bob.conflict.isHidden())
  })

  it("Edit again opens the current value with the user's edit beside it, and saves the merge", async () => {
    const { bob, annEtag } = await collide('edit-again')
    await bob.conflict.getByRole('button', { name: 'Edit again' }).click()
    await bob.editor.waitFor()
    assert.equal(await bob.editor.getByLabel('Name').inputValue(), 'Ann edit')
    assert.equal(await bob.editor.getByText('Bob edit').count(), 1)
    assert.ok(await bob.conflict.isHidden())
    wire.clear()
    await bob.saveName('Ann and Bob edit')
    await bob.waitForStatus('Saved edit-again.')
    assert.deepEqual(await wire.puts(), [[annEtag, 200]])
    assert.equal((await storedPerson(server.baseUrl, 'edit-again')).name, 'Ann and Bob edit')
  })

  it('Keep mine after yet another change shows the conflict again instead of overwriting it', async () => {
    const { bob } = await collide('again')
    const carol = await fixture.open('again')
    await carol.openEditor('again')
    await carol.saveName('Carol edit')
    await carol.waitForStatus('Saved again.')
    await bob.conflict.getByRole('button', { name: 'Keep mine' }).click()
    await bob.conflict.getByRole('region', { name: 'Current value' }).getByText('Carol edit').waitFor()
    assert.equal((await storedPerson(server.baseUrl, 'again')).name, 'Carol edit')
    await bob.conflict.getByRole('button', { name: 'Keep mine' }).click()
    await bob.waitForStatus('Saved again.')
    assert.equal((await storedPerson(server.baseUrl, 'again')).name, 'Bob edit')
  })

  it('a delete over a stale version meets the conflict view too, and Keep mine then deletes', async () => {
    await createPerson(server.baseUrl, 'doomed', 'Original')
    const ann = await fixture.open('doomed')
    const bob = await fixture.open('doomed')
    await ann.openEditor('doomed')
    await bob.openEditor('doomed')
    await ann.saveName('Ann edit')
    await ann.waitForStatus('Saved doomed.')
    await bob.editor.getByRole('button', { name: 'Delete' }).click()
    await bob.editor.getByRole('button', { name: 'Yes, delete' }).click()
    await bob.conflict.waitFor()
    assert.equal(await bob.conflict.getByRole('region', { name: 'Your edit' }).getByText('(delete this person)').count(), 1)
    assert.equal((await storedPerson(server.baseUrl, 'doomed')).name, 'Ann edit')
    await bob.conflict.getByRole('button', { name: 'Keep mine' }).click()
    await bob.waitForStatus('Deleted doomed.')
    assert.equal((await storedPerson(server.baseUrl, 'doomed')).status, 404)
    assert.equal(await bob.row('doomed').count(), 0)
  })

  it('an edit of a person someone else deleted offers to re-create it with Keep mine', async () => {
    await createPerson(server.baseUrl, 'gone', 'Original')
    const bob = await fixture.open('gone')
    await bob.openEditor('gone')
    const { etag } = await storedPerson(server.baseUrl, 'gone')
    await fetch(`${server.baseUrl}/persons/gone`, { method: 'DELETE', headers: { 'if-match': etag! } })
    await bob.saveName('Bob edit')
    await bob.conflict.getByRole('region', { name: 'Current value' }).getByText('(deleted by someone else)').waitFor()
    assert.ok(await bob.conflict.getByRole('button', { name: 'Edit again' }).isDisabled())
    await bob.conflict.getByRole('button', { name: 'Keep mine' }).click()
    await bob.waitForStatus('Saved gone.')
    assert.equal((await storedPerson(server.baseUrl, 'gone')).name, 'Bob edit')
  })
})
