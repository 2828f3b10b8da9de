/**
 * GatheredReads (src/store/postgres/gathered-reads.ts): reads asked together share a statement,
 * and a read never gets its answer from a statement that was already sent when it asked, which is
 * what keeps a gathered read linearizable. The statements here are a function that records what it
 * was asked and answers when the test says; the driver's own use of it, against a real
 * PostgreSQL, is tested with the other store tests (test/store/person-store.test.ts).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { GatheredReads } from '../../src/store/postgres/gathered-reads.js'

interface Statement {
  readonly keys: readonly string[]
  answer(found: Record<string, number>): void
  fail(error: Error): void
}

/** A GatheredReads whose statements wait for the test to answer them. */
function gathered(maxInFlight: number, maxKeys = 100): { reads: GatheredReads<string, number>; statements: Statement[] } {
  const statements: Statement[] = []
  const reads = new GatheredReads<string, number>(
    (keys) =>
      new Promise((resolve, reject) => {
        statements.push({ keys: [...keys], answer: (found) => resolve(new Map(Object.entries(found))), fail: reject })
      }),
    { maxInFlight, maxKeys },
  )
  return { reads, statements }
}

describe('GatheredReads', () => {
  it('asks the keys of one turn of the event loop in one statement, each key once', async () => {
    const { reads, statements } = gathered(2)
    const asked = [reads.read('a'), reads.read('b'), reads.read('a'), reads.read('c')]
    await nextTurn()

    assert.equal(statements.length, 1)
    assert.deepEqual(statements[0]!.keys, ['a', 'b', 'c'])
    statements[0]!.answer({ a: 1, b: 2 })
    assert.deepEqual(await Promise.all(asked), [1, 2, 1, undefined])
  })

  it('never answers a read from a statement that was in flight when it asked', async () => {
    const { reads, statements } = gathered(1)
    const early = reads.read('a')
    await nextTurn()
    assert.equal(statements.length, 1)

    // asked while the first statement runs: it must wait for a statement of its own
    const late = reads.read('a')
    await nextTurn()
    assert.equal(statements.length, 1, 'no second statement while the only slot is busy')
    statements[0]!.answer({ a: 1 })
    assert.equal(await early, 1)

    await nextTurn()
    assert.equal(statements.length, 2, 'the late read went in a statement sent after the first came back')
    assert.deepEqual(statements[1]!.keys, ['a'])
    statements[1]!.answer({ a: 2 })
    assert.equal(await late, 2)
  })

  it('sends reads at once while a slot is free, and gathers the rest while all are busy', async () => {
    const { reads, statements } = gathered(2)
    const first = reads.read('a')
    await nextTurn()
    const second = reads.read('b')
    await nextTurn()
    assert.equal(statements.length, 2)

    const waiting = ['c', 'd', 'e'].map((key) => reads.read(key))
    await nextTurn()
    assert.equal(statements.length, 2, 'both slots busy: nothing sent')
    statements[1]!.answer({ b: 2 })
    assert.equal(await second, 2)
    await nextTurn()
    assert.equal(statements.length, 3)
    assert.deepEqual(statements[2]!.keys, ['c', 'd', 'e'])
    statements[2]!.answer({ c: 3, d: 4, e: 5 })
    assert.deepEqual(await Promise.all(waiting), [3, 4, 5])
    statements[0]!.answer({ a: 1 })
    assert.equal(await first, 1)
  })

  it('splits more keys than one statement takes over several, as slots allow', async () => {
    const { reads, statements } = gathered(2, 3)
    const asked = ['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((key) => reads.read(key))
    await nextTurn()
    await nextTurn()
    assert.deepEqual(
      statements.map((s) => s.keys),
      [
        ['a', 'b', 'c'],
        ['d', 'e', 'f'],
      ],
    )
    statements[0]!.answer({ a: 1, b: 2, c: 3 })
    statements[1]!.answer({ d: 4, e: 5, f: 6 })
    await nextTurn()
    await nextTurn()
    assert.deepEqual(statements[2]!.keys, ['g'])
    statements[2]!.answer({ g: 7 })
    assert.deepEqual(await Promise.all(asked), [1, 2, 3, 4, 5, 6, 7])
  })

  it('rejects the reads of a failed statement with its error, and goes on with later ones', async () => {
    const { reads, statements } = gathered(1)
    const failed = [reads.read('a'), reads.read('b')]
    await nextTurn()
    const later = reads.read('a')
    const unavailable = new Error('the database is unavailable')
    statements[0]!.fail(unavailable)
    for (const read of failed) await assert.rejects(read, (error) => error === unavailable)

    await nextTurn()
    assert.equal(statements.length, 2)
    statements[1]!.answer({ a: 1 })
    assert.equal(await later, 1)
  })

  it('tells its observers of each statement once, after its reads have their answers, and stops when asked', async () => {
    const { reads, statements } = gathered(2)
    const told: string[] = []
    const stop = reads.observe((outcome, seconds) => {
      assert.ok(seconds >= 0 && seconds < 10)
      told.push(outcome)
    })
    const answered: string[] = []
    const first = [reads.read('a'), reads.read('b')].map((read) => read.then(() => answered.push('read')))
    await nextTurn()
    assert.deepEqual(told, [], 'nothing told before the statement finishes')
    statements[0]!.answer({ a: 1 })
    await Promise.all(first)
    assert.deepEqual(told, ['ok'], 'one statement, told once for its two reads')

    const failed = reads.read('c')
    await nextTurn()
    statements[1]!.fail(new Error('the database is unavailable'))
    await assert.rejects(failed)
    assert.deepEqual(told, ['ok', 'error'])

    stop()
    const unobserved = reads.read('a')
    await nextTurn()
    statements[2]!.answer({ a: 1 })
    assert.equal(await unobserved, 1)
    assert.deepEqual(told, ['ok', 'error'], 'not told once stopped')
    assert.deepEqual(answered, ['read', 'read'])
  })
})
