/**
 * 200s are served from a cache of serialised representations keyed by ETag (docs/design.md,
 * "How the guarantees are kept"). The cache must never serve what a write has replaced, whichever process wrote:
 * two server processes share one database, each warms its cache, and the other one writes.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawnServer, type ServerProcess } from '../helpers/spawn-server.js'
import { TEST_DRIVERS, type TestDatabase } from '../helpers/test-stores.js'

interface PersonBody {
  readonly person_id: string
  readonly person_name: string
}

async function get(url: string): Promise<{ status: number; etag: string | null; text: string }> {
  const response = await fetch(url)
  return { status: response.status, etag: response.headers.get('etag'), text: await response.text() }
}

async function rename(baseUrl: string, id: string, name: string): Promise<string> {
  const current = await get(`${baseUrl}/persons/${id}`)
  const response = await fetch(`${baseUrl}/persons/${id}`, {
    method: 'PUT',
    headers: { 'if-match': current.etag! },
    body: JSON.stringify({ person_name: name }),
  })
  await response.arrayBuffer()
  assert.equal(response.status, 200)
  return response.headers.get('etag')!
}

for (const driver of TEST_DRIVERS) {
  describe(`${driver.name}: two processes, each with its own cache of representations`, () => {
    let database: TestDatabase
    let a: ServerProcess
    let b: ServerProcess
    before(async () => {
      database = await driver.createDatabase({ shared: true })
      a = await spawnServer(database.url, [], undefined, database.env)
      b = await spawnServer(database.url, [], undefined, database.env)
      for (const id of ['c1', 'c2', 'c3']) {
        const response = await fetch(`${a.baseUrl}/persons`, { method: 'POST', body: JSON.stringify({ person_id: id, person_name: `Name ${id}` }) })
        await response.arrayBuffer()
        assert.equal(response.status, 201)
      }
    })
    after(async () => {
      await a.stop()
      await b.stop()
      await database.cleanup()
    })

    it('serves a cached page byte for byte as it was first sent, under the same ETag', async () => {
      const first = await get(`${a.baseUrl}/persons?limit=2`)
      const again = await get(`${a.baseUrl}/persons?limit=2`)
      assert.equal(again.status, 200)
      assert.equal(again.etag, first.etag)
      assert.equal(again.text, first.text)
    })

    it('shows a write made by the other process on the very next page read', async () => {
      const warm = await get(`${a.baseUrl}/persons?limit=2`)
      const etag = await rename(b.baseUrl, 'c1', 'Renamed on B')
      const next = await get(`${a.baseUrl}/persons?limit=2`)
      assert.notEqual(next.etag, warm.etag)
      const names = (JSON.parse(next.text) as PersonBody[]).map((p) => p.person_name)
      assert.deepEqual(names, ['Renamed on B', 'Name c2'])
      const person = await get(`${a.baseUrl}/persons/c1`)
      assert.equal(person.etag, etag)
      assert.equal((JSON.parse(person.text) as PersonBody).person_name, 'Renamed on B')
    })

    it('shows a write made by the other process on the very next read of the person', async () => {
      const warm = await get(`${b.baseUrl}/persons/c2`)
      assert.equal((JSON.parse(warm.text) as PersonBody).person_name, 'Name c2')
      const etag = await rename(a.baseUrl, 'c2', 'Renamed on A')
      const next = await get(`${b.baseUrl}/persons/c2`)
      assert.equal(next.etag, etag)
      assert.equal((JSON.parse(next.text) as PersonBody).person_name, 'Renamed on A')
    })

    it('serves a page again once a write elsewhere in the collection has moved its ETag on', async () => {
      // a write to c3 changes the page of c1 and c2 too: a new ETag, the same persons
      const before = await get(`${a.baseUrl}/persons?limit=2`)
      await rename(b.baseUrl, 'c3', 'Renamed c3')
      const after = await get(`${a.baseUrl}/persons?limit=2`)
      assert.notEqual(after.etag, before.etag)
      assert.equal(after.text, before.text)
    })
  })
}
