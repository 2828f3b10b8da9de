/**
 * Entity tags (RFC 9110 §8.8.3): parsing of the `If-Match` / `If-None-Match` field values,
 * formatting of the `ETag` field value, and strong and weak comparison (§8.8.3.2).
 */

/** One entity tag: its opaque value (without the quotes) and whether it is weak. */
export interface EntityTag {
  readonly weak: boolean
  readonly opaque: string
}

/**
 * A parsed `If-Match` or `If-None-Match` field value.
 * `any` is the `*` form; `tags` are the members that parsed; `malformed` says that at least one
 * member did not parse (or the field was empty), so a strict reader can refuse the whole field.
 */
export interface EntityTagList {
  readonly any: boolean
  readonly tags: readonly EntityTag[]
  readonly malformed: boolean
}

/**
 * The most members a list may hold before the rest is ignored and the list counts as malformed.
 * Node already caps all request headers at 16 KiB; this bounds the work per field further.
 */
export const MAX_LIST_MEMBERS = 64

const DQUOTE = 0x22
const COMMA = 0x2c

// RFC 9110 §8.8.3: etagc = %x21 / %x23-7E / obs-text (obs-text = %x80-FF)
function isEtagChar(code: number): boolean {
  return code === 0x21 || (code >= 0x23 && code <= 0x7e) || (code >= 0x80 && code <= 0xff)
}

function isOws(code: number): boolean {
  return code === 0x20 || code === 0x09
}

/** Strips optional white space (RFC 9110 §5.6.3: SP and HTAB, nothing else) from both ends. */
export function trimOws(value: string): string {
  let start = 0
  let end = value.length
  while (start < end && isOws(value.charCodeAt(start))) start++
  while (end > start && isOws(value.charCodeAt(end - 1))) end--
  return value.slice(start, end)
}

/**
 * Parses one list member: `"x"`, `W/"x"`, and (leniently, as the seed's curl examples send them)
 * unquoted `x` or `W/x`. Returns undefined when the member is not an entity tag.
 */
export function parseEntityTag(member: string): EntityTag | undefined {
  let start = 0
  let weak = false
  if (member.startsWith('W/')) {
    weak = true
    start = 2
  }
  let end = member.length
  const quoted = member.charCodeAt(start) === DQUOTE
  if (quoted) {
    if (end - start < 2 || member.charCodeAt(end - 1) !== DQUOTE) return undefined
    start += 1
    end -= 1
  } else if (end === start) {
    return undefined
  }
  for (let i = start; i < end; i++) {
    const code = member.charCodeAt(i)
    // a quote inside the value, or a comma in an unquoted tag, means the member is broken
    if (!isEtagChar(code) || code === DQUOTE) return undefined
    // the unquoted form is a leniency for hand-typed headers: visible ASCII only, no comma
    if (!quoted && (code === COMMA || code > 0x7e)) return undefined
  }
  const opaque = member.slice(start, end)
  // an unquoted "*" is the any-form, handled by the list parser, never a tag
  if (opaque === '*' && start === 0) return undefined
  return { weak, opaque }
}

/**
 * Parses an `If-Match` / `If-None-Match` field value (RFC 9110 §13.1.1, §13.1.2) in one pass,
 * linear in its length: `*`, or a comma-separated list with optional white space around members.
 * Commas inside a quoted tag belong to the tag. Empty members (`a,,b`) are skipped as §5.6.1 allows.
 *
 * @example
 * parseEntityTagList('"a", W/"b", c') // { any: false, tags: [a, W/b, c], malformed: false }
 */
export function parseEntityTagList(value: string): EntityTagList {
  // RFC 9110 §5.6.3: optional white space is SP and HTAB only (String.trim would take U+00A0 too)
  const trimmed = trimOws(value)
  if (trimmed === '*') return { any: true, tags: [], malformed: false }
  const tags: EntityTag[] = []
  let malformed = trimmed === ''
  let i = 0
  const n = value.length
  while (i < n) {
    while (i < n && (isOws(value.charCodeAt(i)) || value.charCodeAt(i) === COMMA)) i++
    if (i >= n) break
    const begin = i
    let inQuotes = false
    // a member ends at the first comma outside quotes
    while (i < n) {
      const code = value.charCodeAt(i)
      if (code === DQUOTE) inQuotes = !inQuotes
      else if (code === COMMA && !inQuotes) break
      i++
    }
    let end = i
    while (end > begin && isOws(value.charCodeAt(end - 1))) end--
    if (tags.length >= MAX_LIST_MEMBERS) {
      malformed = true
      break
    }
    const tag = parseEntityTag(value.slice(begin, end))
    if (tag === undefined) malformed = true
    else tags.push(tag)
  }
  return { any: false, tags, malformed }
}

/** Formats an entity tag as an `ETag` field value: `"x"` or `W/"x"`. */
export function formatEntityTag(tag: EntityTag): string {
  return `${tag.weak ? 'W/' : ''}"${tag.opaque}"`
}

/**
 * True when a field value is exactly the strong tag whose opaque value is `opaque`, or `opaque`
 * and then `suffix` when one is given, as formatEntityTag writes it (`"x"`, nothing around it):
 * the one-member list parseEntityTagList would give, found without parsing or building a string.
 */
export function isExactlyStrongTag(value: string, opaque: string, suffix = ''): boolean {
  const end = value.length - 1
  return (
    end === opaque.length + suffix.length + 1 &&
    value.charCodeAt(0) === DQUOTE &&
    value.charCodeAt(end) === DQUOTE &&
    value.startsWith(opaque, 1) &&
    value.startsWith(suffix, 1 + opaque.length)
  )
}

/** Strong comparison (RFC 9110 §8.8.3.2): both strong and the opaque values equal. */
export function strongMatch(a: EntityTag, b: EntityTag): boolean {
  return !a.weak && !b.weak && a.opaque === b.opaque
}

/** Weak comparison (RFC 9110 §8.8.3.2): the opaque values equal, weakness ignored. */
export function weakMatch(a: EntityTag, b: EntityTag): boolean {
  return a.opaque === b.opaque
}
