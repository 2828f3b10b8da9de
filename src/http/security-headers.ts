/**
 * The security headers every response carries but a 304, errors included. They are one fixed
 * object, set by the app's single onSend hook; a route that needs another Content-Security-Policy
 * (the /docs page) sets its own, and this one stays out of its way.
 *
 * A 304 carries only the fields RFC 9110 §15.4.5 lists (ETag, Last-Modified, Cache-Control, Vary,
 * Date; API.md says the same). Its purpose is to move as few bytes as possible, and these fields
 * would do nothing on it: it has no content to sniff, frame or run, and the client or cache that
 * asked uses its stored response, whose fields a 304 updates and does not replace (RFC 9111
 * §4.3.4): the stored 200's security headers, which every 200 carries, stay in force. They were
 * 6 of a 304's 11 fields and 380 of its 547 bytes.
 */

/**
 * A same-origin policy: pages served here may load scripts, styles, images, fonts and data from
 * this origin only (no inline script), and no other site may frame them.
 */
const SAME_ORIGIN_DIRECTIVES = [
  "default-src 'self'",
  "base-uri 'none'",
  "object-src 'none'",
  "frame-ancestors 'none'",
  "form-action 'self'",
  "img-src 'self' data:",
]

export const CONTENT_SECURITY_POLICY = SAME_ORIGIN_DIRECTIVES.join('; ')

/**
 * OWASP's HTTP headers cheat sheet, for an API that may also serve a same-origin page:
 * no MIME sniffing, no referrer leaks, no framing (X-Frame-Options for browsers that predate
 * frame-ancestors), no cross-origin window references.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'x-permitted-cross-domain-policies': 'none',
}

/** Every security header of an answer, the Content-Security-Policy included (all but /docs). */
export const ALL_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  ...SECURITY_HEADERS,
  'content-security-policy': CONTENT_SECURITY_POLICY,
}

/** The same, as the flat name/value list `writeHead` takes (the answers written on node:http itself). */
export const SECURITY_FIELDS: readonly string[] = Object.entries(ALL_SECURITY_HEADERS).flat()

/** The CSP of the /docs page: Swagger UI sets some inline styles, and fetches /openapi.json. */
export const DOCS_CONTENT_SECURITY_POLICY = [...SAME_ORIGIN_DIRECTIVES, "style-src 'self' 'unsafe-inline'", "script-src 'self'"].join('; ')
