/**
 * Entity tags (RFC 9110 §8.8.3): member parsing, list parsing, formatting and the two
 * comparison functions of §8.8.3.2.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {
  MAX_LIST_MEMBERS,
  formatEntityTag,
  ifMatchHolds,
  isExactlyStrongTag,
  ifNoneMatchHolds,
  parseEntityTag,
  parseEntityTagList,
  strongMatch,
  weakMatch,
  type CurrentValidators,
  type EntityTag,
} from '../../src/core/index.js'

const strong = (opaque: string): EntityTag => ({ weak: false, opaque })
const weak = (opaque: string): EntityTag => ({ weak: true, opaque })

/** Parses a member the test knows to be valid, failing the test if it is not. */
function tag(member: string): EntityTag {
  const parsed = parseEntityTag(member)
  assert.ok(parsed !== undefined, `expected ${JSON.stringify(member)} to parse`)
  return parsed
}

// RFC 9110 §8.8.3: etagc = %x21 / %x23-7E / obs-text
const ETAGC = [0x21, ...Array.from({ length: 0x7e - 0x23 + 1 }, (_, i) => 0x23 + i), ...Array.from({ length: 0xff - 0x80 + 1 }, (_, i) => 0x80 + i)].map(
  (code) => String.fromCharCode(code),
)

const ONE_MB = 1_000_000

describe('parseEntityTag', () => {
  describe('with a valid member', () => {
    const cases = [
      { name: 'reads a quoted strong tag', member: '"abc"', expected: strong('abc') },
      { name: 'reads a weak tag', member: 'W/"abc"', expected: weak('abc') },
      { name: 'reads an empty quoted tag', member: '""', expected: strong('') },
      { name: 'reads an empty weak tag', member: 'W/""', expected: weak('') },
      { name: "reads an unquoted tag leniently, as the seed's curl sends it", member: '42e98b', expected: strong('42e98b') },
      { name: 'reads an unquoted weak tag leniently', member: 'W/42e98b', expected: weak('42e98b') },
      { name: 'keeps a comma inside the quotes as part of the tag', member: '"a,b"', expected: strong('a,b') },
      { name: 'reads a quoted star as an ordinary tag', member: '"*"', expected: strong('*') },
      { name: 'accepts the lowest and highest visible ASCII etagc', member: '"!#~"', expected: strong('!#~') },
      { name: 'accepts obs-text (%x80-FF)', member: '"\x80\xe9\xff"', expected: strong('\x80\xe9\xff') },
      { name: 'keeps a slash that is not a leading W/', member: '"a/W/b"', expected: strong('a/W/b') },
    ]
    for (const c of cases)
      it(c.name, () => {
        assert.deepEqual(parseEntityTag(c.member), c.expected)
      })
  })

  describe('with a malformed member', () => {
    const cases = [
      { name: 'refuses the empty string', member: '' },
      { name: 'refuses W/ alone', member: 'W/' },
      { name: 'refuses a lone quote', member: '"' },
      { name: 'refuses a weak lone quote', member: 'W/"' },
      { name: 'refuses an unterminated quote', member: '"abc' },
      { name: 'refuses an unterminated weak quote', member: 'W/"abc' },
      { name: 'refuses a closing quote without an opening one', member: 'abc"' },
      { name: 'refuses a quote inside a quoted tag', member: '"a"b"' },
      { name: 'refuses a quote inside an unquoted tag', member: 'a"b' },
      { name: 'refuses a space inside a quoted tag', member: '"a b"' },
      { name: 'refuses a space inside an unquoted tag', member: 'a b' },
      { name: 'refuses a tab inside a tag', member: '"a\tb"' },
      { name: 'refuses NUL', member: '"a\x00b"' },
      { name: 'refuses a C0 control character', member: '"a\x1fb"' },
      { name: 'refuses DEL', member: '"a\x7fb"' },
      { name: 'refuses a line feed', member: '"a\nb"' },
      { name: 'refuses a character beyond obs-text', member: '"a\u0100b"' },
      { name: 'refuses white space around the member (the list parser strips it)', member: ' "a" ' },
      { name: 'refuses a lowercase weak prefix, as W/ is case-sensitive', member: 'w/"a"' },
      { name: 'refuses a doubled weak prefix', member: 'W/W/"a"' },
      { name: 'refuses the unquoted star, which is the any-form and not a tag', member: '*' },
    ]
    for (const c of cases)
      it(c.name, () => {
        assert.equal(parseEntityTag(c.member), undefined)
      })
  })

  it('accepts every etagc and refuses every other code point up to U+00FF', () => {
    for (let code = 0; code <= 0xff; code++) {
      const ch = String.fromCharCode(code)
      const expected = ETAGC.includes(ch) ? strong(ch) : undefined
      assert.deepEqual(parseEntityTag(`"${ch}"`), expected, `code 0x${code.toString(16)}`)
    }
  })
})

