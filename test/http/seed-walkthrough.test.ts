/**
 * The seed README's curl examples, run with the real curl binary against a real server, verbatim
 * apart from host:port; then the mid-air collision walk of seed-walkthrough.sh, and that script
 * itself: the project's shared copy beside the repository when there is one (it is the newest),
 * and always the copy kept in test/fixtures/ so that a plain clone runs it too.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { startServer, type RunningServer } from '../helpers/start-server.js'
import { STALE } from '../helpers/stale-problem.js'
import { TEST_DRIVERS } from '../helpers/test-stores.js'

const CURL = '/usr/bin/curl'
const WALKTHROUGH_SCRIPTS = [
  fileURLToPath(new URL('../fixtures/seed-walkthrough.sh', import.meta.url)),
  fileURLToPath(new URL('../../../shared/seed-walkthrough.sh', import.meta.url)),
].filter((path) => existsSync(path))
const STRONG_ETAG = /^"[\x21\x23-\x7e]+"$/
const CHANGE_DATE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/
const PROBLEM_JSON = /^application\/problem\+json(\s*;|$)/

interface Exit {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

interface CurlResponse {
  readonly status: number
  readonly headers: ReadonlyMap<string, string>
  readonly body: string
}

/** Runs a program to its end; a non-zero exit is a value, not an exception. */
function run(file: string, args: readonly string[]): Promise<Exit> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 20_000 }, (error, stdout, stderr) => {
      if (error === null) return resolve({ code: 0, stdout, stderr })
      if (typeof error.code === 'number') return resolve({ code: error.code, stdout, stderr })
      return reject(error)
    })
  })
}

/** Splits what `curl --include` prints into status, headers (lower-case names) and body. */
function parseIncluded(output: string): CurlResponse {
  const end = output.indexOf('\r\n\r\n')
  const head = end === -1 ? output : output.slice(0, end)
  const body = end === -1 ? '' : output.slice(end + 4)
  const [statusLine = '', ...lines] = head.split('\r\n')
  const headers = new Map<string, string>()
  for (const line of lines) {
    const colon = line.indexOf(':')
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim())
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body }
}

async function curl(args: readonly string[]): Promise<CurlResponse> {
  const exit = await run(CURL, args)
  assert.equal(exit.code, 0, `curl failed: ${exit.stderr}`)
  return parseIncluded(exit.stdout)
}

