/**
 * InstrumentedPersonStore (src/store/instrumented-person-store.ts) on each driver's real store:
 * what it reports for the validator reads. SQLite's awaited reads are timed call by call.
 * PostgreSQL's are gathered into shared statements (gathered-reads.ts), which the store times
 * itself: one report per statement, however many reads it answered, and none once the decorator
 * is detached.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { InstrumentedPersonStore, type StoreOperation } from '../../src/store/instrumented-person-store.js'
import type { PersonStore } from '../../src/store/person-store.js'
import { TEST_DRIVERS, type TestDatabase } from '../helpers/test-stores.js'

interface Report {
  readonly operation: StoreOperation
  readonly outcome: 'ok' | 'error'
  readonly seconds: number
}

/** A decorator around `store` and what it has reported so far. */
function instrumented(store: PersonStore): { store: InstrumentedPersonStore; reports: Report[] } {
  const reports: Report[] = []
  return { store: new InstrumentedPersonStore(store, (operation, outcome, seconds) => reports.push({ operation, outcome, seconds })), reports }
}

const IDS = ['a', 'b', 'c', 'a', 'd']

for (const driver of TEST_DRIVERS) {
  describe(`InstrumentedPersonStore on ${driver.name}`, () => {
    let database: TestDatabase
    let inner: PersonStore

    before(async () => {
      database = await driver.createDatabase()
      inner = await database.openStore()
      for (const id of ['a', 'b', 'c']) assert.equal((await inner.create(id, id.toUpperCase())).ok, true)
    })

    after(async () => {
      await inner?.close()
      await database?.cleanup()
    })

    it('changes no answer', async () => {
      const { store } = instrumented(inner)
      try {
        assert.deepEqual(await Promise.all(IDS.map((id) => store.readValidator(id))), await Promise.all(IDS.map((id) => inner.readValidator(id))))
        assert.deepEqual(await store.readCollectionValidator(), await inner.readCollectionValidator())
      } finally {
        store.detach()
      }
    })

    if (driver.name === 'sqlite') {
      it('times each awaited validator read', async () => {
        const { store, reports } = instrumented(inner)
        await Promise.all(IDS.map((id) => store.readValidator(id)))
        await Promise.all([store.readCollectionValidator(), store.readCollectionValidator()])
        assert.deepEqual(
          reports.map((r) => [r.operation, r.outcome]),
          [...IDS.map(() => ['readValidator', 'ok']), ['readCollectionValidator', 'ok'], ['readCollectionValidator', 'ok']],
        )
      })
      return
    }

    it('reports one statement for the reads asked in one turn of the event loop, with its duration', async () => {
      const { store, reports } = instrumented(inner)
      try {
        // asked in one turn with a slot free: GatheredReads sends them in one statement
        const found = await Promise.all(IDS.map((id) => store.readValidator(id)))
        assert.equal(found.filter((v) => v !== undefined).length, 4, 'a, b, c, a found; d absent')
        await Promise.all([store.readCollectionValidator(), store.readCollectionValidator(), store.readCollectionValidator()])
        assert.deepEqual(
          reports.map((r) => [r.operation, r.outcome]),
          [
            ['readValidator', 'ok'],
            ['readCollectionValidator', 'ok'],
          ],
        )
        for (const { seconds } of reports) assert.ok(seconds > 0 && seconds < 10, `a statement took ${seconds} s`)
      } finally {
        store.detach()
      }
    })

    it('reports every statement to every decorator attached, and none to one detached', async () => {
      const first = instrumented(inner)
      const second = instrumented(inner)
      try {
        await first.store.readValidator('a')
        first.store.detach()
        await second.store.readValidator('b')
        // through the store itself too: the statement is the store's, whoever asked
        await inner.readValidator('c')
        assert.deepEqual(
          first.reports.map((r) => r.operation),
          ['readValidator'],
        )
        assert.deepEqual(
          second.reports.map((r) => r.operation),
          ['readValidator', 'readValidator', 'readValidator'],
        )
      } finally {
        first.store.detach()
        second.store.detach()
      }
    })

    it('reports a failed statement as an error', async () => {
      const other = await database.openStore()
      const { store, reports } = instrumented(other)
      await other.close()
      await assert.rejects(store.readValidator('a'))
      await assert.rejects(store.readCollectionValidator())
      assert.deepEqual(
        reports.map((r) => [r.operation, r.outcome]),
        [
          ['readValidator', 'error'],
          ['readCollectionValidator', 'error'],
        ],
      )
    })
  })
}
