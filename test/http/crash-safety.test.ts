/**
 * SIGKILL while 4 clients write, on the real command: after a restart on the same data, every
 * write the server acknowledged (2xx) is there, nothing is half-written, and no ETag is reused.
 * Each client owns its persons and writes them one at a time, so for each person the final state
 * must be the last acknowledged one or the one attempted after it (which the kill may or may not
 * have let commit), never an older one.
 */
import { Agent, request as httpRequest } from 'node:http'
import { once } from 'node:events'
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import Database from 'better-sqlite3'
import { spawnServer } from '../helpers/spawn-server.js'
import { TEST_DRIVERS } from '../helpers/test-stores.js'

const WRITERS = 4
const WRITE_BEFORE_KILL_MS = 1500
const UPDATES_PER_PERSON = 6

/** A person's state after a write: its name, or null when deleted (or not yet created). */
type State = string | null

interface Attempt {
  readonly state: State
  /** The ETag the server acknowledged the write with; undefined until (unless) it answers 2xx. */
  etag?: string
  acknowledged: boolean
}

interface PersonLog {
  readonly id: string
  readonly attempts: Attempt[]
}

interface Answer {
  readonly status: number
  readonly etag: string | undefined
  readonly body: string
}

function send(agent: Agent, port: number, method: string, path: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent,
        headers: { ...headers, ...(body === undefined ? {} : { 'content-length': Buffer.byteLength(body) }) },
      },
      (res) => {
        let text = ''
        res.setEncoding('utf8').on('data', (chunk: string) => {
          text += chunk
        })
        res.on('end', () => resolve({ status: res.statusCode!, etag: res.headers.etag, body: text }))
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

/**
 * One writer: creates its persons one after another (POST), renames each several times (PUT and
 * PATCH with If-Match), and deletes every third one (DELETE with If-Match), until the server dies.
 */
async function writer(port: number, index: number, logs: PersonLog[]): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  try {
    for (let p = 0; ; p++) {
      const id = `w${index}-p${p}`
      const log: PersonLog = { id, attempts: [] }
      logs.push(log)
      let etag: string | undefined
      for (let step = 0; step <= UPDATES_PER_PERSON + 1; step++) {
        const deleting = step === UPDATES_PER_PERSON + 1
        if (deleting && p % 3 !== 0) break
        const name = `${id} v${step} ${'é'.repeat(step)}`
        const attempt: Attempt = { state: deleting ? null : name, acknowledged: false }
        log.attempts.push(attempt)
        let answer: Answer
        try {
          answer =
            step === 0
              ? await send(agent, port, 'POST', '/persons', {}, JSON.stringify({ person_id: id, person_name: name }))
              : deleting
                ? await send(agent, port, 'DELETE', `/persons/${id}`, { 'if-match': etag! })
                : await send(
                    agent,
                    port,
                    step % 2 === 0 ? 'PUT' : 'PATCH',
                    `/persons/${id}`,
                    { 'if-match': etag!, 'content-type': step % 2 === 0 ? 'application/json' : 'application/merge-patch+json' },
                    JSON.stringify({ person_name: name }),
                  )
        } catch {
          // the server is gone; this attempt may or may not have been committed
          return
        }
        // this writer is the only one writing this person: anything but success is a bug
        assert.ok(answer.status >= 200 && answer.status < 300, `${id} step ${step}: ${answer.status} ${answer.body}`)
        attempt.acknowledged = true
        if (answer.etag !== undefined) attempt.etag = answer.etag
        etag = answer.etag
      }
    }
  } finally {
    agent.destroy()
  }
}

