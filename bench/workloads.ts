/**
 * The workloads of the issue and the data they run on: persons p00000, p00001, … seeded through
 * the store module, one person read (get200, get304), one person per connection written (put),
 * and the first page of 1,000 (list200, list304).
 */
import type autocannon from 'autocannon'
import { SqlitePersonStore } from '../src/store/sqlite/sqlite-person-store.js'
import type { PersonStore } from '../src/store/person-store.js'
import type { Workload } from './load.js'
import { openStore } from '../src/store/open-store.js'

/** The collection page every list workload reads. */
export const PAGE = '/persons?limit=1000'
const GET_ID = 'p00500'
const SEED_BATCH = 500

const personId = (i: number): string => `p${String(i).padStart(5, '0')}`

/** Stores persons p<from>…p<to - 1> through the store module, as real writes. */
export async function seed(path: string, from: number, to: number): Promise<void> {
  // through the store module, so every person bumps the store-wide revision as a real write does;
  // NORMAL: the seed's own commits need not wait for the disk
  await seedStore(SqlitePersonStore.open(path, { synchronous: 'NORMAL' }), from, to)
}

/** Creates persons p<from>…p<to - 1> in `store`, then closes it. */
async function seedStore(store: PersonStore, from: number, to: number): Promise<void> {
  try {
    // a few hundred creates at once: the SQLite store commits each such batch as one group
    for (let start = from; start < to; start += SEED_BATCH) {
      const batch = Array.from({ length: Math.min(SEED_BATCH, to - start) }, (_, k) => start + k)
      await Promise.all(
        batch.map(async (i) => {
          const result = await store.create(personId(i), `Person ${i}`)
          if (!result.ok) throw new Error(`seeding ${personId(i)}: ${result.reason}`)
        }),
      )
    }
  } finally {
    await store.close()
  }
}

/**
 * The ETag a client sending what the load sends holds for `url`. The load sends no
 * Accept-Encoding, so the tag is the identity one: fetch would otherwise ask for gzip, and the
 * 304 workloads would revalidate a page with its gzip tag while asking for identity.
 */
async function etagOf(url: string): Promise<string> {
  const response = await fetch(url, { headers: { 'accept-encoding': 'identity' } })
  await response.arrayBuffer()
  const etag = response.headers.get('etag')
  if (response.status !== 200 || etag === null) throw new Error(`GET ${url}: ${response.status}, no ETag`)
  return etag
}

/**
 * The workloads of the issue, against the server at `base()` (ifmatch, or a peer serving the same
 * API); `put` uses one person per connection.
 */
export function ifmatchWorkloads(base: () => string, connections: number): Workload[] {
  const headers: Record<string, string> = {}
  const listHeaders: Record<string, string> = {}
  // each connection updates its own person, taking the new ETag from each response
  const writers = Array.from({ length: connections }, (_, i) => personId(i))
  const writerEtags: string[] = []
  let nextWriter = 0
  return [
    { name: 'get200', path: `/persons/${GET_ID}`, expect: 200 },
    {
      name: 'get304',
      path: `/persons/${GET_ID}`,
      expect: 304,
      headers,
      prepare: async () => {
        headers['if-none-match'] = await etagOf(`${base()}/persons/${GET_ID}`)
      },
    },
    {
      name: 'put',
      path: `/persons/${writers[0]}`,
      method: 'PUT',
      expect: 200,
      prepare: async () => {
        nextWriter = 0
        for (const [i, id] of writers.entries()) writerEtags[i] = await etagOf(`${base()}/persons/${id}`)
      },
      setupClient: (client: autocannon.Client) => {
        const i = nextWriter++ % writers.length
        const body = JSON.stringify({ person_name: `Writer ${i}` })
        client.setRequests([
          {
            method: 'PUT',
            path: `/persons/${writers[i]}`,
            setupRequest: (request) => ({ ...request, headers: { ...request.headers, 'if-match': writerEtags[i]!, 'content-type': 'application/json' }, body }),
            onResponse: (status, _body, _context, responseHeaders) => {
              // autocannon keeps the header names as sent: Express sends ETag, ifmatch etag
              const etag = Object.entries((responseHeaders ?? {}) as Record<string, string>).find(([name]) => name.toLowerCase() === 'etag')?.[1]
              if (status === 200 && etag !== undefined) writerEtags[i] = etag
            },
          },
        ])
      },
    },
    { name: 'list200', path: PAGE, expect: 200 },
    {
      name: 'list304',
      path: PAGE,
      expect: 304,
      headers: listHeaders,
      prepare: async () => {
        listHeaders['if-none-match'] = await etagOf(base() + PAGE)
      },
    },
  ]
}

/** Stores persons p<from>…p<to - 1> in the database at `url` (any driver) through the store module. */
export async function seedDatabase(url: string, from: number, to: number): Promise<void> {
  await seedStore(await openStore(url), from, to)
}