describe('parseEntityTagList', () => {
  describe('with the any-form', () => {
    const cases = [
      { name: 'reads * as any', value: '*' },
      { name: 'reads * with spaces around it as any', value: '  *  ' },
      { name: 'reads * with tabs around it as any', value: '\t*\t' },
    ]
    for (const c of cases)
      it(c.name, () => {
        assert.deepEqual(parseEntityTagList(c.value), { any: true, tags: [], malformed: false })
      })

    it('refuses * as a member of a longer list, keeping the other members', () => {
      assert.deepEqual(parseEntityTagList('"a", *'), { any: false, tags: [strong('a')], malformed: true })
    })

    // RFC 9110 §5.6.3: OWS is SP / HTAB only; a no-break space (obs-text, which Node passes
    // through in field values) is not white space, so this field is malformed, not `*`
    it('does not read * preceded by a no-break space as any', () => {
      assert.deepEqual(parseEntityTagList('\u00a0*'), { any: false, tags: [], malformed: true })
    })
  })

  describe('with a well-formed list', () => {
    const cases = [
      { name: 'reads one quoted tag', value: '"a"', tags: [strong('a')] },
      { name: "reads an unquoted tag, as the seed's curl sends it", value: '42e98b6a', tags: [strong('42e98b6a')] },
      { name: 'reads strong, weak and unquoted members in order', value: '"a", W/"b", c', tags: [strong('a'), weak('b'), strong('c')] },
      { name: 'allows no white space after the comma', value: '"a","b"', tags: [strong('a'), strong('b')] },
      { name: 'allows spaces and tabs around members', value: ' \t"a" \t,\t "b"\t ', tags: [strong('a'), strong('b')] },
      { name: 'skips empty members (RFC 9110 §5.6.1.2)', value: '"a",,"b"', tags: [strong('a'), strong('b')] },
      { name: 'skips empty members made of white space', value: '"a", ,\t,"b"', tags: [strong('a'), strong('b')] },
      { name: 'skips leading and trailing commas', value: ', "a" ,', tags: [strong('a')] },
      { name: 'skips empty members between unquoted tags', value: 'a,,b', tags: [strong('a'), strong('b')] },
      { name: 'keeps commas inside quoted tags', value: '"a,b", "c,,d"', tags: [strong('a,b'), strong('c,,d')] },
      { name: 'keeps a weak tag with a comma inside', value: 'W/"a,b", "c"', tags: [weak('a,b'), strong('c')] },
      { name: 'reads the empty quoted tag', value: '"", "a"', tags: [strong(''), strong('a')] },
    ]
    for (const c of cases)
      it(c.name, () => {
        assert.deepEqual(parseEntityTagList(c.value), { any: false, tags: c.tags, malformed: false })
      })
  })

  describe('with a malformed field', () => {
    const cases = [
      { name: 'marks the empty field malformed', value: '', tags: [] },
      { name: 'marks a field of white space only malformed', value: ' \t ', tags: [] },
      { name: 'marks W/ alone malformed', value: 'W/', tags: [] },
      { name: 'marks an unterminated quote malformed', value: '"abc', tags: [] },
      { name: 'marks an unterminated quote that swallows the rest of the list malformed', value: '"a, "b"', tags: [] },
      { name: 'marks a quote inside a tag malformed', value: '"a"b"', tags: [] },
      { name: 'marks a stray quote malformed, letting it swallow the next member', value: '"a"b", "c"', tags: [] },
      { name: 'marks a space inside a tag malformed, keeping the good members', value: '"a", "b c", "d"', tags: [strong('a'), strong('d')] },
      { name: 'marks an unquoted member with a space malformed', value: 'a b', tags: [] },
      { name: 'marks a control character malformed', value: '"a\x01", "b"', tags: [strong('b')] },
      { name: 'marks a trailing W/ member malformed', value: '"a", W/', tags: [strong('a')] },
      { name: 'marks a lowercase weak prefix malformed', value: 'w/"a"', tags: [] },
    ]
    for (const c of cases)
      it(c.name, () => {
        assert.deepEqual(parseEntityTagList(c.value), { any: false, tags: c.tags, malformed: true })
      })
  })

  describe(`with more than MAX_LIST_MEMBERS (${MAX_LIST_MEMBERS}) members`, () => {
    const members = (count: number) => Array.from({ length: count }, (_, i) => `"t${i}"`)

    it('reads exactly MAX_LIST_MEMBERS members in full', () => {
      const list = parseEntityTagList(members(MAX_LIST_MEMBERS).join(', '))
      assert.equal(list.tags.length, MAX_LIST_MEMBERS)
      assert.equal(list.malformed, false)
    })

    it('does not count empty members towards the bound', () => {
      const list = parseEntityTagList(`${members(MAX_LIST_MEMBERS).join(',,,')},,,`)
      assert.equal(list.tags.length, MAX_LIST_MEMBERS)
      assert.equal(list.malformed, false)
    })

    it('keeps the first MAX_LIST_MEMBERS members and marks the list malformed', () => {
      const list = parseEntityTagList(members(MAX_LIST_MEMBERS + 1).join(', '))
      assert.equal(list.malformed, true)
      assert.deepEqual(
        list.tags,
        members(MAX_LIST_MEMBERS).map((_, i) => strong(`t${i}`)),
      )
    })

    it('ignores a member past the bound even when it would match', () => {
      const current: CurrentValidators = { etag: strong(`t${MAX_LIST_MEMBERS}`), lastModified: 0 }
      const value = members(MAX_LIST_MEMBERS + 1).join(', ')
      assert.equal(
        parseEntityTagList(value).tags.some((t) => t.opaque === current.etag.opaque),
        false,
      )
      // a plain non-match for If-None-Match, a failed If-Match
      assert.equal(ifNoneMatchHolds(value, current), true)
      assert.equal(ifMatchHolds(value, current), false)
    })
  })

  // No timings here: these only show that a pathological header is parsed and returns.
  describe('with a 1 MB pathological field', () => {
    const cases = [
      { name: 'returns for a million quotes', value: '"'.repeat(ONE_MB), tags: 0, malformed: true },
      { name: 'returns for a million commas', value: ','.repeat(ONE_MB), tags: 0, malformed: false },
      { name: 'returns for a million spaces', value: ' '.repeat(ONE_MB), tags: 0, malformed: true },
      { name: 'returns for an opening quote followed by a million commas', value: `"${','.repeat(ONE_MB)}`, tags: 0, malformed: true },
      { name: 'returns for W/" repeated', value: 'W/"'.repeat(Math.floor(ONE_MB / 3)), tags: 0, malformed: true },
      { name: 'returns for a quarter of a million tags, keeping the bound', value: '"a",'.repeat(ONE_MB / 4), tags: MAX_LIST_MEMBERS, malformed: true },
      { name: 'returns for two hundred thousand malformed members', value: '"a b",'.repeat(Math.floor(ONE_MB / 6)), tags: 0, malformed: true },
    ]
    for (const c of cases)
      it(c.name, () => {
        const list = parseEntityTagList(c.value)
        assert.equal(list.any, false)
        assert.equal(list.tags.length, c.tags)
        assert.equal(list.malformed, c.malformed)
      })

    it('returns for W/ repeated, never matching an ordinary ETag', () => {
      const value = 'W/'.repeat(ONE_MB / 2)
      const list = parseEntityTagList(value)
      assert.equal(list.any, false)
      assert.ok(list.tags.length <= 1)
      const current: CurrentValidators = { etag: strong('v1'), lastModified: 0 }
      assert.equal(ifMatchHolds(value, current), false)
      assert.equal(ifNoneMatchHolds(value, current), true)
    })
  })

  describe('for any input', () => {
    it('returns at most MAX_LIST_MEMBERS tags, each made of etagc only', () => {
      fc.assert(
        fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (value) => {
          const list = parseEntityTagList(value)
          assert.ok(list.tags.length <= MAX_LIST_MEMBERS)
          if (list.any) assert.deepEqual(list.tags, [])
          for (const t of list.tags) for (const ch of t.opaque) assert.ok(ETAGC.includes(ch))
        }),
        { seed: 9110, numRuns: 500 },
      )
    })

    it('reads back any list of formatted tags', () => {
      const arbTag = fc
        .tuple(fc.boolean(), fc.string({ unit: fc.constantFrom(...ETAGC), maxLength: 12 }))
        .map(([isWeak, opaque]): EntityTag => ({ weak: isWeak, opaque }))
      const arbOws = fc.constantFrom('', ' ', '\t', ' \t ')
      fc.assert(
        fc.property(fc.array(fc.tuple(arbTag, arbOws, arbOws), { minLength: 1, maxLength: MAX_LIST_MEMBERS }), (members) => {
          const value = members.map(([t, before, after]) => before + formatEntityTag(t) + after).join(',')
          assert.deepEqual(parseEntityTagList(value), { any: false, tags: members.map(([t]) => t), malformed: false })
        }),
        { seed: 9110, numRuns: 300 },
      )
    })
  })
})

