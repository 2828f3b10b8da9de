/**
 * HTTP-date (RFC 9110 §5.6.7): the preferred IMF-fixdate and the two obsolete forms a recipient
 * must still accept (rfc850-date and asctime-date).
 */
import { trimOws } from './entity-tag.js'

const DAY_NAMES = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun']
const LONG_DAY_NAMES = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday']
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

// Sun, 06 Nov 1994 08:49:37 GMT
const IMF_FIXDATE = /^([A-Za-z]{3}), (\d{2}) ([A-Za-z]{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/
// Sunday, 06-Nov-94 08:49:37 GMT
const RFC850_DATE = /^([A-Za-z]{6,9}), (\d{2})-([A-Za-z]{3})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT$/
// Sun Nov  6 08:49:37 1994
const ASCTIME_DATE = /^([A-Za-z]{3}) ([A-Za-z]{3}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/

// 50 years of 365.25 days, the RFC's horizon for two-digit years
const FIFTY_YEARS_MS = 50 * 365.25 * 24 * 60 * 60 * 1000

/** Longest field value worth looking at: an IMF-fixdate is 29 characters, rfc850 at most 38. */
const MAX_DATE_LENGTH = 64

function toMillis(year: number, monthName: string, day: number, hour: number, minute: number, second: number): number | undefined {
  const month = MONTHS.indexOf(monthName)
  if (month < 0 || hour > 23 || minute > 59 || second > 60 || day < 1) return undefined
  // setUTCFullYear, unlike Date.UTC, keeps years 0–99 as they are instead of adding 1900
  const date = new Date(0)
  date.setUTCFullYear(year, month, day)
  // a day that does not exist in that month (31 Feb) rolls over into the next one
  if (date.getUTCMonth() !== month) return undefined
  // RFC 9110 §5.6.7 allows a leap second (60); Date has none, so it counts as the next second
  date.setUTCHours(hour, minute, second, 0)
  return date.getTime()
}

/**
 * Parses an HTTP-date into milliseconds since the epoch (always a whole second), or returns
 * undefined when the value is not a valid HTTP-date, so the caller can ignore the field as
 * RFC 9110 §13.1.3 and §13.1.4 require. `now` resolves two-digit rfc850 years (§5.6.7).
 *
 * @example
 * parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT') // 784111777000
 */
export function parseHttpDate(value: string, now: number = Date.now()): number | undefined {
  if (value.length > MAX_DATE_LENGTH) return undefined
  const text = trimOws(value)
  let m = IMF_FIXDATE.exec(text)
  if (m !== null) {
    if (!DAY_NAMES.includes(m[1]!)) return undefined
    return toMillis(Number(m[4]), m[3]!, Number(m[2]), Number(m[5]), Number(m[6]), Number(m[7]))
  }
  m = RFC850_DATE.exec(text)
  if (m !== null) {
    if (!LONG_DAY_NAMES.includes(m[1]!)) return undefined
    // RFC 9110 §5.6.7: a timestamp that appears to be more than 50 years in the future is in the
    // most recent past year with the same last two digits. Start in this century and move by
    // whole centuries until the timestamp lies within 50 years either side of now.
    const yy = Number(m[4])
    const century = Math.floor(new Date(now).getUTCFullYear() / 100) * 100
    const at = (year: number) => toMillis(year, m![3]!, Number(m![2]), Number(m![5]), Number(m![6]), Number(m![7]))
    let year = century + yy
    const first = at(year)
    if (first === undefined) return undefined
    if (first > now + FIFTY_YEARS_MS) year -= 100
    else if (first < now - FIFTY_YEARS_MS) year += 100
    return toMillis(year, m[3]!, Number(m[2]), Number(m[5]), Number(m[6]), Number(m[7]))
  }
  m = ASCTIME_DATE.exec(text)
  if (m !== null) {
    if (!DAY_NAMES.includes(m[1]!)) return undefined
    return toMillis(Number(m[7]), m[2]!, Number(m[3]!.trim()), Number(m[4]), Number(m[5]), Number(m[6]))
  }
  return undefined
}

/**
 * Formats milliseconds since the epoch as an IMF-fixdate (RFC 9110 §5.6.7), the only form a
 * sender may generate. Sub-second precision is dropped, as the format has none.
 *
 * @example
 * formatHttpDate(784111777000) // 'Sun, 06 Nov 1994 08:49:37 GMT'
 */
export function formatHttpDate(ms: number): string {
  // toUTCString() produces exactly the IMF-fixdate layout
  return new Date(ms).toUTCString()
}

/** Truncates milliseconds to the whole second an HTTP-date can express. */
export function toHttpDatePrecision(ms: number): number {
  return Math.floor(ms / 1000) * 1000
}
