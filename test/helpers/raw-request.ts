/**
 * HTTP/1.1 spoken by hand over a socket, for what fetch hides: repeated field lines, a chunked
 * body, and every byte of a response the server wrote (a body on a 304, a stray header).
 */
import { connect } from 'node:net'

/** A response as it came off the wire; repeated fields are joined with ', ' (RFC 9110 §5.3). */
export interface RawResponse {
  readonly status: number
  readonly headers: ReadonlyMap<string, string>
  readonly body: Buffer
}

/**
 * One request on its own connection, read to the end: sees every byte the server wrote. A header
 * given as an array is sent as that many field lines of the same name; a `chunkedBody` is sent
 * with Transfer-Encoding: chunked, as one chunk (none if it is empty).
 */
export function rawRequest(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string | readonly string[]> = {},
  chunkedBody?: string,
): Promise<RawResponse> {
  const url = new URL(base)
  const lines = [`${method} ${path} HTTP/1.1`, `Host: ${url.host}`, 'Connection: close']
  for (const [name, value] of Object.entries(headers)) {
    for (const line of typeof value === 'string' ? [value] : value) lines.push(`${name}: ${line}`)
  }
  if (chunkedBody !== undefined) lines.push('Transfer-Encoding: chunked')
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname)
    const chunks: Buffer[] = []
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.on('error', reject)
    socket.on('end', () => {
      const all = Buffer.concat(chunks)
      const end = all.indexOf('\r\n\r\n')
      if (end === -1) return reject(new Error('no complete header section'))
      const [statusLine = '', ...fieldLines] = all.subarray(0, end).toString('latin1').split('\r\n')
      const fields = new Map<string, string>()
      for (const line of fieldLines) {
        const colon = line.indexOf(':')
        const name = line.slice(0, colon).trim().toLowerCase()
        const value = line.slice(colon + 1).trim()
        fields.set(name, fields.has(name) ? `${fields.get(name)}, ${value}` : value)
      }
      resolve({ status: Number(statusLine.split(' ')[1]), headers: fields, body: all.subarray(end + 4) })
    })
    socket.write(`${lines.join('\r\n')}\r\n\r\n`)
    if (chunkedBody !== undefined) {
      const size = Buffer.byteLength(chunkedBody)
      socket.write(size === 0 ? '0\r\n\r\n' : `${size.toString(16)}\r\n${chunkedBody}\r\n0\r\n\r\n`)
    }
  })
}

/** Every field but Date, which may tick between two requests, in name order. */
export function withoutDate(headers: ReadonlyMap<string, string>): Record<string, string> {
  return Object.fromEntries([...headers].filter(([name]) => name !== 'date').sort(([a], [b]) => (a < b ? -1 : 1)))
}
