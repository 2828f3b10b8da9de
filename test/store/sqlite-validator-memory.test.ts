/**
 * The validators an exclusive SQLite store keeps in memory: a least-recently-used set of
 * REMEMBERED_VALIDATORS persons and the collection's, following committed writes in order.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { REMEMBERED_VALIDATORS, SqliteValidatorMemory } from '../../src/store/sqlite/sqlite-validator-memory.js'

const collection = (revision: number) => ({ revision, changedAt: 1_000 + revision, horizon: 0 })
const validator = (version: number) => ({ version, changedAt: 1_000 + version })

describe('SQLite validator memory', () => {
  describe('when new', () => {
    it('knows no person and no collection validator', () => {
      const memory = new SqliteValidatorMemory()
      assert.equal(memory.person('a'), undefined)
      assert.equal(memory.collection(), undefined)
    })
  })

  describe('following committed writes', () => {
    it('keeps what each wrote, forgets a deleted person, and keeps the last collection validator', () => {
      const memory = new SqliteValidatorMemory()
      memory.apply([
        { collection: collection(1), person: { id: 'a', validator: validator(1) } },
        { collection: collection(2), person: { id: 'b', validator: validator(2) } },
        { collection: collection(3), person: { id: 'a', validator: undefined } },
        { collection: { ...collection(3), horizon: 3 } },
      ])
      assert.equal(memory.person('a'), undefined)
      assert.deepEqual(memory.person('b'), validator(2))
      assert.deepEqual(memory.collection(), { ...collection(3), horizon: 3 })
    })
  })

  describe(`beyond ${REMEMBERED_VALIDATORS} persons`, () => {
    it('forgets the least recently used first, and keeps one that was just asked for', () => {
      assert.equal(REMEMBERED_VALIDATORS, 100_000)
      const memory = new SqliteValidatorMemory()
      for (let i = 0; i < REMEMBERED_VALIDATORS; i++) memory.rememberPerson(`p${i}`, validator(i))
      // p0 is used again, so p1 is now the least recently used
      assert.deepEqual(memory.person('p0'), validator(0))
      memory.rememberPerson('one-more', validator(REMEMBERED_VALIDATORS))
      assert.deepEqual(memory.person('p0'), validator(0))
      assert.equal(memory.person('p1'), undefined)
      assert.deepEqual(memory.person('p2'), validator(2))
      assert.deepEqual(memory.person('one-more'), validator(REMEMBERED_VALIDATORS))
    })
  })

  describe('once cleared', () => {
    it('knows nothing it knew before', () => {
      const memory = new SqliteValidatorMemory()
      memory.rememberPerson('a', validator(1))
      memory.rememberCollection(collection(1))
      memory.clear()
      assert.equal(memory.person('a'), undefined)
      assert.equal(memory.collection(), undefined)
    })
  })
})
