/**
 * HTTP-date (RFC 9110 §5.6.7): the three formats a recipient must accept, the one a sender
 * generates, and the one-second precision they share.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { formatHttpDate, parseHttpDate, toHttpDatePrecision } from '../../src/core/index.js'

// RFC 9110 §5.6.7's own example instant: Sun, 06 Nov 1994 08:49:37 GMT
const EXAMPLE = Date.UTC(1994, 10, 6, 8, 49, 37)
const NOW = Date.UTC(2026, 5, 15, 12, 0, 0)

const IMF_FIXDATE_LAYOUT = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/

describe('parseHttpDate', () => {
  describe('with an IMF-fixdate', () => {
    const cases = [
      { name: 'reads the RFC example', value: 'Sun, 06 Nov 1994 08:49:37 GMT', expected: EXAMPLE },
      { name: 'reads the epoch', value: 'Thu, 01 Jan 1970 00:00:00 GMT', expected: 0 },
      { name: 'reads a date before the epoch', value: 'Wed, 31 Dec 1969 23:59:59 GMT', expected: -1000 },
      { name: 'reads 29 February of a leap year', value: 'Thu, 29 Feb 1996 12:00:00 GMT', expected: Date.UTC(1996, 1, 29, 12) },
      { name: 'reads 29 February 2000, a leap year divisible by 400', value: 'Tue, 29 Feb 2000 12:00:00 GMT', expected: Date.UTC(2000, 1, 29, 12) },
      { name: 'reads the last second of a day', value: 'Wed, 25 Nov 2026 23:59:59 GMT', expected: Date.UTC(2026, 10, 25, 23, 59, 59) },
      // RFC 9110 §5.6.7: second = 2DIGIT, 00:00:00 - 23:59:60 (leap second); Date has none
      { name: 'reads a leap second as the next second', value: 'Sat, 31 Dec 2016 23:59:60 GMT', expected: Date.UTC(2017, 0, 1) },
      { name: 'keeps a year below 100 as written, not as 19xx', value: 'Sat, 01 Jan 0050 00:00:00 GMT', expected: -60589296000000 },
      { name: 'ignores white space around the value', value: '  Sun, 06 Nov 1994 08:49:37 GMT\t', expected: EXAMPLE },
      // RFC 9110 §5.6.7 only constrains the day-name to the seven names (and asks recipients to
      // be robust); the date fixes the instant, so a mismatched weekday is not a reason to refuse it
      { name: 'accepts a weekday name that does not match the date', value: 'Mon, 06 Nov 1994 08:49:37 GMT', expected: EXAMPLE },
    ]
    for (const c of cases)
      it(c.name, () => {
        assert.equal(parseHttpDate(c.value, NOW), c.expected)
      })

    it('reads every day name and every month name', () => {
      const days = ['Thu', 'Sun', 'Sun', 'Wed', 'Fri', 'Mon', 'Wed', 'Sat', 'Tue', 'Thu', 'Sun', 'Tue']
      const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
      months.forEach((month, i) => {
        const value = `${days[i]}, 01 ${month} 2026 00:00:00 GMT`
        assert.equal(parseHttpDate(value, NOW), Date.UTC(2026, i, 1), value)
      })
    })
  })

  describe('with an rfc850-date', () => {
    it('reads the RFC example', () => {
      assert.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', NOW), EXAMPLE)
    })

    it('reads every long day name', () => {
      const cases = [
        { value: 'Monday, 01-Jun-26 00:00:00 GMT', expected: Date.UTC(2026, 5, 1) },
        { value: 'Tuesday, 02-Jun-26 00:00:00 GMT', expected: Date.UTC(2026, 5, 2) },
        { value: 'Wednesday, 03-Jun-26 00:00:00 GMT', expected: Date.UTC(2026, 5, 3) },
        { value: 'Thursday, 04-Jun-26 00:00:00 GMT', expected: Date.UTC(2026, 5, 4) },
        { value: 'Friday, 05-Jun-26 00:00:00 GMT', expected: Date.UTC(2026, 5, 5) },
        { value: 'Saturday, 06-Jun-26 00:00:00 GMT', expected: Date.UTC(2026, 5, 6) },
        { value: 'Sunday, 07-Jun-26 00:00:00 GMT', expected: Date.UTC(2026, 5, 7) },
      ]
      for (const c of cases) assert.equal(parseHttpDate(c.value, NOW), c.expected, c.value)
    })

    // RFC 9110 §5.6.7: "Recipients of a timestamp value in rfc850-date format, which uses a
    // two-digit year, MUST interpret a timestamp that appears to be more than 50 years in the
    // future as representing the most recent year in the past that had the same last two digits."
    describe('resolving the two-digit year against now', () => {
      const cases = [
        {
          name: 'keeps a year in the past within this century',
          value: 'Thursday, 01-Jan-26 00:00:00 GMT',
          now: NOW,
          expected: Date.UTC(2026, 0, 1),
        },
        {
          name: 'keeps a year less than 50 years in the future',
          value: 'Wednesday, 01-Jan-76 00:00:00 GMT',
          now: NOW,
          expected: Date.UTC(2076, 0, 1),
        },
        {
          name: 'moves a year more than 50 years in the future back a century',
          value: 'Saturday, 01-Jan-77 00:00:00 GMT',
          now: NOW,
          expected: Date.UTC(1977, 0, 1),
        },
        {
          name: 'reads 00 as 2000 in 2026',
          value: 'Saturday, 01-Jan-00 00:00:00 GMT',
          now: NOW,
          expected: Date.UTC(2000, 0, 1),
        },
        {
          name: 'reads 99 as 1999 in 2026',
          value: 'Friday, 31-Dec-99 23:59:59 GMT',
          now: NOW,
          expected: Date.UTC(1999, 11, 31, 23, 59, 59),
        },
        {
          name: 'depends on now: 94 is 1994 in 2026',
          value: 'Sunday, 06-Nov-94 08:49:37 GMT',
          now: Date.UTC(2026, 0, 1),
          expected: EXAMPLE,
        },
        {
          name: 'depends on now: 94 is 2094 in 2060',
          value: 'Saturday, 06-Nov-94 08:49:37 GMT',
          now: Date.UTC(2060, 0, 1),
          expected: Date.UTC(2094, 10, 6, 8, 49, 37),
        },
        // the rule is about the timestamp, not the year: 31 Dec 2076 is almost 51 years after 1 Jan 2026
        {
          name: 'moves a timestamp more than 50 years ahead back a century even within the 50th year',
          value: 'Friday, 31-Dec-76 12:00:00 GMT',
          now: Date.UTC(2026, 0, 1),
          expected: Date.UTC(1976, 11, 31, 12),
        },
        // one day ahead is not "more than 50 years in the future": it stays in the future
        {
          name: "reads a date one day after now as the next century's, not 99 years ago",
          value: 'Saturday, 01-Jan-00 00:00:00 GMT',
          now: Date.UTC(1999, 11, 31),
          expected: Date.UTC(2000, 0, 1),
        },
      ]
      for (const c of cases)
        it(c.name, () => {
          assert.equal(parseHttpDate(c.value, c.now), c.expected)
        })
    })
  })

  describe('with an asctime-date', () => {
    const cases = [
      { name: 'reads the RFC example with its space-padded day', value: 'Sun Nov  6 08:49:37 1994', expected: EXAMPLE },
      { name: 'reads a two-digit day', value: 'Fri Nov 25 10:00:00 1994', expected: Date.UTC(1994, 10, 25, 10) },
      { name: 'reads a zero-padded day, which date3 also allows as 2DIGIT', value: 'Sun Nov 06 08:49:37 1994', expected: EXAMPLE },
      { name: 'reads the epoch', value: 'Thu Jan  1 00:00:00 1970', expected: 0 },
    ]
    for (const c of cases)
      it(c.name, () => {
        assert.equal(parseHttpDate(c.value, NOW), c.expected)
      })
  })

  describe('with a value that is not an HTTP-date', () => {
    const cases = [
      { name: 'refuses the empty string', value: '' },
      { name: 'refuses white space only', value: '   ' },
      { name: 'refuses a weekday name that does not exist', value: 'Sux, 06 Nov 1994 08:49:37 GMT' },
      { name: 'refuses a long day name in an IMF-fixdate', value: 'Sunday, 06 Nov 1994 08:49:37 GMT' },
      { name: 'refuses a short day name in an rfc850-date', value: 'Sun, 06-Nov-94 08:49:37 GMT' },
      { name: 'refuses a long day name that does not exist in an rfc850-date', value: 'Sundae, 06-Nov-94 08:49:37 GMT' },
      { name: 'refuses a long day name in an asctime-date', value: 'Sunday Nov  6 08:49:37 1994' },
      { name: 'refuses a month that does not exist', value: 'Sun, 06 Nox 1994 08:49:37 GMT' },
      { name: 'refuses a month that does not exist in an asctime-date', value: 'Sun Nox  6 08:49:37 1994' },
      // RFC 9110 §5.6.7 spells every name with %s"…": case-sensitive
      { name: 'refuses a lowercase month', value: 'Sun, 06 nov 1994 08:49:37 GMT' },
      { name: 'refuses a lowercase day name', value: 'sun, 06 Nov 1994 08:49:37 GMT' },
      { name: 'refuses an uppercase day name', value: 'SUN, 06 Nov 1994 08:49:37 GMT' },
      { name: 'refuses a lowercase gmt, as GMT = %s"GMT"', value: 'Sun, 06 Nov 1994 08:49:37 gmt' },
      { name: 'refuses a lowercase gmt in an rfc850-date', value: 'Sunday, 06-Nov-94 08:49:37 gmt' },
      { name: 'refuses UTC instead of GMT', value: 'Sun, 06 Nov 1994 08:49:37 UTC' },
      { name: 'refuses a numeric zone', value: 'Sun, 06 Nov 1994 08:49:37 +0000' },
      { name: 'refuses a missing zone', value: 'Sun, 06 Nov 1994 08:49:37' },
      { name: 'refuses 31 February', value: 'Tue, 31 Feb 1994 08:49:37 GMT' },
      { name: 'refuses 29 February of a common year', value: 'Tue, 29 Feb 1994 08:49:37 GMT' },
      { name: 'refuses 29 February 1900, not a leap year', value: 'Thu, 29 Feb 1900 08:49:37 GMT' },
      { name: 'refuses 31 April', value: 'Sun, 31 Apr 1994 08:49:37 GMT' },
      { name: 'refuses day 00', value: 'Sun, 00 Nov 1994 08:49:37 GMT' },
      { name: 'refuses day 32', value: 'Sun, 32 Dec 1994 08:49:37 GMT' },
      { name: 'refuses 31 February in an rfc850-date', value: 'Thursday, 31-Feb-94 08:49:37 GMT' },
      { name: 'refuses day 0 in an asctime-date', value: 'Sun Nov  0 08:49:37 1994' },
      { name: 'refuses hour 25', value: 'Sun, 06 Nov 1994 25:00:00 GMT' },
      { name: 'refuses hour 24', value: 'Sun, 06 Nov 1994 24:00:00 GMT' },
      { name: 'refuses minute 60', value: 'Sun, 06 Nov 1994 08:60:37 GMT' },
      { name: 'refuses second 61', value: 'Sun, 06 Nov 1994 08:49:61 GMT' },
      { name: 'refuses hour 25 in an asctime-date', value: 'Sun Nov  6 25:00:00 1994' },
      { name: 'refuses a one-digit day in an IMF-fixdate', value: 'Sun, 6 Nov 1994 08:49:37 GMT' },
      { name: 'refuses a two-digit year in an IMF-fixdate', value: 'Sun, 06 Nov 94 08:49:37 GMT' },
      { name: 'refuses a four-digit year in an rfc850-date', value: 'Sunday, 06-Nov-1994 08:49:37 GMT' },
      { name: 'refuses an unpadded one-digit day in an asctime-date', value: 'Sun Nov 6 08:49:37 1994' },
      { name: 'refuses a missing comma', value: 'Sun 06 Nov 1994 08:49:37 GMT' },
      { name: 'refuses a one-digit hour', value: 'Sun, 06 Nov 1994 8:49:37 GMT' },
      { name: 'refuses trailing garbage', value: 'Sun, 06 Nov 1994 08:49:37 GMTx' },
      { name: 'refuses a trailing parameter', value: 'Sun, 06 Nov 1994 08:49:37 GMT; length=42' },
      { name: 'refuses leading garbage', value: 'x Sun, 06 Nov 1994 08:49:37 GMT' },
      { name: 'refuses trailing garbage after an asctime-date', value: 'Sun Nov  6 08:49:37 1994 GMT' },
      // RFC 9110 §13.1.3, §13.1.4: a list of dates is not a valid HTTP-date
      { name: 'refuses a list of two dates', value: 'Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT' },
      { name: 'refuses an ISO 8601 timestamp', value: '1994-11-06T08:49:37Z' },
      { name: 'refuses a number of seconds', value: '784111777' },
      { name: 'refuses full-width digits', value: 'Sun, ０６ Nov 1994 08:49:37 GMT' },
      { name: 'refuses a value longer than any HTTP-date', value: `Sun, 06 Nov 1994 08:49:37 GMT${'x'.repeat(40)}` },
      { name: 'refuses a 1 MB value', value: 'Sun, 06 Nov 1994 08:49:37 GMT'.repeat(35_000) },
    ]
    for (const c of cases)
      it(c.name, () => {
        assert.equal(parseHttpDate(c.value, NOW), undefined)
      })
  })

  it('uses the current time when now is not given', () => {
    // 94 has been 1994 since 1995 and stays so until 2044 (RFC 9110 §5.6.7)
    assert.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT'), EXAMPLE)
    assert.equal(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT'), EXAMPLE)
  })
})

describe('formatHttpDate', () => {
  const cases = [
    { name: 'formats the RFC example', ms: EXAMPLE, expected: 'Sun, 06 Nov 1994 08:49:37 GMT' },
    { name: 'formats the epoch', ms: 0, expected: 'Thu, 01 Jan 1970 00:00:00 GMT' },
    { name: 'zero-pads the day and the time', ms: Date.UTC(2026, 0, 2, 3, 4, 5), expected: 'Fri, 02 Jan 2026 03:04:05 GMT' },
    { name: 'drops the milliseconds', ms: EXAMPLE + 999, expected: 'Sun, 06 Nov 1994 08:49:37 GMT' },
    { name: 'shows the second a time before 1970 falls in', ms: -1, expected: 'Wed, 31 Dec 1969 23:59:59 GMT' },
    { name: 'zero-pads a year below 1000', ms: Date.UTC(999, 0, 1), expected: 'Tue, 01 Jan 0999 00:00:00 GMT' },
  ]
  for (const c of cases)
    it(c.name, () => {
      assert.equal(formatHttpDate(c.ms), c.expected)
    })

  describe('round-tripping through parseHttpDate', () => {
    const cases = [
      { name: 'gives back the RFC example', ms: EXAMPLE },
      { name: 'gives back a time with milliseconds at second precision', ms: Date.UTC(2026, 10, 25, 10, 11, 52, 200) },
      { name: 'gives back the epoch', ms: 0 },
      { name: 'gives back a time before 1970 at second precision', ms: -1500 },
      { name: 'gives back 29 February 2000', ms: Date.UTC(2000, 1, 29, 23, 59, 59, 999) },
      { name: 'gives back the last second of year 9999', ms: Date.UTC(9999, 11, 31, 23, 59, 59) },
    ]
    for (const c of cases)
      it(c.name, () => {
        assert.equal(parseHttpDate(formatHttpDate(c.ms), NOW), toHttpDatePrecision(c.ms))
      })

    it('gives back any time in years 0000 to 9999 at second precision, as an IMF-fixdate', () => {
      const min = Date.parse('0000-01-01T00:00:00Z') // Date.UTC would read year 0 as 1900
      const max = Date.UTC(9999, 11, 31, 23, 59, 59, 999)
      fc.assert(
        fc.property(fc.integer({ min, max }), (ms) => {
          const text = formatHttpDate(ms)
          assert.match(text, IMF_FIXDATE_LAYOUT)
          assert.equal(parseHttpDate(text, NOW), toHttpDatePrecision(ms))
        }),
        { seed: 9110, numRuns: 1000 },
      )
    })
  })
})

describe('toHttpDatePrecision', () => {
  const cases = [
    { name: 'drops the milliseconds', ms: Date.UTC(2026, 10, 25, 10, 0, 0, 700), expected: Date.UTC(2026, 10, 25, 10) },
    { name: 'keeps a whole second as it is', ms: Date.UTC(2026, 10, 25, 10), expected: Date.UTC(2026, 10, 25, 10) },
    { name: 'never rounds up', ms: 999, expected: 0 },
    { name: 'keeps zero', ms: 0, expected: 0 },
    { name: 'goes down to the second a time before 1970 falls in', ms: -1, expected: -1000 },
    { name: 'keeps a whole second before 1970', ms: -1000, expected: -1000 },
  ]
  for (const c of cases)
    it(c.name, () => {
      assert.equal(toHttpDatePrecision(c.ms), c.expected)
    })

  it('agrees with the second formatHttpDate shows', () => {
    for (const ms of [-1, -999, -1001, 1, 999, 1001, EXAMPLE + 1]) {
      assert.equal(formatHttpDate(toHttpDatePrecision(ms)), formatHttpDate(ms), String(ms))
    }
  })
})
