/**
 * API.md, Validators: an ETag is never reused for a different representation, not after an
 * update, not after delete and re-create, not after the database is wiped; the ETag of a write
 * response is exactly what the next GET returns; a page's ETag changes on every write.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { send, type Answer } from '../helpers/http-answers.js'
import { startServer, type RunningServer } from '../helpers/start-server.js'
import { TEST_DRIVERS } from '../helpers/test-stores.js'

// RFC 9110 §8.8.3: entity-tag = [ weak ] opaque-tag; a strong one has no W/ prefix
const STRONG_ETAG = /^"[\x21\x23-\x7e\x80-\xff]*"$/

function strongEtag(answer: Answer): string {
  assert.ok(answer.etag !== null, `status ${answer.status} without an ETag: ${answer.body}`)
  assert.match(answer.etag, STRONG_ETAG)
  return answer.etag
}

function json(body: Record<string, unknown>): RequestInit {
  return { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }
}

for (const driver of TEST_DRIVERS) {
  describe(driver.name, () => {
    let server: RunningServer
    let base: string

    const get = (id: string): Promise<Answer> => send(`${base}/persons/${id}`)
    const create = async (id: string, name: string): Promise<string> => {
      const answer = await send(`${base}/persons`, { method: 'POST', ...json({ person_id: id, person_name: name }) })
      assert.equal(answer.status, 201, answer.body)
      return strongEtag(answer)
    }
    const put = async (id: string, name: string, ifMatch: string): Promise<string> => {
      const answer = await send(`${base}/persons/${id}`, {
        method: 'PUT',
        ...json({ person_name: name }),
        headers: { 'content-type': 'application/json', 'if-match': ifMatch },
      })
      assert.equal(answer.status, 200, answer.body)
      return strongEtag(answer)
    }
    const remove = async (id: string, ifMatch: string): Promise<void> => {
      const answer = await send(`${base}/persons/${id}`, { method: 'DELETE', headers: { 'if-match': ifMatch } })
      assert.equal(answer.status, 204, answer.body)
    }

    before(async () => {
      server = await startServer({ driver })
      base = server.baseUrl
    })

    after(async () => {
      await server.close()
    })

    describe('PUT in a rapid sequence on one person', () => {
      it("gives 200 distinct ETags, each equal to the next GET's", async () => {
        let etag = await create('rapid', 'v0')
        const seen = new Set([etag])
        for (let i = 1; i <= 200; i++) {
          // same-millisecond writes are the point: a clock-based ETag would repeat here
          etag = await put('rapid', `v${i}`, etag)
          assert.ok(!seen.has(etag), `write ${i} reused the ETag ${etag}`)
          seen.add(etag)
          const read = await get('rapid')
          assert.equal(read.status, 200)
          assert.equal(read.etag, etag, `GET after write ${i}`)
          assert.equal(JSON.parse(read.body).person_name, `v${i}`)
        }
        assert.equal(seen.size, 201)
      })
    })

    describe('writing the names A, then B, then A again', () => {
      it('gives three different ETags, and the first no longer validates', async () => {
        const first = await create('aba', 'A')
        const second = await put('aba', 'B', first)
        const third = await put('aba', 'A', second)
        assert.equal(new Set([first, second, third]).size, 3)
        const read = await get('aba')
        assert.equal(read.etag, third)
        // unlike a body hash: the first A's ETag must not answer 304 for the second A
        const revalidated = await send(`${base}/persons/aba`, { headers: { 'if-none-match': first } })
        assert.equal(revalidated.status, 200)
        assert.equal(revalidated.etag, third)
        const stale = await send(`${base}/persons/aba`, {
          method: 'PUT',
          ...json({ person_name: 'C' }),
          headers: { 'content-type': 'application/json', 'if-match': first },
        })
        assert.equal(stale.status, 412)
      })
    })

    describe('delete and re-create of the same id', () => {
      it('gives an ETag never seen before, every time', async () => {
        const seen = new Set<string>()
        let etag = await create('phoenix', 'Same')
        seen.add(etag)
        for (let round = 0; round < 10; round++) {
          await remove('phoenix', etag)
          assert.equal((await get('phoenix')).status, 404)
          if (round % 2 === 0) {
            etag = await create('phoenix', 'Same')
          } else {
            const created = await send(`${base}/persons/phoenix`, {
              method: 'PUT',
              ...json({ person_name: 'Same' }),
              headers: { 'content-type': 'application/json', 'if-none-match': '*' },
            })
            assert.equal(created.status, 201, created.body)
            etag = strongEtag(created)
          }
          assert.ok(!seen.has(etag), `re-create ${round} reused the ETag ${etag}`)
          seen.add(etag)
          assert.equal((await get('phoenix')).etag, etag)
        }
        // no old ETag validates the newest person
        for (const old of [...seen].filter((e) => e !== etag)) {
          const answer = await send(`${base}/persons/phoenix`, { headers: { 'if-none-match': old } })
          assert.equal(answer.status, 200, `old ETag ${old} answered ${answer.status}`)
        }
      })
    })

    describe('a wiped and re-initialised database', () => {
      // regression: the seed hashed the change date; the same writes in the same order on a
      // fresh database must not hand out an ETag a client may still hold
      it('gives ETags all different from the old ones for the same ids written in the same order', async () => {
        const script = async (target: string): Promise<string[]> => {
          const etags: string[] = []
          const call = async (url: string, init: RequestInit, status: number): Promise<string> => {
            const answer = await send(url, init)
            assert.equal(answer.status, status, answer.body)
            const etag = strongEtag(answer)
            etags.push(etag)
            return etag
          }
          for (const id of ['w1', 'w2', 'w3']) {
            await call(`${target}/persons`, { method: 'POST', ...json({ person_id: id, person_name: `name ${id}` }) }, 201)
          }
          const w1 = await call(`${target}/persons/w1`, {}, 200)
          await call(
            `${target}/persons/w1`,
            {
              method: 'PUT',
              ...json({ person_name: 'renamed' }),
              headers: { 'content-type': 'application/json', 'if-match': w1 },
            },
            200,
          )
          await call(`${target}/persons/w2`, {}, 200)
          await call(`${target}/persons`, {}, 200)
          await call(`${target}/persons?limit=1`, {}, 200)
          await call(`${target}/persons?limit=1&after=w1`, {}, 200)
          return etags
        }

        const oldServer = await startServer({ driver })
        const oldEtags = await script(oldServer.baseUrl)
        await oldServer.close()

        const newServer = await startServer({ driver })
        try {
          const newEtags = await script(newServer.baseUrl)
          assert.equal(newEtags.length, oldEtags.length)
          const reused = newEtags.filter((etag) => oldEtags.includes(etag))
          assert.deepEqual(reused, [], 'ETags from before the wipe were handed out again')
          // and an old ETag held by a client neither validates nor authorises a write
          const stale = oldEtags[3]!
          const read = await send(`${newServer.baseUrl}/persons/w1`, { headers: { 'if-none-match': stale } })
          assert.equal(read.status, 200)
          const write = await send(`${newServer.baseUrl}/persons/w1`, {
            method: 'PUT',
            ...json({ person_name: 'lost update' }),
            headers: { 'content-type': 'application/json', 'if-match': stale },
          })
          assert.equal(write.status, 412)
        } finally {
          await newServer.close()
        }
      })
    })

    describe('the collection page ETag', () => {
      const page = (query: string): Promise<Answer> => send(`${base}/persons${query}`)

      it('changes on every create, update and delete, on every page', async () => {
        for (const id of ['pg-a', 'pg-b', 'pg-c', 'pg-d', 'pg-e', 'pg-f']) await create(id, id)
        const queries = ['', '?limit=2', '?limit=2&after=pg-a', '?limit=1000']
        const seen = new Set<string>()
        const snapshot = async (): Promise<string[]> => {
          const etags: string[] = []
          for (const query of queries) {
            const answer = await page(query)
            assert.equal(answer.status, 200, answer.body)
            const etag = strongEtag(answer)
            // a page ETag is never one handed out for another state or another page
            assert.ok(!seen.has(etag), `page ${query} reused ${etag}`)
            seen.add(etag)
            etags.push(etag)
          }
          return etags
        }
        let before = await snapshot()
        const expectAllChanged = async (what: string): Promise<void> => {
          const now = await snapshot()
          for (let i = 0; i < queries.length; i++) assert.notEqual(now[i], before[i], `${what}: page ${queries[i]}`)
          before = now
        }

        await create('pg-g', 'late')
        await expectAllChanged('create')
        const f = strongEtag(await get('pg-f'))
        await put('pg-f', 'renamed', f)
        await expectAllChanged('update of a person on a later page')
        // API.md: a delete on page 3 changes page 1's ETag too
        const e = strongEtag(await get('pg-e'))
        await remove('pg-e', e)
        await expectAllChanged('delete of a person on a later page')
        const a = strongEtag(await get('pg-a'))
        const patched = await send(`${base}/persons/pg-a`, {
          method: 'PATCH',
          headers: { 'content-type': 'application/merge-patch+json', 'if-match': a },
          body: '{"person_name":"patched"}',
        })
        assert.equal(patched.status, 200, patched.body)
        await expectAllChanged('patch')
      })

      it('answers 304 to its own ETag until the next write, and 200 after it', async () => {
        const first = strongEtag(await page('?limit=2'))
        const same = await send(`${base}/persons?limit=2`, { headers: { 'if-none-match': first } })
        assert.equal(same.status, 304)
        assert.equal(same.etag, first)
        await create('pg-304', 'new')
        const changed = await send(`${base}/persons?limit=2`, { headers: { 'if-none-match': first } })
        assert.equal(changed.status, 200)
        assert.notEqual(changed.etag, first)
      })
    })

    describe('the ETag of a write response', () => {
      it('is exactly the ETag (and Last-Modified) of the next GET, for POST, PUT, PATCH and create-only PUT', async () => {
        const check = async (label: string, answer: Answer, status: number, id: string): Promise<string> => {
          assert.equal(answer.status, status, `${label}: ${answer.body}`)
          const etag = strongEtag(answer)
          const read = await get(id)
          assert.equal(read.status, 200)
          assert.equal(read.etag, etag, label)
          assert.equal(read.lastModified, answer.lastModified, label)
          assert.deepEqual(JSON.parse(read.body), JSON.parse(answer.body), label)
          return etag
        }
        const posted = await check(
          'POST',
          await send(`${base}/persons`, {
            method: 'POST',
            ...json({ person_id: 'echo', person_name: 'posted' }),
          }),
          201,
          'echo',
        )
        const putted = await check(
          'PUT',
          await send(`${base}/persons/echo`, {
            method: 'PUT',
            ...json({ person_name: 'put' }),
            headers: { 'content-type': 'application/json', 'if-match': posted },
          }),
          200,
          'echo',
        )
        const patched = await check(
          'PATCH',
          await send(`${base}/persons/echo`, {
            method: 'PATCH',
            headers: { 'content-type': 'application/merge-patch+json', 'if-match': putted },
            body: '{"person_name":"patched"}',
          }),
          200,
          'echo',
        )
        await check(
          'PATCH without changes',
          await send(`${base}/persons/echo`, {
            method: 'PATCH',
            headers: { 'content-type': 'application/merge-patch+json', 'if-match': patched },
            body: '{}',
          }),
          200,
          'echo',
        )
        await check(
          'create-only PUT',
          await send(`${base}/persons/echo-2`, {
            method: 'PUT',
            ...json({ person_name: 'created' }),
            headers: { 'content-type': 'application/json', 'if-none-match': '*' },
          }),
          201,
          'echo-2',
        )
      })
    })
  })
}
