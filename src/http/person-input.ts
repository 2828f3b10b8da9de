/**
 * Reading and checking request bodies and ids against API.md's field rules. Every function
 * returns a value or a Problem; none throws on bad input.
 */
import { Problem, problems } from './problems.js'

/**
 * API.md: 1–64 characters of `A–Z a–z 0–9 . _ ~ -` (RFC 3986 unreserved characters). The route
 * schemas (and so the OpenAPI document) use this same source text.
 */
export const PERSON_ID_PATTERN = '^[A-Za-z0-9._~-]{1,64}$'
/** The id rule in words, as problems and the OpenAPI document state it. */
export const PERSON_ID_RULE = 'must be 1–64 characters of A–Z a–z 0–9 . _ ~ -'
/** API.md: a person_name is at most this many Unicode code points (JSON Schema's maxLength counts the same). */
export const MAX_NAME_CODE_POINTS = 200
const PERSON_ID = new RegExp(PERSON_ID_PATTERN)
// API.md: no control characters U+0000–U+001F, U+007F
const CONTROL_CHARACTER = /[\u0000-\u001F\u007F]/
// a lone surrogate is not a Unicode scalar value and cannot be stored as UTF-8 without loss
const LONE_SURROGATE = /\p{Cs}/u
const ONLY_WHITE_SPACE = /^\s*$/u

/** True when `id` may name a person. */
export function isValidPersonId(id: string): boolean {
  return PERSON_ID.test(id)
}

function countCodePoints(text: string): number {
  let count = 0
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    // a high surrogate followed by a low one is one code point
    if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1)
      if (next >= 0xdc00 && next <= 0xdfff) i++
    }
    count++
  }
  return count
}

/**
 * Parses a raw request body as a JSON object, whatever its Content-Type said (API.md: the seed's
 * `curl --data` sends a form content type).
 */
export function parseJsonObject(raw: string | undefined): Record<string, unknown> | Problem {
  if (raw === undefined || raw.trim() === '') return problems.missingBody()
  let value: unknown
  try {
    value = JSON.parse(raw)
  } catch {
    return problems.invalidJson()
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return problems.notAnObject()
  return value as Record<string, unknown>
}

/** The member's value when the object has it as its own property, else undefined. */
export function member(body: Record<string, unknown>, name: string): unknown {
  return Object.hasOwn(body, name) ? body[name] : undefined
}

/** Checks a `person_id` member for create: present, a string, and within the id rule. */
export function checkPersonId(value: unknown): string | Problem {
  if (value === undefined || value === null || value === '') return problems.personIdMandatory()
  if (typeof value !== 'string') return problems.invalidField('person_id', 'must be a string')
  if (!isValidPersonId(value)) {
    return problems.invalidField('person_id', PERSON_ID_RULE)
  }
  return value
}

/** Checks a `person_name` member: present, a string, 1–200 code points, printable, not blank. */
export function checkPersonName(value: unknown): string | Problem {
  if (value === undefined || value === null || value === '') return problems.personNameMandatory()
  if (typeof value !== 'string') return problems.invalidField('person_name', 'must be a string')
  if (countCodePoints(value) > MAX_NAME_CODE_POINTS) {
    return problems.invalidField('person_name', `must be at most ${MAX_NAME_CODE_POINTS} Unicode code points`)
  }
  if (CONTROL_CHARACTER.test(value)) {
    return problems.invalidField('person_name', 'must not contain control characters (U+0000–U+001F, U+007F)')
  }
  if (LONE_SURROGATE.test(value)) {
    return problems.invalidField('person_name', 'must be valid Unicode (it holds a lone surrogate)')
  }
  if (ONLY_WHITE_SPACE.test(value)) return problems.invalidField('person_name', 'must not be only white space')
  return value
}

/**
 * A `person_id` member in a PUT or PATCH body may repeat the id in the URL, nothing else:
 * the id of a person never changes.
 */
export function checkBodyIdMatches(body: Record<string, unknown>, id: string): Problem | undefined {
  const value = member(body, 'person_id')
  if (value === undefined) return undefined
  if (typeof value !== 'string') return problems.invalidField('person_id', 'must be a string')
  if (value !== id) return problems.invalidField('person_id', `must match the ID in the URL (${id}); an ID cannot be changed`)
  return undefined
}

/**
 * Reads a PUT body: a JSON object with a valid `person_name` and, if any, the URL's `person_id`.
 * A PUT that creates (If-None-Match: *) must also name a valid person.
 */
export function readReplacement(raw: string | undefined, id: string): string | Problem {
  const body = parseJsonObject(raw)
  if (body instanceof Problem) return body
  const idProblem = checkBodyIdMatches(body, id)
  if (idProblem !== undefined) return idProblem
  if (!isValidPersonId(id)) return problems.invalidField('person_id', PERSON_ID_RULE)
  return checkPersonName(member(body, 'person_name'))
}

/** RFC 7396's media type. */
export const MERGE_PATCH = 'application/merge-patch+json'

/** What a merge patch of a person changes: only `person_name` can. */
export interface MergePatch {
  readonly name?: string
}

/**
 * Reads an RFC 7396 merge patch for a person from its media type and raw body. API.md parses
 * bodies as JSON whatever their Content-Type says (curl --data sends a form type, fetch sends
 * text/plain for a string), so it is read as a merge patch unless its type names another patch
 * format, such as application/json-patch+json (RFC 6902), which means something else: RFC 5789
 * §2.2 answers that with 415.
 */
export function readMergePatch(mediaType: string | undefined, raw: string | undefined, id: string): MergePatch | Problem {
  if (mediaType !== undefined && mediaType !== MERGE_PATCH && mediaType.includes('patch')) return problems.unsupportedPatchType(mediaType)
  const body = parseJsonObject(raw)
  if (body instanceof Problem) return body
  const idProblem = checkBodyIdMatches(body, id)
  if (idProblem !== undefined) return idProblem
  if (!Object.hasOwn(body, 'person_name')) return {}
  // RFC 7396: null removes a member, but person_name is mandatory
  if (body.person_name === null) return problems.invalidField('person_name', 'is mandatory and cannot be removed (null)')
  const name = checkPersonName(body.person_name)
  return name instanceof Problem ? name : { name }
}
