/**
 * What the server's insides look like when they show in an answer (API.md, Errors: no error ever
 * exposes a stack trace, an SQL text or a file path), and the one check every suite makes with it.
 */
import assert from 'node:assert/strict'

/**
 * One pattern a leak shows. The list is the union of what the suites checked before they shared
 * it; overlapping patterns are kept apart on purpose, so that a request carrying the text of a
 * broad one (and so excusing it) still has the narrower ones checked.
 */
export const LEAK_PATTERNS: readonly RegExp[] = [
  // a stack trace
  /\n\s+at /,
  /\n\s+at \S/,
  /\bat \S+ \(/,
  /\bat .*:\d+:\d+/,
  /\(\S+:\d+:\d+\)/,
  /\b(TypeError|RangeError|ReferenceError|SyntaxError|SqliteError|DatabaseError)\b/,
  // SQL and the drivers' own words
  /\b(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM|SQLITE_[A-Z]+)\b/,
  /\b(SELECT|INSERT|UPDATE|DELETE)\b.*\b(FROM|INTO|SET|WHERE)\b/,
  /\bSELECT\b/,
  /\bINSERT INTO\b/,
  /sqlite/i,
  /syntax error/i,
  /postgres|pg_|SQLSTATE/i,
  /SQLSTATE|pg_catalog/i,
  // a file path or a source file
  /\/(work|home|tmp|usr|var|srv|opt)\//,
  /\/work\//,
  /\/tmp\//,
  /node_modules/,
  /\.[cm]?[jt]s:\d+/,
]

/**
 * What a leak looks like in an error only: the name of a source file. The web page the service
 * serves names its own script (`<script src="app.js">`), on purpose.
 */
export const ERROR_LEAK_PATTERNS: readonly RegExp[] = [/\.[cm]?[jt]s\b/]

/**
 * Asserts that `text` (an answer's body, or its headers and body) shows none of LEAK_PATTERNS,
 * nor, unless `answer` is `'any'` (a success, which may be the web page), ERROR_LEAK_PATTERNS.
 * A pattern that matches one of `carried` (what the request itself sent: its path, header values,
 * body) is not checked: a 404 echoes the id it was asked for, and generated input may well say
 * "SELECT".
 *
 * @example assertNoLeak(res.body, `GET ${path}`, [path, decodedOrAsIs(path)])
 */
export function assertNoLeak(text: string, what: string, carried: readonly string[] = [], answer: 'error' | 'any' = 'error'): void {
  const patterns = answer === 'error' ? [...LEAK_PATTERNS, ...ERROR_LEAK_PATTERNS] : LEAK_PATTERNS
  for (const pattern of patterns) {
    if (carried.some((input) => pattern.test(input))) continue
    assert.doesNotMatch(text, pattern, `${what} shows the server's insides (${pattern})`)
  }
}

/** `text` percent-decoded, or as it is when it does not decode: a request path as the server may echo it. */
export function decodedOrAsIs(text: string): string {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}
