// The ceiling of the wake-up: a bare node:http server that holds long polls in an array and, when
// the one person is written, answers every one of them with the same fixed bytes. No framework, no
// store, no hub: what one Node process takes to send that many answers on this machine. It speaks
// just enough of ifmatch's API for bench/wake-up.ts: the changes link of a page, the feed (held with
// wait=, a 304 for its ETag), GET and PUT of one person, and the two metrics the bench reads.
//
//   node bench/bare-long-poll.mjs   → prints {"url": "..."} once listening on port 0
import { createServer } from 'node:http'

// the header fields ifmatch sends with a feed answer, so that both put the same bytes on the wire
const SECURITY = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'x-permitted-cross-domain-policies': 'none',
  'content-security-policy': "default-src 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'; form-action 'self'; img-src 'self' data:",
}
const JSON_TYPE = 'application/json; charset=utf-8'
let revision = 1
let waiting = []

const tag = (r) => `"bare.${r}"`
const validators = (etag) => ({ etag, 'last-modified': new Date().toUTCString(), 'cache-control': 'no-cache' })

function feedAnswer() {
  const body = Buffer.from(
    JSON.stringify({
      changes: [{ person_id: 'wake-up', person_name: `Woken ${revision}`, change_date: new Date().toISOString(), etag: tag(revision) }],
      next: `bare.${revision}`,
      complete: true,
    }),
  )
  return { body, headers: { ...validators(`"bare.${revision}.feed"`), vary: 'accept', 'content-type': JSON_TYPE, ...SECURITY, 'content-length': body.length } }
}

function send(response, status, headers, body) {
  response.writeHead(status, {
    ...SECURITY,
    ...headers,
    ...(body === undefined ? {} : { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(body) }),
  })
  response.end(body)
}

const server = createServer((request, response) => {
  const url = new URL(request.url, 'http://x')
  if (url.pathname === '/metrics') {
    const text = `nodejs_heap_size_used_bytes ${process.memoryUsage().heapUsed}\nifmatch_changes_waiting{kind="long-poll"} ${waiting.length}\n`
    response.writeHead(200, { 'content-type': 'text/plain' })
    response.end(text)
    return
  }
  if (url.pathname === '/persons' && url.searchParams.has('since')) {
    const since = url.searchParams.get('since')
    if (url.searchParams.has('wait') && since === `bare.${revision}`) {
      waiting.push(response)
      response.on('close', () => {
        waiting = waiting.filter((r) => r !== response)
      })
      return
    }
    if (since === `bare.${revision}`) {
      const etag = `"bare.${revision}.empty"`
      if (request.headers['if-none-match'] === etag) send(response, 304, validators(etag))
      else send(response, 200, validators(etag), JSON.stringify({ changes: [], next: since, complete: true }))
      return
    }
    const answer = feedAnswer()
    response.writeHead(200, answer.headers)
    response.end(answer.body)
    return
  }
  if (url.pathname === '/persons') {
    send(response, 200, { ...validators('"bare.page"'), link: `</persons?since=bare.${revision}>; rel="changes"` }, '[]')
    return
  }
  if (url.pathname === '/persons/wake-up' && request.method === 'PUT') {
    request.resume()
    request.on('end', () => {
      revision++
      send(response, 200, validators(tag(revision)), JSON.stringify({ person_id: 'wake-up', person_name: `Woken ${revision}` }))
      // after the write's answer, as a store acknowledges a write and then notifies
      const answer = feedAnswer()
      const woken = waiting
      waiting = []
      for (const held of woken) {
        held.writeHead(200, answer.headers)
        held.end(answer.body)
      }
    })
    return
  }
  if (url.pathname === '/persons/wake-up') {
    send(response, 200, validators(tag(revision)), JSON.stringify({ person_id: 'wake-up' }))
    return
  }
  send(response, 404, {}, '{}')
})
server.keepAliveTimeout = 72_000
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address()
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}` })}\n`)
})
process.on('SIGTERM', () => {
  server.closeAllConnections()
  server.close(() => process.exit(0))
})
