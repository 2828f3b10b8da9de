/**
 * Answers written on node:http itself, where Fastify never sees a request: what Node's HTTP parser
 * refused, and an `Expect` it cannot meet. They are problems with the security headers, like
 * every other answer.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { problems } from './problems.js'
import { ALL_SECURITY_HEADERS } from './security-headers.js'

/**
 * Answers what Node's HTTP parser refused before there was a request at all (a header section
 * over 16 KiB, bad framing) with a problem and the security headers, on the raw socket, which is
 * then closed.
 */
export function answerClientError(error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === 'ECONNRESET' || !socket.writable) return
  // an answer already under way cannot be followed by another one
  if (socket.bytesWritten > 0) {
    socket.destroy()
    return
  }
  // API.md: a huge validator header is a 400, never a stall
  const problem =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? problems.requestTimeout()
      : problems.badRequest(error.code === 'HPE_HEADER_OVERFLOW' ? 'The request header section is larger than 16 KiB' : 'The request is not valid HTTP/1.1')
  const body = JSON.stringify(problem.toJSON())
  const headers = Object.entries(ALL_SECURITY_HEADERS).map(([name, value]) => `${name}: ${value}`)
  socket.end(
    [
      `HTTP/1.1 ${problem.status} ${problem.title}`,
      'Content-Type: application/problem+json; charset=utf-8',
      `Content-Length: ${Buffer.byteLength(body)}`,
      ...headers,
      'Connection: close',
      '',
      // RFC 9110 §9.3.2: no content in an answer to HEAD (the bytes Node could not parse still say
      // which method they began with)
      isHeadRequest(error) ? '' : body,
    ].join('\r\n'),
  )
}

function isHeadRequest(error: NodeJS.ErrnoException & { rawPacket?: unknown }): boolean {
  return Buffer.isBuffer(error.rawPacket) && error.rawPacket.subarray(0, 5).toString('latin1') === 'HEAD '
}

/**
 * RFC 9110 §10.1.1: an expectation other than 100-continue cannot be met; the 417 is a problem
 * with the security headers, like every other answer.
 */
export function answerExpectation(_request: IncomingMessage, response: ServerResponse): void {
  const body = JSON.stringify(problems.expectationFailed().toJSON())
  response.writeHead(417, {
    ...ALL_SECURITY_HEADERS,
    'content-type': 'application/problem+json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
  })
  response.end(body)
}
