// A peer for the benchmark: the persons API as a team would write it in an afternoon with
// Express 5. Persons live in a Map; GET answers get their ETag from Express's own etag setting
// (its default, weak) and their 304 from req.fresh, both inside res.send; PUT compares If-Match by
// hand with the ETag Express would give the current representation. Plain JavaScript, so no
// loader stands between it and node.
//
//   node bench/peers/express-peer.mjs PERSONS   → prints {"url": "..."} once listening on port 0
import express from 'express'

const count = Number(process.argv[2] ?? 1000)

const persons = new Map()
for (let i = 0; i < count; i++) {
  const id = `p${String(i).padStart(5, '0')}`
  persons.set(id, { person_id: id, person_name: `Person ${i}`, change_date: new Date().toISOString() })
}

const app = express()
app.use(express.json())
// the ETag Express gives a body: res.json sends JSON.stringify(person) through this same function
const etagOf = (person) => app.get('etag fn')(JSON.stringify(person), 'utf8')

app.get('/persons/:id', (request, response) => {
  const person = persons.get(request.params.id)
  if (person === undefined) return response.status(404).json({ message: `Person with ID ${request.params.id} not found` })
  response.json(person)
})

app.get('/persons', (request, response) => {
  const limit = request.query.limit === undefined ? 100 : Number(request.query.limit)
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) return response.status(400).json({ message: 'limit must be 1-1000' })
  const after = typeof request.query.after === 'string' ? request.query.after : ''
  const sorted = [...persons.values()].sort((a, b) => (a.person_id < b.person_id ? -1 : a.person_id > b.person_id ? 1 : 0))
  response.json(sorted.filter((p) => p.person_id > after).slice(0, limit))
})

app.post('/persons', (request, response) => {
  const { person_id: id, person_name: name } = request.body ?? {}
  if (typeof id !== 'string' || typeof name !== 'string') return response.status(400).json({ message: 'person_id and person_name are mandatory' })
  if (persons.has(id)) return response.status(409).json({ message: `Person with ID ${id} already exists` })
  const person = { person_id: id, person_name: name, change_date: new Date().toISOString() }
  persons.set(id, person)
  response.status(201).location(`/persons/${id}`).json(person)
})

app.put('/persons/:id', (request, response) => {
  const person = persons.get(request.params.id)
  if (person === undefined) return response.status(404).json({ message: `Person with ID ${request.params.id} not found` })
  const ifMatch = request.get('if-match')
  if (ifMatch !== undefined && ifMatch !== etagOf(person)) {
    return response.status(412).json({ message: 'Data already changed, get recent resource data and ETag first' })
  }
  const name = request.body?.person_name
  if (typeof name !== 'string') return response.status(400).json({ message: 'Person name is mandatory' })
  const updated = { ...person, person_name: name, change_date: new Date().toISOString() }
  persons.set(person.person_id, updated)
  response.json(updated)
})

const server = app.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${server.address().port}` })}\n`)
})
server.keepAliveTimeout = 72_000
process.on('SIGTERM', () => server.close(() => process.exit(0)))
