/**
 * What each target of the peer benchmark answers to the conditional requests the figures leave
 * out: a few requests per RFC 9110 rule (and API.md's one leniency), each with the answer due,
 * sent to ifmatch and to each peer before the load. A peer's figures are shown beside what it
 * got wrong here, so that a fast wrong answer is not read as a fast right one.
 */
import { keepAliveAgent, rawRequest } from './raw-request.js'

/** One probe's outcome on one target. */
export interface ProbeResult {
  readonly name: string
  readonly short: string
  readonly kind: 'read' | 'write'
  /** What RFC 9110 (or API.md, where it says so) makes due. */
  readonly due: string
  readonly got: string
  readonly ok: boolean
}

interface Probe {
  readonly name: string
  /** A few words for the figures' table, said of a target that fails it. */
  readonly short: string
  readonly kind: 'read' | 'write'
  readonly due: string
  /** Sends the probe's requests to `base` about person `id`, and says what came back. */
  run(base: string, id: string): Promise<string>
}

const agent = keepAliveAgent(1)

async function get(base: string, id: string, headers: Record<string, string> = {}): Promise<{ status: number; etag: string }> {
  const r = await rawRequest(`${base}/persons/${id}`, { agent, headers })
  return { status: r.status, etag: String(r.headers.etag ?? '') }
}

async function put(base: string, id: string, name: string, headers: Record<string, string>): Promise<{ status: number; etag: string }> {
  const r = await rawRequest(`${base}/persons/${id}`, { agent, method: 'PUT', headers, body: JSON.stringify({ person_name: name }) })
  return { status: r.status, etag: String(r.headers.etag ?? '') }
}

const strip = (tag: string): string => tag.replace(/^W\//, '')
const unquote = (tag: string): string => strip(tag).replace(/^"|"$/g, '')

const PROBES: readonly Probe[] = [
  {
    name: 'ETag is strong (If-Match can use it)',
    short: 'weak ETags',
    kind: 'read',
    due: 'strong',
    run: async (base, id) => ((await get(base, id)).etag.startsWith('W/') ? 'weak' : 'strong'),
  },
  {
    name: 'If-None-Match: the current tag',
    short: 'no 304 for its own tag',
    kind: 'read',
    due: '304',
    run: async (base, id) => String((await get(base, id, { 'if-none-match': (await get(base, id)).etag })).status),
  },
  {
    name: 'If-None-Match: a list naming it second',
    short: '200 for an If-None-Match list',
    kind: 'read',
    due: '304',
    run: async (base, id) => String((await get(base, id, { 'if-none-match': `"other", ${(await get(base, id)).etag}` })).status),
  },
  {
    name: 'If-None-Match: *',
    short: '200 for If-None-Match: *',
    kind: 'read',
    due: '304',
    run: async (base, id) => String((await get(base, id, { 'if-none-match': '*' })).status),
  },
  {
    name: 'If-None-Match: the tag weakened by a proxy (W/)',
    short: '200 for a W/ tag',
    kind: 'read',
    due: '304',
    run: async (base, id) => String((await get(base, id, { 'if-none-match': `W/${strip((await get(base, id)).etag)}` })).status),
  },
  {
    name: "If-None-Match: the tag unquoted, as the seed's curl sends it (API.md, not RFC)",
    short: "200 for the seed's unquoted tag",
    kind: 'read',
    due: '304',
    run: async (base, id) => String((await get(base, id, { 'if-none-match': unquote((await get(base, id)).etag) })).status),
  },
  {
    name: 'GET after a write, with the tag from before it',
    short: '304 for a stale tag',
    kind: 'read',
    due: '200',
    run: async (base, id) => {
      const before = await get(base, id)
      const written = await put(base, id, 'probe written', { 'if-match': before.etag })
      if (written.status !== 200) return `write: ${written.status}`
      return String((await get(base, id, { 'if-none-match': before.etag })).status)
    },
  },
  {
    name: "a write's ETag is what the next GET returns",
    short: "write's ETag differs from the next GET's",
    kind: 'write',
    due: 'same',
    run: async (base, id) => {
      const written = await put(base, id, 'probe again', { 'if-match': (await get(base, id)).etag })
      return written.etag === (await get(base, id)).etag ? 'same' : `differs (${written.status})`
    },
  },
  {
    name: 'PUT without If-Match (RFC 6585 §3)',
    short: 'no 428 (a PUT without If-Match overwrites)',
    kind: 'write',
    due: '428',
    run: async (base, id) => String((await put(base, id, 'no precondition', {})).status),
  },
  {
    name: 'PUT with a stale If-Match',
    short: 'no 412 on a stale If-Match',
    kind: 'write',
    due: '412',
    run: async (base, id) => {
      const stale = (await get(base, id)).etag
      await put(base, id, 'made stale', { 'if-match': stale })
      return String((await put(base, id, 'lost update', { 'if-match': stale })).status)
    },
  },
  {
    name: 'PUT with If-Match: a list naming the current tag second',
    short: '412 for an If-Match list',
    kind: 'write',
    due: '200',
    run: async (base, id) => String((await put(base, id, 'listed', { 'if-match': `"other", ${(await get(base, id)).etag}` })).status),
  },
  {
    name: 'PUT with If-Match: *',
    short: '412 for If-Match: *',
    kind: 'write',
    due: '200',
    run: async (base, id) => String((await put(base, id, 'any', { 'if-match': '*' })).status),
  },
  {
    name: 'PUT with If-Match: a weak tag (never matches: strong comparison)',
    short: 'a weak tag satisfies If-Match',
    kind: 'write',
    due: '412',
    run: async (base, id) => String((await put(base, id, 'weak', { 'if-match': `W/${strip((await get(base, id)).etag)}` })).status),
  },
]

/** Sends every probe to `base`, about person `id` (which they update). */
export async function probe(base: string, id: string): Promise<ProbeResult[]> {
  const results: ProbeResult[] = []
  for (const p of PROBES) {
    let got: string
    try {
      got = await p.run(base, id)
    } catch (error) {
      got = `error: ${error instanceof Error ? error.message : String(error)}`
    }
    results.push({ name: p.name, short: p.short, kind: p.kind, due: p.due, got, ok: got === p.due })
  }
  return results
}

/** The short labels of the probes of `kind` a target failed; empty when it answered every one as due. */
export function failures(results: readonly ProbeResult[], kind: ProbeResult['kind']): string[] {
  return results.filter((r) => !r.ok && r.kind === kind).map((r) => r.short)
}
