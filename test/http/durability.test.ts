/**
 * The SQLite driver acknowledges a write only once its transaction has committed to the WAL
 * (synchronous=NORMAL by default, writes committed in groups): every acknowledged write must
 * survive a kill of the process. Writers update their own persons as fast as they can; the server
 * is killed with SIGKILL mid-stream and started again on the same file.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawnServer } from '../helpers/spawn-server.js'
import { TEST_DRIVERS, type TestDatabase } from '../helpers/test-stores.js'

const WRITERS = 8
// only to turn a hang into a failure, never to judge speed
const REQUEST_TIMEOUT_MS = 15_000
const WRITE_FOR_MS = 400

const sqlite = TEST_DRIVERS.find((driver) => driver.name === 'sqlite')!

async function put(baseUrl: string, id: string, name: string, ifMatch: string): Promise<Response> {
  return fetch(`${baseUrl}/persons/${id}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', 'if-match': ifMatch },
    body: JSON.stringify({ person_name: name }),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  })
}

describe('SQLite, a server killed with SIGKILL while writes stream in', () => {
  let database: TestDatabase
  before(async () => {
    database = await sqlite.createDatabase()
  })
  after(async () => {
    await database.cleanup()
  })

  it('keeps every acknowledged write after a restart', async () => {
    const server = await spawnServer(database.url)
    const ids = Array.from({ length: WRITERS }, (_, i) => `writer-${i}`)
    // the last name each writer had acknowledged, and the one it had in flight when the kill came
    const acknowledged = new Map<string, number>()
    const inFlight = new Map<string, number>()
    for (const id of ids) {
      const response = await fetch(`${server.baseUrl}/persons`, {
        method: 'POST',
        body: JSON.stringify({ person_id: id, person_name: `${id} 0` }),
      })
      assert.equal(response.status, 201)
      acknowledged.set(id, 0)
    }
    let killed = false
    const writers = ids.map(async (id) => {
      let etag = (await fetch(`${server.baseUrl}/persons/${id}`)).headers.get('etag')!
      for (let n = 1; !killed; n++) {
        inFlight.set(id, n)
        let response: Response
        try {
          response = await put(server.baseUrl, id, `${id} ${n}`, etag)
        } catch {
          return // the connection died with the process
        }
        // a 200 is an acknowledgement, even one that arrives while the kill is on its way
        assert.equal(response.status, 200)
        etag = response.headers.get('etag')!
        acknowledged.set(id, n)
      }
    })
    await new Promise((resolve) => setTimeout(resolve, WRITE_FOR_MS))
    killed = true
    await server.stop('SIGKILL')
    await Promise.all(writers)
    assert.ok(
      [...acknowledged.values()].some((n) => n > 0),
      'no write was acknowledged before the kill',
    )

    const restarted = await spawnServer(database.url)
    try {
      for (const id of ids) {
        const response = await fetch(`${restarted.baseUrl}/persons/${id}`)
        const person = (await response.json()) as { person_name: string }
        const stored = Number(person.person_name.split(' ')[1])
        // the write in flight may or may not have landed; every one before it must have
        assert.ok(
          stored === acknowledged.get(id) || stored === inFlight.get(id),
          `${id}: stored write ${stored}, last acknowledged ${acknowledged.get(id)}, in flight ${inFlight.get(id)}`,
        )
      }
    } finally {
      await restarted.stop()
    }
  })
})