function unquoted(etag: string): string {
  return etag.replace(/^W\//, '').replace(/^"/, '').replace(/"$/, '')
}

function header(response: CurlResponse, name: string): string {
  const value = response.headers.get(name)
  assert.ok(value !== undefined, `no ${name} header`)
  return value
}

for (const driver of TEST_DRIVERS) {
  describe(driver.name, () => {
    let server: RunningServer
    // the seed's "localhost:5000", pointed at this test's server
    let host: string

    before(async () => {
      server = await startServer({ driver })
      host = `127.0.0.1:${new URL(server.baseUrl).port}`
    })
    after(async () => {
      await server.close()
    })

    describe('the seed README, caching of unchanged resources', () => {
      let createdEtag: string | undefined
      let createdBody: string | undefined

      it('answers the create with curl --data (a form content type) 201 and an ETag', async () => {
        const response = await curl(['--request', 'POST', '--include', `${host}/persons`, '--data', '{"person_id": "1", "person_name": "Wim"}'])
        assert.equal(response.status, 201)
        createdEtag = header(response, 'etag')
        assert.match(createdEtag, STRONG_ETAG)
        assert.match(header(response, 'content-type'), /^application\/json(\s*;|$)/)
        const person = JSON.parse(response.body) as Record<string, unknown>
        assert.deepEqual(Object.keys(person).sort(), ['change_date', 'person_id', 'person_name'])
        assert.equal(person.person_id, '1')
        assert.equal(person.person_name, 'Wim')
        assert.match(String(person.change_date), CHANGE_DATE)
        createdBody = response.body
      })

      it('answers the GET without an ETag 200 with the same ETag and the complete person', async () => {
        assert.ok(createdEtag !== undefined && createdBody !== undefined, 'the create step did not run')
        const response = await curl(['--request', 'GET', '--include', `${host}/persons/1`])
        assert.equal(response.status, 200)
        assert.equal(header(response, 'etag'), createdEtag)
        assert.deepEqual(JSON.parse(response.body), JSON.parse(createdBody))
      })

      it('answers the GET with the ETag unquoted in If-None-Match 304, with no body', async () => {
        assert.ok(createdEtag !== undefined, 'the create step did not run')
        const response = await curl(['--request', 'GET', '--include', `${host}/persons/1`, '--header', `If-None-Match:${unquoted(createdEtag)}`])
        assert.equal(response.status, 304)
        assert.equal(response.body, '')
        assert.equal(header(response, 'etag'), createdEtag)
      })

      it('really sends a form content type with curl --data, and the server still reads JSON', async () => {
        const exit = await run(CURL, [
          '--verbose',
          '--request',
          'POST',
          '--include',
          `${host}/persons`,
          '--data',
          '{"person_id": "form", "person_name": "Wim"}',
        ])
        assert.equal(exit.code, 0)
        assert.match(exit.stderr, /^> Content-Type: application\/x-www-form-urlencoded\r?$/im)
        assert.equal(parseIncluded(exit.stdout).status, 201)
      })
    })

    describe('the mid-air collision walk of seed-walkthrough.sh', () => {
      let e0: string | undefined
      let e1: string | undefined

      before(async () => {
        const response = await curl(['--request', 'POST', '--include', `${host}/persons`, '--data', '{"person_id": "2", "person_name": "Wim"}'])
        assert.equal(response.status, 201)
        e0 = unquoted(header(response, 'etag'))
      })

      it('answers a PUT with the current ETag unquoted in If-Match 200 and a new ETag', async () => {
        assert.ok(e0 !== undefined)
        const response = await curl([
          '--request',
          'PUT',
          '--include',
          `${host}/persons/2`,
          '--data',
          '{"person_name": "Wim - update 1"}',
          '--header',
          `If-Match:${e0}`,
        ])
        assert.equal(response.status, 200)
        e1 = unquoted(header(response, 'etag'))
        assert.notEqual(e1, e0)
        assert.equal((JSON.parse(response.body) as Record<string, unknown>).person_name, 'Wim - update 1')
      })

      it('answers a PUT with the stale ETag 412 with the seed message, and keeps update 1', async () => {
        assert.ok(e0 !== undefined && e1 !== undefined, 'the first PUT did not run')
        const response = await curl([
          '--request',
          'PUT',
          '--include',
          `${host}/persons/2`,
          '--data',
          '{"person_name": "Wim - update 2"}',
          '--header',
          `If-Match:${e0}`,
        ])
        assert.equal(response.status, 412)
        assert.match(header(response, 'content-type'), PROBLEM_JSON)
        assert.deepEqual(JSON.parse(response.body), {
          type: '/problems/precondition-failed',
          title: 'Precondition Failed',
          status: 412,
          detail: STALE,
          message: STALE,
        })
        const current = await curl(['--request', 'GET', '--include', `${host}/persons/2`])
        assert.equal(unquoted(header(current, 'etag')), e1)
        assert.equal((JSON.parse(current.body) as Record<string, unknown>).person_name, 'Wim - update 1')
      })

      it('answers a PUT without If-Match 428, and keeps update 1', async () => {
        assert.ok(e1 !== undefined, 'the first PUT did not run')
        const response = await curl(['--request', 'PUT', '--include', `${host}/persons/2`, '--data', '{"person_name": "Wim - update 2"}'])
        assert.equal(response.status, 428)
        assert.match(header(response, 'content-type'), PROBLEM_JSON)
        const detail =
          "PUT needs an If-Match header with the person's current ETag" + ' (or If-None-Match: * to create a new person); GET the person first to learn it'
        assert.deepEqual(JSON.parse(response.body), {
          type: '/problems/precondition-required',
          title: 'Precondition Required',
          status: 428,
          detail,
          message: detail,
        })
        const current = await curl(['--request', 'GET', '--include', `${host}/persons/2`])
        assert.equal(unquoted(header(current, 'etag')), e1)
      })

      it('answers a PUT with the newest ETag 200 with the new name', async () => {
        const current = await curl(['--request', 'GET', '--include', `${host}/persons/2`])
        const e2 = unquoted(header(current, 'etag'))
        assert.equal(e2, e1)
        const response = await curl([
          '--request',
          'PUT',
          '--include',
          `${host}/persons/2`,
          '--data',
          '{"person_name": "Wim - update 2"}',
          '--header',
          `If-Match:${e2}`,
        ])
        assert.equal(response.status, 200)
        assert.equal((JSON.parse(response.body) as Record<string, unknown>).person_name, 'Wim - update 2')
        assert.notEqual(unquoted(header(response, 'etag')), e2)
      })
    })

    describe('seed-walkthrough.sh run against the server', () => {
      for (const script of WALKTHROUGH_SCRIPTS) {
        it(`exits 0 after every step holds (${script})`, async () => {
          const exit = await run('/usr/bin/env', ['bash', script, server.baseUrl])
          assert.equal(exit.code, 0, `the walkthrough failed:\n${exit.stdout}${exit.stderr}`)
          assert.doesNotMatch(exit.stdout, /FAIL/)
          assert.match(exit.stdout, /ok {2}PUT If-Match newest -> 200: the seed walkthrough holds/)
        })
      }
    })
  })
}