for (const driver of TEST_DRIVERS) {
  describe(`${driver.name}: SIGKILL while ${WRITERS} clients write`, () => {
    it('loses no acknowledged write and leaves nothing half-written', async (t) => {
      const database = await driver.createDatabase()
      try {
        const server = await spawnServer(database.url)
        const port = Number(new URL(server.baseUrl).port)
        const logs: PersonLog[][] = Array.from({ length: WRITERS }, () => [])
        const writers = logs.map((log, i) => writer(port, i, log))
        await new Promise((resolve) => setTimeout(resolve, WRITE_BEFORE_KILL_MS))
        server.child.kill('SIGKILL')
        await once(server.child, 'exit')
        await Promise.all(writers)

        const persons = logs.flat()
        const acknowledged = persons.flatMap((p) => p.attempts).filter((a) => a.acknowledged).length
        assert.ok(acknowledged > 40, `the writers got going (${acknowledged} acknowledged writes)`)
        t.diagnostic(`${acknowledged} writes acknowledged to ${persons.length} persons before SIGKILL`)

        const restarted = await spawnServer(database.url)
        try {
          const base = restarted.baseUrl
          for (const person of persons) {
            const response = await fetch(`${base}/persons/${person.id}`)
            const stored: State = response.status === 404 ? null : ((await response.json()) as { person_name: string }).person_name
            if (response.status === 404) await response.arrayBuffer()
            else assert.equal(response.status, 200)
            const lastAcknowledged = person.attempts.findLastIndex((a) => a.acknowledged)
            // the states it may be in: the last acknowledged one, or any attempted after it
            const allowed: State[] = lastAcknowledged === -1 ? [null] : []
            for (let i = Math.max(lastAcknowledged, 0); i < person.attempts.length; i++) allowed.push(person.attempts[i]!.state)
            assert.ok(allowed.includes(stored), `${person.id}: stored ${JSON.stringify(stored)}, allowed ${JSON.stringify(allowed)}`)

            // the validator survived with the data: the acknowledged ETag names exactly the stored state
            const last = person.attempts[lastAcknowledged]
            if (last !== undefined && last.state !== null && stored !== null) {
              const revalidated = await fetch(`${base}/persons/${person.id}`, { headers: { 'if-none-match': last.etag! } })
              await revalidated.arrayBuffer()
              assert.equal(revalidated.status, stored === last.state ? 304 : 200, `${person.id}: ETag ${last.etag} after the restart`)
            }
          }

          // nothing half-written: the collection holds exactly the persons GET finds, each whole
          // (every page of it: a fast server gets well past 1,000 persons before the kill)
          const listed: { person_id: string; person_name: string; change_date: string }[] = []
          for (let next: string | undefined = '/persons?limit=1000'; next !== undefined; ) {
            const page = await fetch(`${base}${next}`)
            assert.equal(page.status, 200)
            listed.push(...((await page.json()) as typeof listed))
            next = /^<([^>]+)>; rel="next"$/.exec(page.headers.get('link') ?? '')?.[1]
          }
          const present = new Set<string>()
          for (const person of persons) {
            const response = await fetch(`${base}/persons/${person.id}`, { method: 'HEAD' })
            if (response.status === 200) present.add(person.id)
          }
          assert.deepEqual(listed.map((p) => p.person_id).sort(), [...present].sort())
          for (const p of listed) {
            assert.match(p.change_date, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
            assert.ok(p.person_name.startsWith(`${p.person_id} v`), `${p.person_id} has a name it was given: ${p.person_name}`)
          }

          // no ETag handed out before the crash is reused by a write after it
          const before = new Set(
            persons
              .flatMap((p) => p.attempts)
              .map((a) => a.etag)
              .filter((e) => e !== undefined),
          )
          const fresh = await fetch(`${base}/persons`, { method: 'POST', body: '{"person_id":"after-crash","person_name":"New"}' })
          await fresh.arrayBuffer()
          assert.equal(fresh.status, 201)
          assert.ok(!before.has(fresh.headers.get('etag')!), 'a write after the restart gets an ETag never used before')
        } finally {
          assert.equal(await restarted.stop(), 0)
        }

        if (driver.name === 'sqlite') {
          const db = new Database(database.url.slice('sqlite:'.length), { readonly: true })
          try {
            assert.equal(db.pragma('integrity_check', { simple: true }), 'ok')
          } finally {
            db.close()
          }
        }
      } finally {
        await database.cleanup()
      }
    })
  })
}
