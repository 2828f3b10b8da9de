// A peer for the benchmark: the persons API as a team would write it in an afternoon with
// Fastify 5 and @fastify/etag. Persons live in a Map; GET answers get their ETag (and their 304)
// from @fastify/etag, which hashes each response body; PUT compares If-Match by hand with the
// hash of the current representation. Plain JavaScript, so no loader stands between it and node.
//
//   node bench/peers/fastify-peer.mjs PERSONS [--compress]   → prints {"url": "..."} once listening
//
// PERSONS persons p00000, p00001, … are made at start, as the benchmark seeds ifmatch; --compress
// registers @fastify/compress too (after @fastify/etag, as its README's examples do).
import { createHash } from 'node:crypto'
import Fastify from 'fastify'
import fastifyEtag from '@fastify/etag'
import fastifyCompress from '@fastify/compress'

const count = Number(process.argv[2] ?? 1000)
const compress = process.argv.includes('--compress')

const persons = new Map()
for (let i = 0; i < count; i++) {
  const id = `p${String(i).padStart(5, '0')}`
  persons.set(id, { person_id: id, person_name: `Person ${i}`, change_date: new Date().toISOString() })
}

// what @fastify/etag puts in the ETag by default (sha1, base64, strong), so that If-Match can be
// compared with what a GET handed out; Fastify serialises a reply without a schema with JSON.stringify
const etagOf = (person) => `"${createHash('sha1').update(JSON.stringify(person)).digest('base64')}"`

const app = Fastify({ logger: false, keepAliveTimeout: 72_000 })
await app.register(fastifyEtag)
if (compress) await app.register(fastifyCompress)

app.get('/persons/:id', async (request, reply) => {
  const person = persons.get(request.params.id)
  if (person === undefined) return reply.code(404).send({ message: `Person with ID ${request.params.id} not found` })
  return person
})

app.get('/persons', async (request, reply) => {
  const limit = request.query.limit === undefined ? 100 : Number(request.query.limit)
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) return reply.code(400).send({ message: 'limit must be 1-1000' })
  const after = request.query.after ?? ''
  const sorted = [...persons.values()].sort((a, b) => (a.person_id < b.person_id ? -1 : a.person_id > b.person_id ? 1 : 0))
  return sorted.filter((p) => p.person_id > after).slice(0, limit)
})

app.post('/persons', async (request, reply) => {
  const { person_id: id, person_name: name } = request.body ?? {}
  if (typeof id !== 'string' || typeof name !== 'string') return reply.code(400).send({ message: 'person_id and person_name are mandatory' })
  if (persons.has(id)) return reply.code(409).send({ message: `Person with ID ${id} already exists` })
  const person = { person_id: id, person_name: name, change_date: new Date().toISOString() }
  persons.set(id, person)
  return reply.code(201).header('location', `/persons/${id}`).send(person)
})

app.put('/persons/:id', async (request, reply) => {
  const person = persons.get(request.params.id)
  if (person === undefined) return reply.code(404).send({ message: `Person with ID ${request.params.id} not found` })
  const ifMatch = request.headers['if-match']
  if (ifMatch !== undefined && ifMatch !== etagOf(person)) {
    return reply.code(412).send({ message: 'Data already changed, get recent resource data and ETag first' })
  }
  const name = request.body?.person_name
  if (typeof name !== 'string') return reply.code(400).send({ message: 'Person name is mandatory' })
  const updated = { ...person, person_name: name, change_date: new Date().toISOString() }
  persons.set(person.person_id, updated)
  return updated
})

await app.listen({ port: 0, host: '127.0.0.1' })
process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${app.server.address().port}` })}\n`)
process.on('SIGTERM', () => {
  app.close().then(() => process.exit(0))
})
