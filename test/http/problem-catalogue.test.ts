/**
 * The problem catalogue is one table: every answer's type, the /problems/{slug} pages and the
 * table in docs/http-api.md come from it.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, describe, it } from 'node:test'
import { PROBLEM_TYPES, problems, type ProblemSlug } from '../../src/http/problems.js'
import { PROBLEM_TABLE_FILE, withProblemTable } from '../../scripts/write-problem-table.js'
import { startServer, type RunningServer } from '../helpers/start-server.js'

describe('the problem catalogue', () => {
  it('is the table docs/http-api.md shows (npm run docs:problems writes it)', () => {
    const docs = readFileSync(PROBLEM_TABLE_FILE, 'utf8')
    assert.equal(withProblemTable(docs), docs)
  })

  it('gives every problem the status and title of its type', () => {
    const made = [
      problems.missingBody(),
      problems.invalidJson(),
      problems.notAnObject(),
      problems.personIdMandatory(),
      problems.personNameMandatory(),
      problems.invalidField('f', 'r'),
      problems.invalidQuery('q', 'r'),
      problems.badRequest('d'),
      problems.missingToken(),
      problems.invalidToken(),
      problems.personNotFound('1'),
      problems.routeNotFound('GET', '/x'),
      problems.methodNotAllowed('PUT', ['GET']),
      problems.changesGone('why'),
      problems.personExists('1'),
      problems.staleIfMatch(),
      problems.weakIfMatch(),
      problems.modifiedSince(),
      problems.personAlreadyExistsForCreate('1'),
      problems.noneMatchFailed(),
      problems.bodyTooLarge(),
      problems.requestTimeout(),
      problems.expectationFailed(),
      problems.unsupportedPatchType('x'),
      problems.preconditionRequired('PUT'),
      problems.storeUnavailable(),
      problems.notReady(),
      problems.writeContention(),
      problems.internal(),
    ]
    for (const problem of made) {
      const type = PROBLEM_TYPES[problem.slug as ProblemSlug]
      assert.ok(type !== undefined, `${problem.slug} is not in the catalogue`)
      assert.equal(problem.status, type.status, problem.slug)
      assert.equal(problem.title, type.title, problem.slug)
    }
    // every type in the catalogue is answered by something
    assert.deepEqual(new Set(made.map((p) => p.slug).concat('client-error')), new Set(Object.keys(PROBLEM_TYPES)))
  })

  describe('GET /problems/{slug}', () => {
    let server: RunningServer
    before(async () => {
      server = await startServer()
    })
    after(async () => {
      await server.close()
    })

    it('answers every slug with its meaning in plain text, without Markdown', async () => {
      for (const [slug, type] of Object.entries(PROBLEM_TYPES)) {
        const response = await fetch(`${server.baseUrl}/problems/${slug}`)
        assert.equal(response.status, 200)
        assert.equal(await response.text(), `${slug}: ${type.meaning.replaceAll('`', '')}\n`)
      }
    })

    it('answers an unknown slug with a 404 problem', async () => {
      const response = await fetch(`${server.baseUrl}/problems/no-such-thing`)
      assert.equal(response.status, 404)
      assert.equal(response.headers.get('content-type'), 'application/problem+json; charset=utf-8')
    })
  })
})
