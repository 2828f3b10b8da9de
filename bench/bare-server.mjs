// The ceiling: a bare node:http server that answers a fixed body, or a fixed 304 when
// If-None-Match names its fixed ETag. No routing, no store, no framework: what one Node process
// can answer on this machine. Plain JavaScript, so no loader stands between it and node.
//
//   node bench/bare-server.mjs PAGE_BYTES   → prints {"url": "..."} once listening on port 0
//
// GET /page answers a fixed body of PAGE_BYTES (the size of a 1,000-person page); any other path
// answers a fixed person-sized body. Both carry the fields ifmatch sends with a representation
// (but the security fields), and a 304 the fields ifmatch's 304 carries.
import { createServer } from 'node:http'

const pageBytes = Number(process.argv[2] ?? 80_000)
const person = Buffer.from('{"person_id":"p00042","person_name":"Person 42","change_date":"2026-11-25T10:11:52.200Z"}')
const page = Buffer.from(`[${'x'.repeat(Math.max(0, pageBytes - 2))}]`)
const ETAG = '"bare.1"'
const HEADERS = {
  etag: ETAG,
  'last-modified': 'Wed, 25 Nov 2026 10:11:52 GMT',
  'cache-control': 'no-cache',
  // API.md: every answer for a person or a page, and its 304, carries Vary: Accept-Encoding
  vary: 'accept-encoding',
}

const server = createServer((request, response) => {
  // a request body (PUT) is read and dropped, as any server must before it answers
  request.resume()
  if (request.headers['if-none-match'] === ETAG) {
    response.writeHead(304, HEADERS)
    response.end()
    return
  }
  const body = request.url === '/page' ? page : person
  response.writeHead(200, { ...HEADERS, 'content-type': 'application/json; charset=utf-8', 'content-length': body.length })
  response.end(body)
})
// Node's default keep-alive timeout (5 s) is shorter than a cell: keep connections for the run
server.keepAliveTimeout = 72_000
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address()
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}` })}\n`)
})
process.on('SIGTERM', () => server.close(() => process.exit(0)))