describe('formatEntityTag', () => {
  const cases = [
    { name: 'quotes a strong tag', tag: strong('v1'), expected: '"v1"' },
    { name: 'prefixes a weak tag with W/', tag: weak('v1'), expected: 'W/"v1"' },
    { name: 'quotes an empty tag', tag: strong(''), expected: '""' },
    { name: 'keeps a comma inside the quotes', tag: strong('a,b'), expected: '"a,b"' },
  ]
  for (const c of cases)
    it(c.name, () => {
      assert.equal(formatEntityTag(c.tag), c.expected)
    })

  it('gives back what parseEntityTag reads', () => {
    for (const c of cases) assert.deepEqual(parseEntityTag(formatEntityTag(c.tag)), c.tag)
  })
})

describe('strongMatch and weakMatch', () => {
  describe('RFC 9110 §8.8.3.2 comparison table', () => {
    const cases = [
      { name: 'two weak tags with the same value match weakly only', a: 'W/"1"', b: 'W/"1"', strong: false, weak: true },
      { name: 'two weak tags with different values do not match', a: 'W/"1"', b: 'W/"2"', strong: false, weak: false },
      { name: 'a weak and a strong tag with the same value match weakly only', a: 'W/"1"', b: '"1"', strong: false, weak: true },
      { name: 'two strong tags with the same value match both ways', a: '"1"', b: '"1"', strong: true, weak: true },
    ]
    for (const c of cases)
      it(c.name, () => {
        assert.equal(strongMatch(tag(c.a), tag(c.b)), c.strong)
        assert.equal(weakMatch(tag(c.a), tag(c.b)), c.weak)
        // both comparisons are symmetric
        assert.equal(strongMatch(tag(c.b), tag(c.a)), c.strong)
        assert.equal(weakMatch(tag(c.b), tag(c.a)), c.weak)
      })
  })

  describe('beyond the RFC table', () => {
    const cases = [
      { name: 'a strong and a weak tag with the same value match weakly only', a: '"1"', b: 'W/"1"', strong: false, weak: true },
      { name: 'two strong tags with different values do not match', a: '"1"', b: '"2"', strong: false, weak: false },
      { name: 'an unquoted tag matches its quoted form strongly', a: '42e98b', b: '"42e98b"', strong: true, weak: true },
      { name: 'opaque values compare case-sensitively', a: '"abc"', b: '"ABC"', strong: false, weak: false },
      { name: 'a prefix is not a match', a: '"abc"', b: '"abcd"', strong: false, weak: false },
      { name: 'a quoted star matches only a quoted star', a: '"*"', b: '"x"', strong: false, weak: false },
      { name: 'two empty tags match', a: '""', b: '""', strong: true, weak: true },
    ]
    for (const c of cases)
      it(c.name, () => {
        assert.equal(strongMatch(tag(c.a), tag(c.b)), c.strong)
        assert.equal(weakMatch(tag(c.a), tag(c.b)), c.weak)
      })
  })
})

