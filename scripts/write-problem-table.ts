/**
 * Writes the problem types table of docs/http-api.md from the catalogue in src/http/problems.ts
 * (`npm run docs:problems`); test/http/problem-catalogue.test.ts fails while the two differ.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { problemTypesTable } from '../src/http/problems.js'

/** The docs file and the markers around its table. */
export const PROBLEM_TABLE_FILE = new URL('../docs/http-api.md', import.meta.url)
const START = /<!-- problem-types:[^>]*-->\n/
const END = '\n<!-- /problem-types -->'

/** `markdown` with the text between the markers replaced by the catalogue's table. */
export function withProblemTable(markdown: string): string {
  const start = START.exec(markdown)
  const end = markdown.indexOf(END)
  if (start === null || end === -1) throw new Error('docs/http-api.md has lost its problem-types markers')
  return markdown.slice(0, start.index + start[0].length) + problemTypesTable() + markdown.slice(end)
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  writeFileSync(PROBLEM_TABLE_FILE, withProblemTable(readFileSync(PROBLEM_TABLE_FILE, 'utf8')))
}
