/**
 * Writes that conflict: many clients update a few persons, each by reading a person, adding one to
 * the counter in its name and sending the PUT with the ETag it read in If-Match, and reading again
 * after a 412. Every acknowledged update adds exactly one, so at the end the counters must sum to
 * the number of 200s: any shortfall is a lost update. The targets take turns round by round, in
 * alternating order, as the other cells do.
 */
import { performance } from 'node:perf_hooks'
import { median } from './load.js'
import { keepAliveAgent, rawRequest } from './raw-request.js'

/** One server the conflicting writes run against. */
export interface ConflictTarget {
  readonly name: string
  readonly baseUrl: string
  readonly serverCpuMs: () => number
}

/** One target's figures over all its rounds. */
export interface ConflictResult {
  readonly name: string
  /** Acknowledged updates (200s) per second: the median round's. */
  readonly updatesPerSecond: number
  readonly updatesPerSecondRounds: readonly number[]
  /** 412s per acknowledged update, over all rounds. */
  readonly conflictsPerUpdate: number
  /** Server CPU per acknowledged update, µs (reads and 412s included), over all rounds. */
  readonly serverCpuMicrosPerUpdate: number
  readonly acknowledged: number
  /** The sum of the persons' counters at the end. */
  readonly counted: number
  /** acknowledged - counted: updates acknowledged and then lost. */
  readonly lost: number
  /** Answers other than 200 to a read or 200/412 to a write, and failed requests. */
  readonly unexpected: number
}

export interface ConflictOptions {
  readonly clients: number
  readonly persons: number
  readonly secondsPerRound: number
  readonly rounds: number
}

const COUNTER = /^counter (\d+)$/

const idsOf = (target: ConflictTarget, persons: number): string[] =>
  // after every p… id, so that the pages the other cells read do not change
  Array.from({ length: persons }, (_, k) => `zc-${target.name.replace(/[^A-Za-z0-9]+/g, '-')}-${k}`)

async function createPersons(target: ConflictTarget, ids: readonly string[]): Promise<void> {
  const agent = keepAliveAgent()
  try {
    for (const id of ids) {
      const r = await rawRequest(`${target.baseUrl}/persons`, { agent, method: 'POST', body: JSON.stringify({ person_id: id, person_name: 'counter 0' }) })
      if (r.status !== 201) throw new Error(`${target.name}: POST /persons ${id}: ${r.status} ${r.body.toString('utf8')}`)
    }
  } finally {
    agent.destroy()
  }
}

async function counterSum(target: ConflictTarget, ids: readonly string[]): Promise<number> {
  const agent = keepAliveAgent()
  try {
    let sum = 0
    for (const id of ids) {
      const r = await rawRequest(`${target.baseUrl}/persons/${id}`, { agent })
      const match = COUNTER.exec((JSON.parse(r.body.toString('utf8')) as { person_name: string }).person_name)
      if (r.status !== 200 || match === null) throw new Error(`${target.name}: GET /persons/${id}: ${r.status} ${r.body.toString('utf8')}`)
      sum += Number(match[1])
    }
    return sum
  } finally {
    agent.destroy()
  }
}

interface RoundFigures {
  updates: number
  conflicts: number
  unexpected: number
  seconds: number
  cpuMs: number
}

/** `clients` loops, client i on person i mod ids.length, for `seconds`. */
async function runRound(target: ConflictTarget, ids: readonly string[], clients: number, seconds: number): Promise<RoundFigures> {
  const figures: RoundFigures = { updates: 0, conflicts: 0, unexpected: 0, seconds: 0, cpuMs: 0 }
  const cpuBefore = target.serverCpuMs()
  const started = performance.now()
  const deadline = started + seconds * 1000
  const client = async (i: number): Promise<void> => {
    const agent = keepAliveAgent()
    const url = `${target.baseUrl}/persons/${ids[i % ids.length]!}`
    try {
      while (performance.now() < deadline) {
        try {
          const read = await rawRequest(url, { agent })
          const match = read.status === 200 ? COUNTER.exec((JSON.parse(read.body.toString('utf8')) as { person_name: string }).person_name) : null
          if (match === null || read.headers.etag === undefined) {
            figures.unexpected++
            continue
          }
          const write = await rawRequest(url, {
            agent,
            method: 'PUT',
            headers: { 'if-match': read.headers.etag },
            body: JSON.stringify({ person_name: `counter ${Number(match[1]) + 1}` }),
          })
          if (write.status === 200) figures.updates++
          else if (write.status === 412) figures.conflicts++
          else figures.unexpected++
        } catch {
          figures.unexpected++
        }
      }
    } finally {
      agent.destroy()
    }
  }
  await Promise.all(Array.from({ length: clients }, (_, i) => client(i)))
  figures.seconds = (performance.now() - started) / 1000
  figures.cpuMs = target.serverCpuMs() - cpuBefore
  return figures
}

/**
 * Creates the persons on every target, runs the rounds (each target in turn, order alternating),
 * then checks each target's counters against its acknowledged updates.
 */
export async function measureConflicts(
  targets: readonly ConflictTarget[],
  options: ConflictOptions,
): Promise<{ results: ConflictResult[]; rounds: number[][] }> {
  const ids = targets.map((t) => idsOf(t, options.persons))
  for (const [j, target] of targets.entries()) await createPersons(target, ids[j]!)
  const perTarget: RoundFigures[][] = targets.map(() => [])
  for (let i = 0; i < options.rounds; i++) {
    const order = targets.map((_, j) => j)
    if (i % 2 === 1) order.reverse()
    for (const j of order) {
      await new Promise((resolve) => setTimeout(resolve, 200))
      perTarget[j]!.push(await runRound(targets[j]!, ids[j]!, options.clients, options.secondsPerRound))
    }
  }
  const results: ConflictResult[] = []
  for (const [j, target] of targets.entries()) {
    const rounds = perTarget[j]!
    const sum = (f: (r: RoundFigures) => number): number => rounds.reduce((a, r) => a + f(r), 0)
    const acknowledged = sum((r) => r.updates)
    const counted = await counterSum(target, ids[j]!)
    const rates = rounds.map((r) => r.updates / r.seconds)
    results.push({
      name: target.name,
      updatesPerSecond: median(rates),
      updatesPerSecondRounds: rates,
      conflictsPerUpdate: sum((r) => r.conflicts) / Math.max(1, acknowledged),
      serverCpuMicrosPerUpdate: (sum((r) => r.cpuMs) * 1000) / Math.max(1, acknowledged),
      acknowledged,
      counted,
      lost: acknowledged - counted,
      unexpected: sum((r) => r.unexpected),
    })
  }
  // updates/s of each target, round by round, for ratios taken within a round
  return { results, rounds: perTarget.map((rounds) => rounds.map((r) => r.updates / r.seconds)) }
}
