/**
 * The client against the real service over real HTTP, once per driver. What crossed the wire is
 * read from the server's own socket (wire-log), so a cache hit is checked to be a 304 there.
 */
import assert from 'node:assert/strict'
import { after, before, beforeEach, describe, it } from 'node:test'
import {
  AlreadyExistsError,
  ConflictError,
  IfMatchClient,
  MissingEtagError,
  NotFoundError,
  PreconditionFailedError,
  PreconditionRequiredError,
  ProblemError,
  nextLink,
  type Person,
} from '../../src/client/client.js'
import { startServer, type RunningServer } from '../helpers/start-server.js'
import { STALE } from '../helpers/stale-problem.js'
import { TEST_DRIVERS } from '../helpers/test-stores.js'
import { recordWire, type WireLog } from '../helpers/wire-log.js'

for (const driver of TEST_DRIVERS) {
  describe(`IfMatchClient against the service on ${driver.name}`, () => {
    let server: RunningServer
    let wire: WireLog
    let client: IfMatchClient
    let other: IfMatchClient
    let n = 0
    /** A fresh id per test, so tests never see each other's persons. */
    const newId = (): string => `p${++n}-${Date.now().toString(36)}`

    before(async () => {
      server = await startServer({ driver })
      wire = recordWire(server)
    })
    after(async () => server.close())
    beforeEach(() => {
      client = new IfMatchClient({ baseUrl: server.baseUrl })
      // a second user of the same service, with a cache of its own
      other = new IfMatchClient({ baseUrl: server.baseUrl })
      wire.clear()
    })

    /** The person and ETag the server holds, read without any client. */
    async function stored(id: string): Promise<{ status: number; etag: string | null; body: Person | undefined }> {
      const response = await fetch(`${server.baseUrl}/persons/${id}`)
      return { status: response.status, etag: response.headers.get('etag'), body: response.ok ? ((await response.json()) as Person) : undefined }
    }

    describe('get', () => {
      it('revalidates a cached person with If-None-Match, and the 304 on the wire returns the cached value', async () => {
        const id = newId()
        const created = await client.create({ person_id: id, person_name: 'Wim' })
        wire.clear()
        const first = await client.get(id)
        const second = await client.get(id)
        assert.deepEqual(first, created)
        assert.deepEqual(second, created)
        const etag = client.etagOf(id)
        assert.deepEqual(
          (await wire.entries()).map((e) => [e.method, e.url, e.ifNoneMatch, e.status]),
          [
            ['GET', `/persons/${id}`, etag, 304],
            ['GET', `/persons/${id}`, etag, 304],
          ],
        )
      })

      it('answers with the new value when someone else changed the person since it was cached', async () => {
        const id = newId()
        await client.create({ person_id: id, person_name: 'Wim' })
        await other.get(id)
        await other.replace(id, { person_name: 'Wim - update 1' })
        wire.clear()
        const seen = await client.get(id)
        assert.equal(seen.person_name, 'Wim - update 1')
        assert.deepEqual(
          (await wire.entries()).map((e) => e.status),
          [200],
        )
        assert.equal(client.etagOf(id), (await stored(id)).etag)
      })

      it('sends no If-None-Match for a person it has never seen', async () => {
        const id = newId()
        await other.create({ person_id: id, person_name: 'Ann' })
        wire.clear()
        assert.equal((await client.get(id)).person_name, 'Ann')
        assert.deepEqual(
          (await wire.entries()).map((e) => [e.ifNoneMatch, e.status]),
          [[undefined, 200]],
        )
      })

      it('throws a NotFoundError typed from the problem body for an absent person', async () => {
        const error = await client.get('nobody').then(
          () => undefined,
          (e: unknown) => e,
        )
        assert.ok(error instanceof NotFoundError)
        assert.ok(error instanceof ProblemError)
        assert.equal(error.status, 404)
        assert.equal(error.title, 'Not Found')
        assert.equal(error.message, 'Person with ID nobody not found')
        assert.equal(error.type, '/problems/not-found')
        assert.equal(error.problem.detail, 'Person with ID nobody not found')
      })
    })

    describe('list', () => {
      it('yields every person in id order, fetching page after page by following Link rel="next"', async () => {
        const prefix = `list${newId()}-`
        const ids = ['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((s) => prefix + s)
        for (const id of [...ids].reverse()) await other.create({ person_id: id, person_name: `name ${id}` })
        wire.clear()
        const seen: string[] = []
        // start just before the prefix so only this test's persons are listed, 3 to a page
        for await (const person of client.list({ limit: 3, after: prefix })) {
          if (person.person_id.startsWith(prefix)) seen.push(person.person_id)
        }
        assert.deepEqual(seen, ids)
        const pages = (await wire.entries()).map((e) => e.url)
        assert.equal(pages[0], `/persons?limit=3&after=${encodeURIComponent(prefix)}`)
        assert.equal(pages[1], `/persons?limit=3&after=${encodeURIComponent(ids[2]!)}`)
        assert.equal(pages[2], `/persons?limit=3&after=${encodeURIComponent(ids[5]!)}`)
      })

      it('revalidates pages it has seen: listing an unchanged collection again is all 304s', async () => {
        await other.create({ person_id: newId(), person_name: 'Ann' })
        const first: Person[] = []
        for await (const person of client.list({ limit: 2 })) first.push(person)
        wire.clear()
        const again: Person[] = []
        for await (const person of client.list({ limit: 2 })) again.push(person)
        assert.deepEqual(again, first)
        const statuses = (await wire.entries()).map((e) => e.status)
        assert.ok(statuses.length >= 1)
        assert.deepEqual(
          statuses,
          statuses.map(() => 304),
        )
      })
    })

    describe('create', () => {
      it('keeps the created person and its ETag, so the next get is a 304', async () => {
        const id = newId()
        const person = await client.create({ person_id: id, person_name: 'Wim' })
        assert.deepEqual({ id: person.person_id, name: person.person_name }, { id, name: 'Wim' })
        assert.equal(client.etagOf(id), (await stored(id)).etag)
        wire.clear()
        await client.get(id)
        assert.deepEqual(
          (await wire.entries()).map((e) => e.status),
          [304],
        )
      })

      it('throws an AlreadyExistsError with the seed message when the id is taken', async () => {
        const id = newId()
        await other.create({ person_id: id, person_name: 'Wim' })
        const error = await client.create({ person_id: id, person_name: 'Ann' }).then(
          () => undefined,
          (e: unknown) => e,
        )
        assert.ok(error instanceof AlreadyExistsError)
        assert.equal(error.status, 409)
        assert.equal(error.message, `Person with ID ${id} already exists`)
        assert.equal((await stored(id)).body?.person_name, 'Wim')
      })
    })

    describe('writes with the ETag the client last saw', () => {
      it('replace sends If-Match with that ETag and keeps the ETag of the answer', async () => {
        const id = newId()
        await client.create({ person_id: id, person_name: 'Wim' })
        const seenEtag = client.etagOf(id)
        wire.clear()
        const replaced = await client.replace(id, { person_name: 'Wim - update 1' })
        assert.equal(replaced.person_name, 'Wim - update 1')
        assert.deepEqual(
          (await wire.entries()).map((e) => [e.method, e.ifMatch, e.status]),
          [['PUT', seenEtag, 200]],
        )
        const now = await stored(id)
        assert.equal(now.body?.person_name, 'Wim - update 1')
        assert.equal(client.etagOf(id), now.etag)
        assert.notEqual(now.etag, seenEtag)
      })

      it('patch changes the named member only, with If-Match', async () => {
        const id = newId()
        await client.create({ person_id: id, person_name: 'Wim' })
        const seenEtag = client.etagOf(id)
        wire.clear()
        const patched = await client.patch(id, { person_name: 'Wim P.' })
        assert.equal(patched.person_name, 'Wim P.')
        assert.deepEqual(
          (await wire.entries()).map((e) => [e.method, e.ifMatch, e.status]),
          [['PATCH', seenEtag, 200]],
        )
        await client.patch(id, {})
        assert.equal((await stored(id)).body?.person_name, 'Wim P.')
      })

      it('throws a PreconditionFailedError when someone else wrote since, and leaves their write in place', async () => {
        const id = newId()
        await client.create({ person_id: id, person_name: 'Wim' })
        await other.get(id)
        await other.replace(id, { person_name: 'Wim - update 1' })
        const before = await stored(id)
        for (const write of [
          () => client.replace(id, { person_name: 'Wim - update 2' }),
          () => client.patch(id, { person_name: 'Wim - update 2' }),
          () => client.remove(id),
        ]) {
          const error = await write().then(
            () => undefined,
            (e: unknown) => e,
          )
          assert.ok(error instanceof PreconditionFailedError)
          assert.equal(error.status, 412)
          assert.equal(error.title, 'Precondition Failed')
          assert.equal(error.message, STALE)
        }
        assert.deepEqual(await stored(id), before)
      })

      it('throws a PreconditionRequiredError (428) when it has seen no ETag for the person', async () => {
        const id = newId()
        await other.create({ person_id: id, person_name: 'Wim' })
        const error = await client.replace(id, { person_name: 'blind' }).then(
          () => undefined,
          (e: unknown) => e,
        )
        assert.ok(error instanceof PreconditionRequiredError)
        assert.equal(error.status, 428)
        assert.match(error.message, /If-Match/)
        assert.equal((await stored(id)).body?.person_name, 'Wim')
      })

      it('writes over the ETag passed in options instead of the one it last saw', async () => {
        const id = newId()
        await other.create({ person_id: id, person_name: 'Wim' })
        const etag = other.etagOf(id)!
        await client.replace(id, { person_name: 'Ann' }, { etag })
        assert.equal((await stored(id)).body?.person_name, 'Ann')
      })

      it('remove deletes with If-Match and forgets the person', async () => {
        const id = newId()
        await client.create({ person_id: id, person_name: 'Wim' })
        const seenEtag = client.etagOf(id)
        wire.clear()
        await client.remove(id)
        assert.deepEqual(
          (await wire.entries()).map((e) => [e.method, e.ifMatch, e.status]),
          [['DELETE', seenEtag, 204]],
        )
        assert.equal(client.etagOf(id), undefined)
        assert.equal((await stored(id)).status, 404)
        await assert.rejects(client.get(id), NotFoundError)
      })
    })

    describe('update', () => {
      const increment = (p: Person) => ({ person_name: String(Number(p.person_name) + 1) })

      it('applies the change to the current value and writes it with If-Match', async () => {
        const id = newId()
        await other.create({ person_id: id, person_name: '41' })
        const etag = other.etagOf(id)
        wire.clear()
        const updated = await client.update(id, increment)
        assert.equal(updated.person_name, '42')
        assert.deepEqual(
          (await wire.entries()).map((e) => [e.method, e.ifMatch, e.status]),
          [
            ['GET', undefined, 200],
            ['PUT', etag, 200],
          ],
        )
      })

      it('after a 412 reads again and re-applies the change to the newer value', async () => {
        const id = newId()
        await other.create({ person_id: id, person_name: 'Wim' })
        const seen: string[] = []
        const updated = await client.update(id, async (current) => {
          seen.push(current.person_name)
          // the first time, another writer gets in between this read and this write
          if (seen.length === 1) await other.replace(id, { person_name: 'Wim by other' })
          return { person_name: `${current.person_name} + mine` }
        })
        assert.deepEqual(seen, ['Wim', 'Wim by other'])
        assert.equal(updated.person_name, 'Wim by other + mine')
        assert.equal((await stored(id)).body?.person_name, 'Wim by other + mine')
        const puts = (await wire.entries()).filter((e) => e.method === 'PUT' && e.url === `/persons/${id}`)
        assert.deepEqual(
          puts.map((e) => e.status),
          [200, 412, 200],
        )
      })

      it('16 parallel updates from one client that each increment a counter end at exactly 16', async () => {
        const id = newId()
        await other.create({ person_id: id, person_name: '0' })
        const results = await Promise.all(Array.from({ length: 16 }, () => client.update(id, increment)))
        assert.equal((await stored(id)).body?.person_name, '16')
        // every write saw a different value: none was lost
        assert.deepEqual(
          results.map((p) => Number(p.person_name)).sort((a, b) => a - b),
          Array.from({ length: 16 }, (_, i) => i + 1),
        )
      })

      it('16 parallel updates from 16 clients that each increment a counter end at exactly 16', async () => {
        const id = newId()
        await other.create({ person_id: id, person_name: '0' })
        const clients = Array.from({ length: 16 }, () => new IfMatchClient({ baseUrl: server.baseUrl }))
        await Promise.all(clients.map((c) => c.update(id, increment)))
        assert.equal((await stored(id)).body?.person_name, '16')
      })

      it('gives up after maxAttempts with a ConflictError holding what it meant to write and the current version', async () => {
        const id = newId()
        await other.create({ person_id: id, person_name: 'start' })
        let round = 0
        const error = await client
          .update(
            id,
            async (current) => {
              round++
              // every time, another writer gets in first
              await other.replace(id, { person_name: `other ${round}` })
              return { person_name: `${current.person_name} + mine` }
            },
            { maxAttempts: 3, baseDelayMs: 1 },
          )
          .then(
            () => undefined,
            (e: unknown) => e,
          )
        assert.ok(error instanceof ConflictError)
        assert.ok(error instanceof PreconditionFailedError)
        assert.equal(error.status, 412)
        assert.equal(error.attempts, 3)
        assert.equal(error.id, id)
        assert.equal(error.intended.person_name, 'other 2 + mine')
        const now = await stored(id)
        assert.deepEqual(error.current, { value: now.body, etag: now.etag })
        assert.equal(now.body?.person_name, 'other 3')
        // each round: the other writer's PUT wins, then this client's loses
        const puts = (await wire.entries()).filter((e) => e.method === 'PUT' && e.url === `/persons/${id}`)
        assert.deepEqual(
          puts.map((e) => e.status),
          [200, 412, 200, 412, 200, 412],
        )
      })

      it('does not retry what is not a 412: an absent person is a NotFoundError and the change never runs', async () => {
        let ran = false
        await assert.rejects(
          client.update('nobody', (p) => {
            ran = true
            return p
          }),
          NotFoundError,
        )
        assert.equal(ran, false)
      })
    })

    it('throws MissingEtagError when the ETag is hidden from it, as a browser hides unexposed headers across origins', async () => {
      const id = newId()
      await other.create({ person_id: id, person_name: 'Wim' })
      const hiding = new IfMatchClient({
        baseUrl: server.baseUrl,
        fetch: async (input, init) => {
          const response = await fetch(input, init)
          const headers = new Headers(response.headers)
          headers.delete('etag')
          return new Response(response.body, { status: response.status, statusText: response.statusText, headers })
        },
      })
      await assert.rejects(hiding.get(id), (error: unknown) => error instanceof MissingEtagError && /Access-Control-Expose-Headers: ETag/.test(error.message))
    })

    it('keeps a path prefix of the base URL', async () => {
      const prefixed = new IfMatchClient({ baseUrl: `${server.baseUrl}/api` })
      wire.clear()
      await assert.rejects(prefixed.get('x'), NotFoundError)
      assert.deepEqual(
        (await wire.entries()).map((e) => e.url),
        ['/api/persons/x'],
      )
    })
  })
}

describe('nextLink', () => {
  const cases = [
    { name: 'no Link field', field: null, next: undefined },
    { name: 'one next link, relative', field: '</persons?limit=3&after=c>; rel="next"', next: 'http://h/persons?limit=3&after=c' },
    { name: 'an unquoted rel', field: '</p?after=c>; rel=next', next: 'http://h/p?after=c' },
    { name: 'next among other links and types', field: '</a>; rel="prev", </b>; title="x"; rel="last next"', next: 'http://h/b' },
    { name: 'only other relations', field: '</a>; rel="prev"', next: undefined },
  ]
  for (const c of cases) {
    it(`reads ${c.name}`, () => assert.equal(nextLink(c.field, 'http://h/persons'), c.next))
  }
})