describe('isExactlyStrongTag', () => {
  const cases = [
    { name: 'is true for the quoted opaque value', value: '"e.1"', opaque: 'e.1', suffix: undefined, is: true },
    { name: 'is true for the quoted opaque value and suffix', value: '"e.1+br"', opaque: 'e.1', suffix: '+br', is: true },
    { name: 'is false without the suffix asked for', value: '"e.1"', opaque: 'e.1', suffix: '+br', is: false },
    { name: 'is false with a suffix not asked for', value: '"e.1+br"', opaque: 'e.1', suffix: undefined, is: false },
    { name: 'is false with another suffix', value: '"e.1+gz"', opaque: 'e.1', suffix: '+br', is: false },
    { name: 'is false for the weak form', value: 'W/"e.1"', opaque: 'e.1', suffix: undefined, is: false },
    { name: 'is false for the unquoted form', value: 'e.1', opaque: 'e.1', suffix: undefined, is: false },
    { name: 'is false with white space around it', value: ' "e.1"', opaque: 'e.1', suffix: undefined, is: false },
    { name: 'is false in a list', value: '"e.1", "e.2"', opaque: 'e.1', suffix: undefined, is: false },
    { name: 'is false for a longer opaque value', value: '"e.10"', opaque: 'e.1', suffix: undefined, is: false },
    { name: 'is false for a shorter opaque value', value: '"e."', opaque: 'e.1', suffix: undefined, is: false },
    { name: 'is false with the closing quote moved', value: '"e.1"x', opaque: 'e.1', suffix: undefined, is: false },
    { name: 'is false for the empty field', value: '', opaque: 'e.1', suffix: undefined, is: false },
  ]
  for (const c of cases)
    it(c.name, () => {
      assert.equal(isExactlyStrongTag(c.value, c.opaque, c.suffix), c.is)
    })

  it('is true exactly when the field is the one strong tag formatEntityTag writes', () => {
    const arbOpaque = fc.string({ unit: fc.constantFrom(...ETAGC), maxLength: 8 })
    const arbSuffix = fc.constantFrom('', '+br', '+gzip')
    const noise = fc.string({ unit: fc.constantFrom('"', 'W', '/', 'a', '+', ' ', ','), maxLength: 3 })
    fc.assert(
      fc.property(arbOpaque, arbSuffix, arbSuffix, noise, noise, fc.boolean(), (opaque, suffix, sentSuffix, before, after, weakened) => {
        // the tag itself, or near it: another coding, weakened, something before or after it
        const value = (weakened ? 'W/' : '') + before + formatEntityTag(strong(opaque + sentSuffix)) + after
        assert.equal(isExactlyStrongTag(value, opaque, suffix), value === formatEntityTag(strong(opaque + suffix)))
      }),
      { seed: 9110, numRuns: 3000 },
    )
  })
})
