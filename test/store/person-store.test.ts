/**
 * The PersonStore contract, run against every driver in TEST_DRIVERS: the store objects
 * themselves, no HTTP. The basic operations share one database, each test with ids of its own;
 * situations that need a database of their own open one and remove it afterwards.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { StoreUnavailableError, type CollectionValidator, type PersonStore, type StoredPerson } from '../../src/store/person-store.js'
import { TEST_DRIVERS, type TestDatabase } from '../helpers/test-stores.js'

// ids that are all valid person ids, listed in code-point order:
// '-' 0x2D < '.' 0x2E < '0' 0x30 < 'A' 0x41 < 'Z' 0x5A < '_' 0x5F < 'a' 0x61 < 'z' 0x7A < '~' 0x7E
const IDS_IN_CODE_POINT_ORDER = ['-dash', '.dot', '0zero', '9nine', 'A', 'Ab', 'Z', '_under', 'a', 'aB', 'ab', 'z', '~tilde']

function compareCodePoints(a: string, b: string): number {
  const x = [...a].map((c) => c.codePointAt(0)!)
  const y = [...b].map((c) => c.codePointAt(0)!)
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i]! - y[i]!
  }
  return x.length - y.length
}

async function mustCreate(store: PersonStore, id: string, name: string): Promise<StoredPerson> {
  const result = await store.create(id, name)
  assert.ok(result.ok, `create ${id} failed: ${JSON.stringify(result)}`)
  return result.person
}

async function mustUpdate(store: PersonStore, id: string, name: string, expectedVersion: number): Promise<StoredPerson> {
  const result = await store.update(id, name, expectedVersion)
  assert.ok(result.ok, `update ${id} failed: ${JSON.stringify(result)}`)
  return result.person
}

for (const driver of TEST_DRIVERS) {
  describe(driver.name, () => {
    let database: TestDatabase
    let store: PersonStore

    before(async () => {
      database = await driver.createDatabase()
      store = await database.openStore()
    })

    after(async () => {
      await store.close()
      await database.cleanup()
    })

    describe('a fresh database', () => {
      it('has a non-empty epoch and an empty first page', async () => {
        const fresh = await driver.createDatabase()
        const freshStore = await fresh.openStore()
        try {
          assert.equal(typeof freshStore.epoch, 'string')
          assert.notEqual(freshStore.epoch, '')
          assert.equal(freshStore.driver, driver.name)
          const page = await freshStore.readPage({ limit: 10 })
          assert.deepEqual(page.persons, [])
          assert.equal(page.hasMore, false)
          assert.deepEqual(page.collection, await freshStore.readCollectionValidator())
        } finally {
          await freshStore.close()
          await fresh.cleanup()
        }
      })
    })

    describe('create', () => {
      it('stores the person and returns it with its version and change time', async () => {
        const person = await mustCreate(store, 'create-1', 'Wim')
        assert.equal(person.id, 'create-1')
        assert.equal(person.name, 'Wim')
        assert.ok(Number.isInteger(person.version) && person.version > 0)
        // the time of the write; a minute of slack, since a clock may step (this is no timing test)
        assert.ok(Math.abs(person.changedAt - Date.now()) < 60_000, `changedAt ${person.changedAt} is not now`)
        assert.deepEqual(await store.read('create-1'), person)
        assert.deepEqual(await store.readValidator('create-1'), { version: person.version, changedAt: person.changedAt })
      })

      it('keeps any Unicode name exactly as given', async () => {
        const name = 'Zoë 🙂 ﷽ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \u00a0 end'
        const person = await mustCreate(store, 'create-unicode', name)
        assert.equal(person.name, name)
        assert.equal((await store.read('create-unicode'))?.name, name)
      })

      describe('of an id that exists', () => {
        it('answers exists and leaves the stored person and the revision unchanged', async () => {
          const original = await mustCreate(store, 'create-twice', 'First')
          const collection = await store.readCollectionValidator()
          const result = await store.create('create-twice', 'Second')
          assert.deepEqual(result, { ok: false, reason: 'exists' })
          assert.deepEqual(await store.read('create-twice'), original)
          assert.deepEqual(await store.readCollectionValidator(), collection)
        })
      })
    })

    describe('read and readValidator', () => {
      it('answer undefined for an absent id', async () => {
        assert.equal(await store.read('never-created'), undefined)
        assert.equal(await store.readValidator('never-created'), undefined)
      })

      it('treat ids as case-sensitive', async () => {
        const lower = await mustCreate(store, 'case-x', 'lower')
        assert.equal(await store.read('CASE-X'), undefined)
        assert.equal(await store.read('Case-x'), undefined)
        assert.deepEqual(await store.read('case-x'), lower)
      })
    })

    describe('update', () => {
      describe('with the stored version', () => {
        it('sets the name and gives a new, greater version', async () => {
          const created = await mustCreate(store, 'update-ok', 'Before')
          const updated = await mustUpdate(store, 'update-ok', 'After', created.version)
          assert.equal(updated.id, 'update-ok')
          assert.equal(updated.name, 'After')
          assert.ok(updated.version > created.version)
          assert.deepEqual(await store.read('update-ok'), updated)
          assert.deepEqual(await store.readValidator('update-ok'), { version: updated.version, changedAt: updated.changedAt })
        })

        it('gives a new version even when the name does not change', async () => {
          const created = await mustCreate(store, 'update-same', 'Same')
          const updated = await mustUpdate(store, 'update-same', 'Same', created.version)
          assert.ok(updated.version > created.version)
        })
      })

      describe('with a stale version', () => {
        it('answers version-mismatch and changes nothing', async () => {
          const created = await mustCreate(store, 'update-stale', 'One')
          const current = await mustUpdate(store, 'update-stale', 'Two', created.version)
          const collection = await store.readCollectionValidator()
          const result = await store.update('update-stale', 'Three', created.version)
          assert.deepEqual(result, { ok: false, reason: 'version-mismatch' })
          assert.deepEqual(await store.read('update-stale'), current)
          assert.deepEqual(await store.readCollectionValidator(), collection)
        })

        it('answers version-mismatch for a version never handed out', async () => {
          const created = await mustCreate(store, 'update-bogus', 'One')
          const collection = await store.readCollectionValidator()
          for (const bogus of [0, -1, created.version + 1, created.version + 1000, Number.MAX_SAFE_INTEGER]) {
            assert.deepEqual(await store.update('update-bogus', 'Other', bogus), { ok: false, reason: 'version-mismatch' })
          }
          assert.deepEqual(await store.read('update-bogus'), created)
          assert.deepEqual(await store.readCollectionValidator(), collection)
        })
      })

      describe('of an absent id', () => {
        it('answers not-found and creates nothing', async () => {
          const collection = await store.readCollectionValidator()
          assert.deepEqual(await store.update('update-absent', 'Ghost', 1), { ok: false, reason: 'not-found' })
          assert.equal(await store.read('update-absent'), undefined)
          assert.deepEqual(await store.readCollectionValidator(), collection)
        })
      })
    })

    describe('delete', () => {
      describe('with the stored version', () => {
        it('removes the person and bumps the revision', async () => {
          const created = await mustCreate(store, 'delete-ok', 'Doomed')
          const collection = await store.readCollectionValidator()
          assert.deepEqual(await store.delete('delete-ok', created.version), { ok: true })
          assert.equal(await store.read('delete-ok'), undefined)
          assert.equal(await store.readValidator('delete-ok'), undefined)
          const afterwards = await store.readCollectionValidator()
          assert.ok(afterwards.revision > collection.revision)
        })
      })

      describe('with a stale version', () => {
        it('answers version-mismatch and keeps the person', async () => {
          const created = await mustCreate(store, 'delete-stale', 'One')
          const current = await mustUpdate(store, 'delete-stale', 'Two', created.version)
          const collection = await store.readCollectionValidator()
          assert.deepEqual(await store.delete('delete-stale', created.version), { ok: false, reason: 'version-mismatch' })
          assert.deepEqual(await store.read('delete-stale'), current)
          assert.deepEqual(await store.readCollectionValidator(), collection)
        })
      })

      describe('of an absent id', () => {
        it('answers not-found and bumps nothing', async () => {
          const collection = await store.readCollectionValidator()
          assert.deepEqual(await store.delete('delete-absent', 1), { ok: false, reason: 'not-found' })
          assert.deepEqual(await store.readCollectionValidator(), collection)
        })

        it('answers not-found for a person already deleted', async () => {
          const created = await mustCreate(store, 'delete-twice', 'Once')
          assert.deepEqual(await store.delete('delete-twice', created.version), { ok: true })
          const collection = await store.readCollectionValidator()
          assert.deepEqual(await store.delete('delete-twice', created.version), { ok: false, reason: 'not-found' })
          assert.deepEqual(await store.readCollectionValidator(), collection)
        })
      })

      describe('and re-create of the same id', () => {
        it('gives a version the id never had before', async () => {
          const seen = new Set<number>()
          let person = await mustCreate(store, 'recreate', 'Same name')
          seen.add(person.version)
          for (let round = 0; round < 5; round++) {
            assert.deepEqual(await store.delete('recreate', person.version), { ok: true })
            person = await mustCreate(store, 'recreate', 'Same name')
            assert.ok(!seen.has(person.version), `version ${person.version} was reused after delete and re-create`)
            assert.ok(person.version > Math.max(...seen))
            seen.add(person.version)
          }
        })
      })
    })

    describe('versions and the collection revision', () => {
      it('every write gets a version greater than any before it, across ids, and bumps the revision to it', async () => {
        let last: CollectionValidator = await store.readCollectionValidator()
        const versions: number[] = []
        const check = async (written: StoredPerson | undefined): Promise<void> => {
          const now = await store.readCollectionValidator()
          assert.ok(now.revision > last.revision, `revision went from ${last.revision} to ${now.revision}`)
          if (written !== undefined) {
            // person-store.ts: a person's version is the store-wide revision of the write that produced it
            assert.equal(written.version, now.revision)
            assert.ok(
              versions.every((v) => v < written.version),
              'a version is greater than every earlier one',
            )
            versions.push(written.version)
            assert.equal(now.changedAt, written.changedAt)
          }
          last = now
        }
        const a = await mustCreate(store, 'order-a', 'A')
        await check(a)
        const b = await mustCreate(store, 'order-b', 'B')
        await check(b)
        const a2 = await mustUpdate(store, 'order-a', 'A2', a.version)
        await check(a2)
        assert.deepEqual(await store.delete('order-b', b.version), { ok: true })
        await check(undefined)
        const c = await mustCreate(store, 'order-c', 'C')
        await check(c)
        const b2 = await mustCreate(store, 'order-b', 'B again')
        await check(b2)
        const c2 = await mustUpdate(store, 'order-c', 'C2', c.version)
        await check(c2)
      })

      it('a failed write of any kind bumps nothing', async () => {
        const p = await mustCreate(store, 'fail-bump', 'P')
        const collection = await store.readCollectionValidator()
        const snapshot = await store.read('fail-bump')
        assert.deepEqual(await store.create('fail-bump', 'again'), { ok: false, reason: 'exists' })
        assert.deepEqual(await store.update('fail-bump', 'stale', p.version - 1), { ok: false, reason: 'version-mismatch' })
        assert.deepEqual(await store.update('fail-bump-absent', 'absent', p.version), { ok: false, reason: 'not-found' })
        assert.deepEqual(await store.delete('fail-bump', p.version + 1), { ok: false, reason: 'version-mismatch' })
        assert.deepEqual(await store.delete('fail-bump-absent', p.version), { ok: false, reason: 'not-found' })
        assert.deepEqual(await store.readCollectionValidator(), collection)
        assert.deepEqual(await store.read('fail-bump'), snapshot)
        // and the version the failures were measured against still wins
        const next = await mustUpdate(store, 'fail-bump', 'P2', p.version)
        assert.ok(next.version > collection.revision)
      })
    })

    describe('readPage', () => {
      let pageDatabase: TestDatabase
      let pageStore: PersonStore

      before(async () => {
        pageDatabase = await driver.createDatabase()
        pageStore = await pageDatabase.openStore()
        // inserted in an order unrelated to the expected one
        const shuffled = [...IDS_IN_CODE_POINT_ORDER].sort((x, y) => x.length - y.length || (x < y ? 1 : -1))
        for (const id of shuffled) await mustCreate(pageStore, id, `name of ${id}`)
      })

      after(async () => {
        await pageStore.close()
        await pageDatabase.cleanup()
      })

      it('lists persons in code-point order of their ids', async () => {
        const page = await pageStore.readPage({ limit: 1000 })
        const ids = page.persons.map((p) => p.id)
        assert.deepEqual(ids, IDS_IN_CODE_POINT_ORDER)
        assert.deepEqual([...ids].sort(compareCodePoints), ids)
        assert.equal(page.hasMore, false)
      })

      it('returns whole stored persons, as read() does', async () => {
        const page = await pageStore.readPage({ limit: 3 })
        for (const person of page.persons) assert.deepEqual(person, await pageStore.read(person.id))
      })

      it('returns at most limit persons and says whether more exist', async () => {
        const first = await pageStore.readPage({ limit: 4 })
        assert.deepEqual(
          first.persons.map((p) => p.id),
          IDS_IN_CODE_POINT_ORDER.slice(0, 4),
        )
        assert.equal(first.hasMore, true)
        const exact = await pageStore.readPage({ limit: IDS_IN_CODE_POINT_ORDER.length })
        assert.equal(exact.persons.length, IDS_IN_CODE_POINT_ORDER.length)
        assert.equal(exact.hasMore, false)
        const one = await pageStore.readPage({ limit: 1 })
        assert.deepEqual(
          one.persons.map((p) => p.id),
          ['-dash'],
        )
        assert.equal(one.hasMore, true)
      })

      it('walks the whole collection with after, each id exactly once', async () => {
        const walked: string[] = []
        let after: string | undefined
        for (let guard = 0; guard < 100; guard++) {
          const page = await pageStore.readPage({ limit: 3, after })
          walked.push(...page.persons.map((p) => p.id))
          if (!page.hasMore) break
          after = page.persons.at(-1)?.id
        }
        assert.deepEqual(walked, IDS_IN_CODE_POINT_ORDER)
      })

      it('starts after an id that is not stored, in code-point order', async () => {
        const page = await pageStore.readPage({ limit: 100, after: 'Aa' })
        assert.deepEqual(
          page.persons.map((p) => p.id),
          IDS_IN_CODE_POINT_ORDER.filter((id) => compareCodePoints(id, 'Aa') > 0),
        )
        assert.deepEqual(page.persons.map((p) => p.id).slice(0, 2), ['Ab', 'Z'])
        const past = await pageStore.readPage({ limit: 100, after: '~~' })
        assert.deepEqual(past.persons, [])
        assert.equal(past.hasMore, false)
      })

      it('carries the collection validator readCollectionValidator() gives at that time', async () => {
        const before = await pageStore.readCollectionValidator()
        const page = await pageStore.readPage({ limit: 2 })
        assert.deepEqual(page.collection, before)
        const person = await pageStore.read('Z')
        await mustUpdate(pageStore, 'Z', 'renamed', person!.version)
        const later = await pageStore.readPage({ limit: 2, after: 'a' })
        assert.deepEqual(later.collection, await pageStore.readCollectionValidator())
        assert.ok(later.collection.revision > page.collection.revision)
      })
    })

    describe('a second store on the same database', () => {
      let shared: TestDatabase
      let first: PersonStore
      let second: PersonStore

      before(async () => {
        shared = await driver.createDatabase({ shared: true })
        first = await shared.openStore()
        second = await shared.openStore()
      })

      after(async () => {
        await first.close()
        await second.close()
        await shared.cleanup()
      })

      it('has the same epoch', () => {
        assert.equal(second.epoch, first.epoch)
      })

      it('sees every write of the first, and the first sees its writes', async () => {
        const a = await mustCreate(first, 'two-a', 'from first')
        assert.deepEqual(await second.read('two-a'), a)
        assert.deepEqual(await second.readCollectionValidator(), await first.readCollectionValidator())
        const b = await mustUpdate(second, 'two-a', 'from second', a.version)
        assert.deepEqual(await first.read('two-a'), b)
        assert.ok(b.version > a.version)
        assert.deepEqual(await first.readPage({ limit: 10 }), await second.readPage({ limit: 10 }))
        assert.deepEqual(await second.delete('two-a', b.version), { ok: true })
        assert.equal(await first.read('two-a'), undefined)
      })

      it('lets exactly one of two updates with the same expected version win', async () => {
        const created = await mustCreate(first, 'two-cas', 'start')
        const seenByFirst = await first.readValidator('two-cas')
        const seenBySecond = await second.readValidator('two-cas')
        assert.deepEqual(seenByFirst, seenBySecond)
        const won = await mustUpdate(second, 'two-cas', 'second wins', created.version)
        const collection = await first.readCollectionValidator()
        assert.deepEqual(await first.update('two-cas', 'first loses', created.version), { ok: false, reason: 'version-mismatch' })
        assert.deepEqual(await first.delete('two-cas', created.version), { ok: false, reason: 'version-mismatch' })
        assert.deepEqual(await first.read('two-cas'), won)
        assert.deepEqual(await second.readCollectionValidator(), collection)
      })

      it('lets exactly one of two creates of the same id win', async () => {
        const won = await mustCreate(second, 'two-create', 'second')
        assert.deepEqual(await first.create('two-create', 'first'), { ok: false, reason: 'exists' })
        assert.deepEqual(await first.read('two-create'), won)
      })

      it('sees a delete by the other store as not-found', async () => {
        const created = await mustCreate(first, 'two-delete', 'doomed')
        assert.deepEqual(await second.delete('two-delete', created.version), { ok: true })
        assert.deepEqual(await first.update('two-delete', 'too late', created.version), { ok: false, reason: 'not-found' })
        assert.deepEqual(await first.delete('two-delete', created.version), { ok: false, reason: 'not-found' })
      })

      it('lets exactly one of many simultaneous updates with the same expected version win, across both stores', async () => {
        const created = await mustCreate(first, 'two-race', 'start')
        const results = await Promise.all(
          Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? first : second).update('two-race', `racer ${i}`, created.version)),
        )
        const winners = results.filter((r) => r.ok)
        assert.equal(winners.length, 1, JSON.stringify(results))
        for (const loser of results.filter((r) => !r.ok)) assert.deepEqual(loser, { ok: false, reason: 'version-mismatch' })
        const winner = winners[0]!
        assert.ok(winner.ok)
        assert.deepEqual(await first.read('two-race'), winner.person)
        assert.deepEqual(await second.read('two-race'), winner.person)
      })

      it('answers many validator reads at once, each at least as new as every write acknowledged before it was asked', async () => {
        // PostgreSQL gathers concurrent validator reads into shared statements (gathered-reads.ts):
        // here every gathered answer must be the right id's, and never older than what was
        // acknowledged before it was asked. The window in which a statement sent earlier would
        // answer wrongly is tens of microseconds, rarely hit here: the rule itself (never join a
        // statement in flight) is pinned by test/store/gathered-reads.test.ts
        const ids = Array.from({ length: 12 }, (_, i) => `gathered-${i}`)
        const acknowledged = new Map<string, number>()
        for (const id of ids) acknowledged.set(id, (await mustCreate(second, id, 'start')).version)
        let newestAcknowledged = Math.max(...acknowledged.values())
        const writing = (async () => {
          for (let round = 0; round < 40; round++) {
            await Promise.all(
              ids.map(async (id) => {
                const done = await mustUpdate(second, id, `round ${round}`, acknowledged.get(id)!)
                acknowledged.set(id, done.version)
                newestAcknowledged = Math.max(newestAcknowledged, done.version)
              }),
            )
          }
        })()
        let reads = 0
        let writesDone = false
        void writing.finally(() => {
          writesDone = true
        })
        // readers that ask again as soon as they are answered: new reads keep arriving while
        // other statements are in flight and while writes are being acknowledged
        const reader = async (n: number): Promise<void> => {
          for (let i = n; !writesDone; i++) {
            // a turn of the event loop each time: SQLite answers reads without one, and its writes need one
            await new Promise((resolve) => setImmediate(resolve))
            if (i % 10 === 9) {
              const floor = newestAcknowledged
              const collection = await first.readCollectionValidator()
              assert.ok(collection.revision >= floor, `revision ${collection.revision} read after ${floor} was acknowledged`)
              continue
            }
            const id = i % 15 === 14 ? 'gathered-absent' : ids[(i * 7) % ids.length]!
            const floor = acknowledged.get(id)
            const validator = await first.readValidator(id)
            reads++
            if (floor === undefined) assert.equal(validator, undefined)
            else assert.ok(validator !== undefined && validator.version >= floor, `${id}: version ${validator?.version} read after ${floor} was acknowledged`)
          }
        }
        await Promise.all(Array.from({ length: 24 }, (_, n) => reader(n)))
        await writing
        assert.ok(reads > 100, `only ${reads} reads ran beside the writes`)
        for (const id of ids) assert.equal((await first.readValidator(id))?.version, acknowledged.get(id))
      })

      it('never hands out the same version twice when the two stores write in turn', async () => {
        const versions: number[] = []
        for (let i = 0; i < 20; i++) {
          const writer = i % 2 === 0 ? first : second
          versions.push((await mustCreate(writer, `two-turn-${i}`, `n${i}`)).version)
        }
        for (let i = 1; i < versions.length; i++) assert.ok(versions[i]! > versions[i - 1]!)
      })
    })

    describe('reopening a closed database', () => {
      // API.md: the schema is created or migrated on start; a second start on the same data loses nothing
      it('keeps every person, the epoch and the revision', async () => {
        const db = await driver.createDatabase()
        try {
          const one = await db.openStore()
          const a = await mustCreate(one, 'keep-a', 'Alpha')
          const b = await mustCreate(one, 'keep-b', 'Beta')
          const b2 = await mustUpdate(one, 'keep-b', 'Beta 2', b.version)
          const c = await mustCreate(one, 'keep-c', 'Gamma')
          assert.deepEqual(await one.delete('keep-c', c.version), { ok: true })
          const epoch = one.epoch
          const collection = await one.readCollectionValidator()
          const page = await one.readPage({ limit: 100 })
          await one.close()

          const two = await db.openStore()
          try {
            assert.equal(two.epoch, epoch)
            assert.deepEqual(await two.readCollectionValidator(), collection)
            assert.deepEqual(await two.readPage({ limit: 100 }), page)
            assert.deepEqual(await two.read('keep-a'), a)
            assert.deepEqual(await two.read('keep-b'), b2)
            assert.equal(await two.read('keep-c'), undefined)
            // and the next write goes on from the old revision, never reusing a version
            const d = await mustCreate(two, 'keep-d', 'Delta')
            assert.ok(d.version > collection.revision)
          } finally {
            await two.close()
          }

          const three = await db.openStore()
          try {
            assert.equal(three.epoch, epoch)
            assert.equal((await three.readPage({ limit: 100 })).persons.length, 3)
          } finally {
            await three.close()
          }
        } finally {
          await db.cleanup()
        }
      })
    })

    describe('two stores opened at the same moment on a fresh database', () => {
      // as two server processes starting together would: the schema is created once, one epoch
      it('agree on the epoch and both work', async () => {
        const db = await driver.createDatabase({ shared: true })
        try {
          const [one, two] = await Promise.all([db.openStore(), db.openStore()])
          try {
            assert.equal(one.epoch, two.epoch)
            const a = await mustCreate(one, 'together', 'A')
            assert.deepEqual(await two.read('together'), a)
          } finally {
            await one.close()
            await two.close()
          }
        } finally {
          await db.cleanup()
        }
      })
    })

    describe('a wiped database', () => {
      it('gets a different epoch', async () => {
        const epochs = new Set<string>()
        for (let i = 0; i < 3; i++) {
          const db = await driver.createDatabase()
          const s = await db.openStore()
          await mustCreate(s, 'same-id', 'same name')
          epochs.add(s.epoch)
          await s.close()
          await db.cleanup()
        }
        assert.equal(epochs.size, 3, 'every re-initialised database has an epoch of its own')
      })
    })

    describe('a closed store', () => {
      let closedDatabase: TestDatabase
      let closed: PersonStore
      let version: number

      before(async () => {
        closedDatabase = await driver.createDatabase()
        closed = await closedDatabase.openStore()
        version = (await mustCreate(closed, 'closed-a', 'A')).version
        await closed.close()
      })

      after(async () => {
        await closedDatabase.cleanup()
      })

      const operations: Array<[string, (s: PersonStore) => Promise<unknown>]> = [
        ['read', (s) => s.read('closed-a')],
        ['readValidator', (s) => s.readValidator('closed-a')],
        ['readCollectionValidator', (s) => s.readCollectionValidator()],
        ['readPage', (s) => s.readPage({ limit: 10 })],
        ['create', (s) => s.create('closed-b', 'B')],
        ['update', (s) => s.update('closed-a', 'A2', version)],
        ['delete', (s) => s.delete('closed-a', version)],
      ]
      for (const [name, operation] of operations) {
        // the timeout turns a hang into a failure instead of a stalled run
        it(`rejects ${name} with StoreUnavailableError`, { timeout: 10_000 }, async () => {
          await assert.rejects(operation(closed), (error: unknown) => {
            assert.ok(error instanceof StoreUnavailableError, `got ${String(error)}`)
            assert.equal(error.name, 'StoreUnavailableError')
            return true
          })
        })
      }

      it('can be closed twice', async () => {
        await closed.close()
      })

      it('lost nothing: a new store on the database still has the person', async () => {
        const reopened = await closedDatabase.openStore()
        try {
          assert.equal((await reopened.read('closed-a'))?.version, version)
        } finally {
          await reopened.close()
        }
      })
    })
  })
}
