/**
 * `npm run bench`: ifmatch against the bare node:http ceiling and against the same persons API
 * written with Fastify + @fastify/etag and with Express 5, on SQLite and on PostgreSQL, with one
 * and two server processes, under conflicting writes, and with compressed pages; then the changes
 * feed's benchmark. Prints markdown tables and writes them, with every round, under bench/results/
 * (latest.md, latest.json; changes.md, changes.json). See docs/performance.md.
 *
 *   npm run bench                       everything (about ten minutes on a 2-core machine)
 *   npm run bench -- --quick            one short round of everything, written to .bench/
 *   npm run bench -- --peers-only       ifmatch beside Fastify and Express (SQLite, one process)
 *   npm run bench -- --postgres-only    every workload on PostgreSQL, one process and --workers 2
 *   npm run bench -- --conflicts-only   32 clients updating 8 persons with If-Match, retrying on 412
 *   npm run bench -- --compression-only the 1,000-person page identity, gzip and br
 *   npm run bench -- --changes-only     the changes feed's (bench/changes.ts has its own options)
 *   npm run bench -- --only peers,workers   any of: peers, sqlite10k, workers, postgres, conflicts, compression, changes
 *   npm run bench -- --no-postgres / --no-workers / --no-changes   leave a part out
 *   npm run bench -- --synchronous FULL SQLite commits fsync'd before each acknowledgement
 *
 * A partial run (--only or an --…-only flag) is written to .bench/, so that bench/results/ always
 * holds one whole run. Every cell runs its targets round by round, back to back, in alternating
 * order (load.ts: measureInterleaved), and a ratio between two targets is the median of their
 * rounds' ratios: this machine's speed drifts by tens of percent within a minute.
 *
 * Other options: --duration S (seconds per target and cell, split into the rounds), --warmup S,
 * --rounds N, --connections N.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { failures, probe, type ProbeResult } from './conformance.js'
import { measureConflicts, type ConflictResult, type ConflictTarget } from './conflicts.js'
import { measureCompression, type CompressionResult } from './compression.js'
import {
  measureInterleaved,
  measurePaired,
  median,
  roundRatios,
  sideSummary,
  type LoadOptions,
  type Measurement,
  type NamedSide,
  type Workload,
} from './load.js'
import { createBenchDatabase, validatorRoundTrip, type BenchDatabase, type RoundTrip } from './postgres-database.js'
import { CAN_PIN, ROOT, machineFigures, pinSelf, postgresCpuMs, startBare, startIfmatch, startPeer, type RunningProcess } from './processes.js'
import { PAGE, ifmatchWorkloads, seed, seedDatabase } from './workloads.js'
import { changesBench, changesBenchDefaults } from './changes-bench.js'

const SECTIONS = ['peers', 'sqlite10k', 'workers', 'postgres', 'conflicts', 'compression', 'changes'] as const
type Section = (typeof SECTIONS)[number]

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    rounds: { type: 'string' },
    connections: { type: 'string', default: '10' },
    synchronous: { type: 'string', default: 'NORMAL' },
    only: { type: 'string' },
    'peers-only': { type: 'boolean', default: false },
    'postgres-only': { type: 'boolean', default: false },
    'conflicts-only': { type: 'boolean', default: false },
    'compression-only': { type: 'boolean', default: false },
    'changes-only': { type: 'boolean', default: false },
    'no-workers': { type: 'boolean', default: false },
    'no-postgres': { type: 'boolean', default: false },
    'no-changes': { type: 'boolean', default: false },
  },
})

function selectedSections(): { sections: Set<Section>; partial: boolean } {
  const named =
    flags.only
      ?.split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '') ?? []
  for (const name of ['peers', 'postgres', 'conflicts', 'compression', 'changes'] as const) {
    if (flags[`${name}-only`] === true) named.push(name)
  }
  for (const name of named) {
    if (!(SECTIONS as readonly string[]).includes(name)) throw new Error(`--only: no part ${name}; the parts are ${SECTIONS.join(', ')}`)
  }
  const sections = new Set<Section>(named.length > 0 ? (named as Section[]) : SECTIONS)
  if (flags['no-workers'] === true) sections.delete('workers')
  if (flags['no-postgres'] === true) sections.delete('postgres')
  if (flags['no-changes'] === true) sections.delete('changes')
  return { sections, partial: named.length > 0 }
}

const { sections, partial } = selectedSections()
const quick = flags.quick === true
const load: LoadOptions = {
  connections: Number(flags.connections),
  durationSeconds: Number(flags.duration ?? (quick ? 1 : 4.5)),
  warmupSeconds: Number(flags.warmup ?? 0.3),
  // many short rounds rather than a few long ones: on this shared machine a neighbour's burst
  // spoils a round or two, which a median of nine leaves out (with five, rounds of one cell had
  // spread from 0.67 to 1.00 of the ceiling)
  rounds: Number(flags.rounds ?? (quick ? 1 : 9)),
}
const synchronous = flags.synchronous === 'FULL' ? 'FULL' : 'NORMAL'
const conflictOptions = { clients: 32, persons: 8, secondsPerRound: 1, rounds: quick ? 1 : 5 }
const PERSONS = 1000

/** The names the tables give the targets. */
const IFMATCH = 'ifmatch'
const FASTIFY = 'Fastify + @fastify/etag'
const EXPRESS = 'Express 5'
const CEILING = 'bare node:http'
const SAME_SIZE = 'bare node:http, same-size body'
const WORKERS2 = 'ifmatch --workers 2'
const PG = 'ifmatch on PostgreSQL'
const PG2 = 'ifmatch on PostgreSQL --workers 2'

/** Goals of issue 13 (ratios within one run) and the earlier per-workload targets against the ceiling. */
const GOALS = {
  overFastify304: 1.3,
  overCeiling304: 0.85,
  overFastifyGet200: 1,
  overFastifyList200: 5,
  conflictsOverFastify: 0.5,
  postgresGet304OverSqlite: 0.5,
  compressedBytes: 1 / 5,
  compressedRate: 0.9,
}
const EARLIER_TARGETS: Record<string, number> = { get200: 0.75, put: 0.5, list200: 0.3 }

/** One target's figures in an interleaved cell, with its ratio to every other target of the cell. */
interface Figures extends Measurement {
  readonly name: string
  readonly versus: Record<string, { readonly ratio: number; readonly rounds: readonly number[] }>
}

interface Cell {
  readonly section: Section
  readonly workload: string
  readonly persons: number
  readonly figures: readonly Figures[]
}

/** The 10,000-person cells of the earlier bench: ifmatch paired with its ceiling only. */
interface PairedCell extends Measurement {
  readonly workload: string
  readonly persons: number
  readonly ceilingRequestsPerSecond: number
  readonly ratio: number
  readonly ratios: readonly number[]
  readonly cpuRatio: number
  readonly ratioSameSize?: number
}

function log(message: string): void {
  process.stderr.write(`${message}\n`)
}

const fmt = (n: number | undefined, digits = 2): string => (n === undefined || Number.isNaN(n) ? '' : n.toFixed(digits))
const list = (values: readonly number[]): string => values.map((v) => fmt(v)).join(', ')

async function interleavedCell(section: Section, workload: string, persons: number, sides: readonly NamedSide[]): Promise<Cell> {
  const measured = await measureInterleaved(sides, load)
  const figures = sides.map((side): Figures => {
    const versus: Record<string, { ratio: number; rounds: number[] }> = {}
    for (const other of sides) {
      if (other === side) continue
      const rounds = roundRatios(measured, side.name, other.name)
      versus[other.name] = { ratio: median(rounds), rounds }
    }
    return { name: side.name, ...sideSummary(measured, side.name), versus }
  })
  for (const f of figures) {
    const ceiling = f.versus[CEILING]
    log(
      `  ${workload.padEnd(8)} ${f.name.padEnd(34)} ${f.requestsPerSecond.toFixed(0).padStart(6)} req/s  p50 ${f.latencyP50Ms} p99 ${f.latencyP99Ms} ms  ` +
        `CPU ${fmt(f.serverCpuMicrosPerRequest, 1)} µs/req` +
        (ceiling === undefined ? '' : `  ÷ ceiling ${fmt(ceiling.ratio)} (${list(ceiling.rounds)})`) +
        (f.unexpected > 0 ? `  answers ${JSON.stringify(f.statuses)}` : ''),
    )
  }
  return { section, workload, persons, figures }
}

/** ifmatch's workload `name` against each server, as sides of one cell. */
function sidesFor(
  name: string,
  servers: readonly (readonly [string, RunningProcess])[],
  ceiling: RunningProcess | undefined,
  pageSameSize = false,
): NamedSide[] {
  const sides: NamedSide[] = servers.map(([label, server]) => ({
    name: label,
    baseUrl: server.url,
    serverCpuMs: () => server.cpuMs(),
    // on PostgreSQL, part of a request's work is done by the database's processes: counted apart
    ...(label === PG || label === PG2 ? { databaseCpuMs: postgresCpuMs } : {}),
    workload: ifmatchWorkloads(() => server.url, load.connections).find((w) => w.name === name)!,
  }))
  if (ceiling !== undefined) {
    const w = ifmatchWorkloads(() => '', load.connections).find((x) => x.name === name)!
    const bare: Workload =
      w.expect === 304
        ? { name: 'bare304', path: '/persons/x', expect: 304, headers: { 'if-none-match': '"bare.1"' } }
        : { name: 'bare200', path: '/persons/x', expect: 200 }
    sides.push({ name: CEILING, baseUrl: ceiling.url, serverCpuMs: () => ceiling.cpuMs(), workload: bare })
    if (pageSameSize)
      sides.push({ name: SAME_SIZE, baseUrl: ceiling.url, serverCpuMs: () => ceiling.cpuMs(), workload: { name: 'bare200page', path: '/page', expect: 200 } })
  }
  return sides
}

const WORKLOADS = ['get200', 'get304', 'put', 'list200', 'list304'] as const

async function main(): Promise<void> {
  const started = Date.now()
  const pinned = pinSelf('1')
  const cpu0 = pinned ? '0' : undefined
  const bothCpus = CAN_PIN ? '0,1' : undefined
  const dir = mkdtempSync(join(tmpdir(), 'ifmatch-bench-'))
  const env = { SQLITE_SYNCHRONOUS: synchronous }
  const load0 = loadavg()
  log(
    `ifmatch bench: ${[...sections].join(', ')}; ${load.connections} connections, ${load.warmupSeconds} s warm-up + ${load.durationSeconds} s per target and cell ` +
      `in ${load.rounds} rounds, synchronous=${synchronous}, ${pinned ? 'servers on CPU 0, load generator on CPU 1' : 'not pinned (no taskset or one core)'}`,
  )
  const running: RunningProcess[] = []
  const seeded = new Set<string>()
  /** Seeds the SQLite file `name` in the run's directory with `persons` persons, the first time only. */
  const seedOnce = async (name: string, persons: number): Promise<void> => {
    if (seeded.has(name)) return
    seeded.add(name)
    await seed(join(dir, name), 0, persons)
  }
  const cache = new Map<string, Promise<RunningProcess>>()
  let database: BenchDatabase | undefined
  /** Starts a server the first time a section needs it, and keeps it until that section is done. */
  const server = (key: string, start: () => Promise<RunningProcess>): Promise<RunningProcess> => {
    let pending = cache.get(key)
    if (pending === undefined) {
      pending = start().then((s) => {
        running.push(s)
        return s
      })
      cache.set(key, pending)
    }
    return pending
  }
  const sqlite1 = (): Promise<RunningProcess> =>
    server('sqlite1', async () => {
      await seedOnce('one.sqlite', PERSONS)
      return startIfmatch(`sqlite:${join(dir, 'one.sqlite')}`, 1, cpu0, env)
    })
  const sqlite2 = (): Promise<RunningProcess> =>
    server('sqlite2', async () => {
      await seedOnce('two.sqlite', PERSONS)
      return startIfmatch(`sqlite:${join(dir, 'two.sqlite')}`, 2, bothCpus, env)
    })
  const postgresUrl = async (): Promise<string> => {
    if (database === undefined) {
      database = await createBenchDatabase()
      await seedDatabase(database.url, 0, PERSONS)
    }
    return database.url
  }
  const pg1 = (): Promise<RunningProcess> => server('pg1', async () => startIfmatch(await postgresUrl(), 1, cpu0))
  const pg2 = (): Promise<RunningProcess> => server('pg2', async () => startIfmatch(await postgresUrl(), 2, bothCpus))
  const fastify = (): Promise<RunningProcess> => server('fastify', () => startPeer('fastify', PERSONS, cpu0))
  const express = (): Promise<RunningProcess> => server('express', () => startPeer('express', PERSONS, cpu0))
  const fastifyCompress = (): Promise<RunningProcess> => server('fastify-compress', () => startPeer('fastify', PERSONS, cpu0, ['--compress']))
  const bare = (): Promise<RunningProcess> =>
    server('bare', async () => {
      const page = await (await fetch((await sqlite1()).url + PAGE, { headers: { 'accept-encoding': 'identity' } })).arrayBuffer()
      return startBare(page.byteLength, cpu0)
    })

  const cells: Cell[] = []
  const paired: PairedCell[] = []
  const probes: Record<string, ProbeResult[]> = {}
  let roundTrip: RoundTrip | undefined
  let conflicts: { results: ConflictResult[]; rounds: number[][] } | undefined
  let compression: CompressionResult | undefined
  const sectionSeconds: Record<string, number> = {}
  let sectionStarted = Date.now()
  /**
   * Notes how long the part just finished took (servers it started and seeded included), and
   * stops its servers; a later section starts its own again. An idle Node server still wakes
   * every 10 ms (prom-client's event-loop delay monitor), and idle servers left on CPU 0 from
   * earlier sections made the servers measured later pay up to 40 % more CPU per request.
   */
  const done = async (section: Section): Promise<void> => {
    sectionSeconds[section] = Math.round((Date.now() - sectionStarted) / 1000)
    log(`  (${section}: ${sectionSeconds[section]} s)`)
    for (const s of running.splice(0)) await s.stop()
    cache.clear()
    sectionStarted = Date.now()
  }
  try {
    if (sections.has('peers')) {
      log(`ifmatch (SQLite, one process) beside its peers and the ceiling, ${PERSONS} persons, round by round`)
      const targets = [
        [IFMATCH, await sqlite1()],
        [FASTIFY, await fastify()],
        [EXPRESS, await express()],
      ] as const
      // the probes write p00990, which the page workloads read: their ETags are taken after
      for (const [name, s] of targets) probes[name] = await probe(s.url, 'p00990')
      for (const [name, results] of Object.entries(probes)) {
        const failed = results.filter((r) => !r.ok)
        log(`  probes, ${name}: ${failed.length === 0 ? 'all as due' : failed.map((r) => `${r.name}: ${r.got} (due ${r.due})`).join('; ')}`)
      }
      for (const w of WORKLOADS) cells.push(await interleavedCell('peers', w, PERSONS, sidesFor(w, targets, await bare(), w === 'list200')))
      await done('peers')
    }

    if (sections.has('sqlite10k')) {
      log('ifmatch (SQLite, one process), pages at 10,000 persons, each cell paired with its ceiling')
      await seedOnce('ten.sqlite', 10_000)
      const big = await server('sqlite10k', () => startIfmatch(`sqlite:${join(dir, 'ten.sqlite')}`, 1, cpu0, env))
      const ceiling = await bare()
      for (const w of ifmatchWorkloads(() => big.url, load.connections).filter((x) => x.name.startsWith('list'))) {
        const bareWorkload: Workload =
          w.expect === 304
            ? { name: 'bare304', path: '/persons/x', expect: 304, headers: { 'if-none-match': '"bare.1"' } }
            : { name: 'bare200', path: '/persons/x', expect: 200 }
        const ours = { baseUrl: big.url, workload: w, serverCpuMs: () => big.cpuMs() }
        const p = await measurePaired(ours, { baseUrl: ceiling.url, workload: bareWorkload, serverCpuMs: () => ceiling.cpuMs() }, load)
        const same =
          w.name === 'list200'
            ? await measurePaired(
                ours,
                { baseUrl: ceiling.url, workload: { name: 'bare200page', path: '/page', expect: 200 }, serverCpuMs: () => ceiling.cpuMs() },
                load,
              )
            : undefined
        log(
          `  ${w.name} at 10,000: ${p.ours.requestsPerSecond.toFixed(0)} req/s, ÷ ceiling ${fmt(p.ratio)} (${list(p.ratios)})` +
            (same === undefined ? '' : `; ÷ same-size body ${fmt(same.ratio)}`),
        )
        paired.push({
          workload: w.name,
          persons: 10_000,
          ...p.ours,
          ceilingRequestsPerSecond: p.ceiling.requestsPerSecond,
          ratio: p.ratio,
          ratios: p.ratios,
          cpuRatio: p.cpuRatio,
          ...(same === undefined ? {} : { ratioSameSize: same.ratio }),
        })
      }
      await done('sqlite10k')
    }

    if (sections.has('workers')) {
      log('ifmatch on SQLite, --workers 2 (two processes, shared locking) beside one process and the ceiling')
      const targets = [
        [WORKERS2, await sqlite2()],
        [IFMATCH, await sqlite1()],
      ] as const
      for (const w of WORKLOADS) cells.push(await interleavedCell('workers', w, PERSONS, sidesFor(w, targets, await bare())))
      await done('workers')
    }

    if (sections.has('postgres')) {
      log('ifmatch on PostgreSQL (a fresh database), one process and --workers 2, beside SQLite and the ceiling')
      const targets = [
        [PG, await pg1()],
        [PG2, await pg2()],
        [IFMATCH, await sqlite1()],
      ] as const
      for (const w of WORKLOADS) cells.push(await interleavedCell('postgres', w, PERSONS, sidesFor(w, targets, await bare())))
      roundTrip = await validatorRoundTrip(await postgresUrl(), 'p00500', quick ? 500 : 2000)
      log(`  one validator read (${roundTrip.statement}) from this process: p50 ${fmt(roundTrip.p50Micros, 0)} µs, mean ${fmt(roundTrip.meanMicros, 0)} µs`)
      await done('postgres')
    }

    if (sections.has('conflicts')) {
      log(`conflicting writes: ${conflictOptions.clients} clients updating ${conflictOptions.persons} persons (read, PUT with If-Match, again after a 412)`)
      const targets: ConflictTarget[] = []
      const add = (name: string, s: RunningProcess): void => {
        targets.push({ name, baseUrl: s.url, serverCpuMs: () => s.cpuMs() })
      }
      add(IFMATCH, await sqlite1())
      if (flags['no-workers'] !== true) add(WORKERS2, await sqlite2())
      if (flags['no-postgres'] !== true) {
        add(PG, await pg1())
        if (flags['no-workers'] !== true) add(PG2, await pg2())
      }
      add(FASTIFY, await fastify())
      add(EXPRESS, await express())
      conflicts = await measureConflicts(targets, conflictOptions)
      for (const r of conflicts.results) {
        log(
          `  ${r.name.padEnd(34)} ${fmt(r.updatesPerSecond, 0).padStart(6)} updates/s (${r.updatesPerSecondRounds.map((x) => x.toFixed(0)).join(', ')}), ` +
            `${fmt(r.conflictsPerUpdate)} 412s per update, ${r.acknowledged} acknowledged, counters sum to ${r.counted}, lost ${r.lost}` +
            (r.unexpected > 0 ? `, ${r.unexpected} unexpected` : ''),
        )
      }
      await done('conflicts')
    }

    if (sections.has('compression')) {
      log('the 1,000-person page identity, gzip and br: ifmatch (SQLite) and Fastify + @fastify/etag + @fastify/compress, round by round')
      const one = await sqlite1()
      const free = await server('sqlite-free', async () => {
        await seedOnce('free.sqlite', PERSONS)
        return startIfmatch(`sqlite:${join(dir, 'free.sqlite')}`, 1, bothCpus, env)
      })
      compression = await measureCompression(one, await fastifyCompress(), load, quick ? 2 : 4, [
        { label: pinned ? 'one core (pinned to CPU 0, as in every cell: its thread pool shares that core with its event loop)' : 'not pinned', server: one },
        { label: 'two cores (not pinned: the thread pool can use the other core)', server: free },
      ])
      for (const a of compression.answers)
        log(`  ${a.server} ${a.coding}: ${a.bytes} bytes on the wire (body ${a.bodyBytes}, ${a.sent}), ETag ${a.etag}, revalidated: ${a.revalidated}`)
      for (const r of compression.rates)
        log(
          `  ${r.server} ${r.coding}: ${r.requestsPerSecond.toFixed(0)} req/s, ÷ identity ${fmt(r.ratio)} (${list(r.ratios)}), CPU ${fmt(r.serverCpuMicrosPerRequest, 1)} µs/req`,
        )
      log(`  compressing the page: gzip ${fmt(compression.compressMs.gzip.median)} ms, br ${fmt(compression.compressMs.br.median)} ms`)
      for (const b of compression.bursts) {
        log(
          `  event loop's max delay in a burst, ${b.label}: identity ${fmt(b.identity.median, 1)} ms, compressed ${fmt(b.compressed.median, 1)} ms, cached ${fmt(b.cached.median, 1)} ms`,
        )
      }
      await done('compression')
    }
  } finally {
    for (const s of running) await s.stop()
    await database?.drop().catch((error: unknown) => log(`could not drop the PostgreSQL database: ${String(error)}`))
    rmSync(dir, { recursive: true, force: true })
  }

  const report = {
    date: new Date().toISOString(),
    machine: machineFigures(load0),
    settings: {
      sections: [...sections],
      ...load,
      synchronous,
      pinned,
      conflicts: conflictOptions,
      seconds: Math.round((Date.now() - started) / 1000),
      sectionSeconds,
    },
    probes,
    cells,
    paired,
    postgresRoundTrip: roundTrip,
    conflicts,
    compression,
  }
  const markdown = renderMarkdown(report)
  process.stdout.write(markdown)
  const outDir = quick || partial ? join(ROOT, '.bench') : join(ROOT, 'bench', 'results')
  const base = quick ? 'quick' : partial ? `partial-${[...sections].join('-')}` : 'latest'
  mkdirSync(outDir, { recursive: true })
  writeFileSync(join(outDir, `${base}.json`), `${JSON.stringify(report, null, 2)}\n`)
  writeFileSync(join(outDir, `${base}.md`), markdown)
  log(`written to ${join(outDir, base)}.{md,json} in ${report.settings.seconds} s`)
  // a peer's wrong answers are what it is; ifmatch's would void the figures
  const ours = [IFMATCH, WORKERS2, PG, PG2]
  const wrong =
    cells.some((c) => c.figures.some((f) => ours.includes(f.name) && f.unexpected > 0)) ||
    paired.some((c) => c.unexpected > 0) ||
    (conflicts?.results.some((r) => r.lost !== 0 || (ours.includes(r.name) && r.unexpected > 0)) ?? false)
  if (wrong) {
    log('ifmatch answered unexpectedly, or an update was lost: the figures above do not count')
    process.exitCode = 1
  }
}

type Report = {
  date: string
  machine: Record<string, unknown>
  settings: Record<string, unknown>
  probes: Record<string, ProbeResult[]>
  cells: Cell[]
  paired: PairedCell[]
  postgresRoundTrip: RoundTrip | undefined
  conflicts: { results: ConflictResult[]; rounds: number[][] } | undefined
  compression: CompressionResult | undefined
}

/** What a peer's figures leave out, by workload: read from its code, and from the probes. */
const PEER_NOTES: Record<string, { read: string; write: string }> = {
  [FASTIFY]: {
    read: 'builds, serialises and SHA-1-hashes the whole body for every answer, 304s included',
    write: 'a Map in memory: nothing durable, one process only',
  },
  [EXPRESS]: {
    read: 'builds, serialises and SHA-1-hashes the whole body for every answer, 304s included',
    write: 'a Map in memory: nothing durable, one process only',
  },
}

function answers(f: Figures): string {
  const total = Object.values(f.statuses).reduce((a, b) => a + b, 0)
  const entries = Object.entries(f.statuses).filter(([, n]) => n > 0)
  if (entries.length === 1) return `all ${entries[0]![0]}`
  return entries.map(([code, n]) => `${code} ${((100 * n) / Math.max(1, total)).toFixed(1)} %`).join(', ')
}

function wrongs(name: string, workload: string, probes: Record<string, ProbeResult[]>): string {
  const kind = workload === 'put' ? 'write' : 'read'
  const found = probes[name] === undefined ? [] : failures(probes[name], kind)
  const note = PEER_NOTES[name]?.[kind]
  const all = [...(note === undefined ? [] : [note]), ...found]
  return all.length === 0 ? (probes[name] === undefined ? '' : 'nothing probed') : all.join('; ')
}

function renderMarkdown(report: Report): string {
  const lines: string[] = []
  const m = report.machine
  const s = report.settings
  lines.push(
    `ifmatch bench, ${report.date}: ${String(m.cpu)} × ${String(m.cores)}, ${String(m.memoryGiB)} GiB, Node ${String(m.node)}, ` +
      `load average ${JSON.stringify(m.loadAverageBefore)} before and ${JSON.stringify(m.loadAverageAfter)} after (this machine is shared); ` +
      `${load.connections} connections; each cell ${load.rounds} rounds of ${fmt(load.durationSeconds / load.rounds, 1)} s per target, back to back, in alternating order, ` +
      `after ${load.warmupSeconds} s warm-up each; a ratio is the median of the rounds' ratios (rounds in brackets); SQLite synchronous=${synchronous}; ` +
      `${s.pinned === true ? "servers pinned to CPU 0 (--workers 2: CPUs 0 and 1), load generator to CPU 1; PostgreSQL's own processes unpinned" : 'not pinned'}; ` +
      `${String(s.seconds)} s in all`,
  )
  const byWorkload = (section: Section): Cell[] => report.cells.filter((c) => c.section === section)
  const row = (c: Cell, f: Figures, extra: readonly string[]): string =>
    `| ${c.workload} | ${f.name} | ${f.requestsPerSecond.toFixed(0)} | ${f.latencyP50Ms} | ${f.latencyP99Ms} | ${fmt(f.serverCpuMicrosPerRequest, 1)} | ` +
    `${f.versus[CEILING] === undefined ? '' : `${fmt(f.versus[CEILING].ratio)} (${list(f.versus[CEILING].rounds)})`} | ${extra.join(' | ')} |`

  const peers = byWorkload('peers')
  if (peers.length > 0) {
    lines.push(
      '',
      `**ifmatch beside Fastify and Express** (SQLite, one process, ${PERSONS} persons; the peers keep theirs in a Map)`,
      '',
      '| workload | server | req/s | p50 ms | p99 ms | server CPU µs/req | ÷ ceiling (rounds) | ÷ ifmatch (rounds) | answers | what it gets wrong |',
      '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |',
    )
    for (const c of peers) {
      for (const f of c.figures) {
        const vsOurs = f.name === IFMATCH ? '' : `${fmt(f.versus[IFMATCH]!.ratio)} (${list(f.versus[IFMATCH]!.rounds)})`
        const isServer = f.name !== CEILING && f.name !== SAME_SIZE
        lines.push(row(c, f, [vsOurs, answers(f), isServer ? wrongs(f.name, c.workload, report.probes) : '']))
      }
    }
    lines.push(
      '',
      'What each server answered to the conditional requests the figures leave out (sent once before the load; "due" is RFC 9110\'s answer, or API.md\'s where it says so):',
      '',
    )
    const names = Object.keys(report.probes)
    lines.push(`| request | due | ${names.join(' | ')} |`, `| --- | --- | ${names.map(() => '---').join(' | ')} |`)
    for (const [i, p] of report.probes[names[0]!]!.entries()) {
      lines.push(
        `| ${p.name} | ${p.due} | ${names
          .map((n) => {
            const r = report.probes[n]![i]!
            return r.ok ? r.got : `**${r.got}**`
          })
          .join(' | ')} |`,
      )
    }
  }

  if (report.paired.length > 0) {
    lines.push(
      '',
      '**Pages at 10,000 persons** (ifmatch, SQLite, one process, each round paired with the ceiling)',
      '',
      '| workload | persons | req/s | p50 ms | p99 ms | server CPU µs/req | ceiling req/s | ÷ ceiling (rounds) | ÷ a same-size bare body |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    )
    for (const c of report.paired) {
      lines.push(
        `| ${c.workload} | ${c.persons} | ${c.requestsPerSecond.toFixed(0)} | ${c.latencyP50Ms} | ${c.latencyP99Ms} | ${fmt(c.serverCpuMicrosPerRequest, 1)} | ` +
          `${c.ceilingRequestsPerSecond.toFixed(0)} | ${fmt(c.ratio)} (${list(c.ratios)}) | ${fmt(c.ratioSameSize)} |`,
      )
    }
  }

  const workers = byWorkload('workers')
  if (workers.length > 0) {
    lines.push(
      '',
      `**SQLite, --workers 2** (two processes sharing the file, on both cores with the load generator) beside one process, ${PERSONS} persons`,
      '',
      '| workload | server | req/s | p50 ms | p99 ms | server CPU µs/req | ÷ ceiling (rounds) | speed-up over one process (rounds) |',
      '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    )
    for (const c of workers) {
      for (const f of c.figures) {
        lines.push(row(c, f, [f.name === WORKERS2 ? `${fmt(f.versus[IFMATCH]!.ratio)}× (${list(f.versus[IFMATCH]!.rounds)})` : '']))
      }
    }
  }

  const postgres = byWorkload('postgres')
  if (postgres.length > 0) {
    lines.push(
      '',
      `**PostgreSQL** (a fresh database, ${PERSONS} persons; one process and --workers 2) beside SQLite (one process) and the ceiling`,
      '',
      "| workload | server | req/s | p50 ms | p99 ms | server CPU µs/req | ÷ ceiling (rounds) | ÷ SQLite (rounds) | speed-up of --workers 2 (rounds) | PostgreSQL's CPU µs/req (all its processes) |",
      '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    )
    for (const c of postgres) {
      for (const f of c.figures) {
        const vsSqlite = f.name === PG || f.name === PG2 ? `${fmt(f.versus[IFMATCH]!.ratio)} (${list(f.versus[IFMATCH]!.rounds)})` : ''
        const speedup = f.name === PG2 ? `${fmt(f.versus[PG]!.ratio)}× (${list(f.versus[PG]!.rounds)})` : ''
        lines.push(row(c, f, [vsSqlite, speedup, fmt(f.databaseCpuMicrosPerRequest, 1)]))
      }
    }
    if (report.postgresRoundTrip !== undefined) {
      const r = report.postgresRoundTrip
      lines.push(
        '',
        `One validator read on PostgreSQL (\`${r.statement}\`, ${r.count} in a row on one connection, from the load generator's process): ` +
          `p50 **${fmt(r.p50Micros, 0)} µs**, mean ${fmt(r.meanMicros, 0)} µs. Under load the store asks the validators of all the requests waiting in one such statement (src/store/postgres/gathered-reads.ts). On SQLite the same read comes from memory.`,
      )
    }
  }

  if (report.conflicts !== undefined) {
    const co = s.conflicts as typeof conflictOptions
    lines.push(
      '',
      `**Writes that conflict**: ${co.clients} clients update ${co.persons} persons, each reading its person, adding one to the counter in its name and ` +
        `sending the PUT with the ETag it read in If-Match, and reading again after a 412; ${co.rounds} rounds of ${co.secondsPerRound} s per server, in alternating order. ` +
        'At the end the counters must sum to the acknowledged updates.',
      '',
      '| server | updates/s (rounds) | ÷ Fastify (rounds) | 412s per update | server CPU µs per update | acknowledged | counters sum to | lost | other answers |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    )
    const { results, rounds } = report.conflicts
    const fastifyIndex = results.findIndex((r) => r.name === FASTIFY)
    for (const [j, r] of results.entries()) {
      const vs =
        fastifyIndex < 0 || j === fastifyIndex
          ? ''
          : (() => {
              const ratios = rounds[j]!.map((x, i) => x / rounds[fastifyIndex]![i]!)
              return `${fmt(median(ratios))} (${list(ratios)})`
            })()
      lines.push(
        `| ${r.name} | ${r.updatesPerSecond.toFixed(0)} (${r.updatesPerSecondRounds.map((x) => x.toFixed(0)).join(', ')}) | ${vs} | ${fmt(r.conflictsPerUpdate)} | ` +
          `${fmt(r.serverCpuMicrosPerUpdate, 0)} | ${r.acknowledged} | ${r.counted} | ${r.lost === 0 ? '0' : `**${r.lost}**`} | ${r.unexpected} |`,
      )
    }
  }

  if (report.compression !== undefined) {
    const c = report.compression
    lines.push(
      '',
      `**The ${PERSONS}-person page, identity, gzip and br**: ifmatch (SQLite, one process; compressed once per ETag and coding, then cached) ` +
        'beside Fastify + @fastify/etag + @fastify/compress (registered in that order; compresses every response)',
      '',
      '| server | Accept-Encoding | sent | bytes on the wire | body bytes | ÷ identity bytes | ETag | 304 on revalidation | req/s | p50 ms | p99 ms | server CPU µs/req | ÷ identity req/s (rounds) |',
      '| --- | --- | --- | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |',
    )
    for (const a of c.answers) {
      const identity = c.answers.find((x) => x.server === a.server && x.coding === 'identity')!
      const r = c.rates.find((x) => x.server === a.server && x.coding === a.coding)!
      lines.push(
        `| ${a.server === 'ifmatch' ? IFMATCH : 'Fastify + @fastify/compress'} | ${a.coding === 'identity' ? '(none)' : a.coding} | ${a.sent} | ${a.bytes} | ${a.bodyBytes} | ${fmt(a.bytes / identity.bytes, 3)} | ` +
          `\`${a.etag}\`${a.coding !== 'identity' && a.etag === identity.etag ? " (**the identity's**)" : ''} | ${a.revalidated} | ${r.requestsPerSecond.toFixed(0)} | ${r.latencyP50Ms} | ${r.latencyP99Ms} | ` +
          `${fmt(r.serverCpuMicrosPerRequest, 1)} | ${a.coding === 'identity' ? '' : `${fmt(r.ratio)} (${list(r.ratios)})`} |`,
      )
    }
    lines.push(
      '',
      `Compressing the ${c.pageBytes}-byte page with ifmatch's parameters (src/http/content-coding.ts, in libuv's thread pool, from the bench process), ` +
        `median of ${c.compressMs.gzip.count}: gzip **${fmt(c.compressMs.gzip.median)} ms** (max ${fmt(c.compressMs.gzip.max)}), br **${fmt(c.compressMs.br.median)} ms** (max ${fmt(c.compressMs.br.max)}).`,
    )
    const b0 = c.bursts[0]
    if (b0 !== undefined) {
      lines.push(
        '',
        `The event loop's longest delay (nodejs_eventloop_lag_max_seconds from /metrics, whose histogram each scrape resets) while ${b0.pages} pages of about ${PERSONS} persons, ` +
          `not yet cached, are asked for at once right after a write: each page twice in identity, or each page in gzip and in br (as many answers, so the difference is the compression's), ` +
          `and the compressed burst again with nothing written between (all cached); ms, median of ${b0.rounds} bursts (max):`,
        '',
        '| ifmatch server | identity, not cached | gzip and br, not cached | gzip and br, cached |',
        '| --- | ---: | ---: | ---: |',
      )
      for (const b of c.bursts) {
        lines.push(
          `| ${b.label} | ${fmt(b.identity.median, 1)} (${fmt(b.identity.max, 1)}) | **${fmt(b.compressed.median, 1)}** (${fmt(b.compressed.max, 1)}) | ${fmt(b.cached.median, 1)} (${fmt(b.cached.max, 1)}) |`,
        )
      }
    }
  }

  lines.push('', ...goals(report))
  return `${lines.join('\n')}\n`
}

/** The goals of issues 12 and 13, met or missed, with the figures they were judged on. */
function goals(report: Report): string[] {
  const out = [
    "**Goals** (ratios within this run, median of rounds; beside them the other's server CPU per request over ifmatch's, the same comparison with the load generator taken out)",
    '',
    "| goal | measured | met | CPU per request, the other's ÷ ifmatch's |",
    '| --- | --- | --- | ---: |',
  ]
  const cell = (section: Section, workload: string): Cell | undefined => report.cells.find((c) => c.section === section && c.workload === workload)
  const versus = (c: Cell | undefined, a: string, b: string): { ratio: number; rounds: readonly number[] } | undefined =>
    c?.figures.find((f) => f.name === a)?.versus[b]
  const add = (goal: string, r: { ratio: number; rounds: readonly number[] } | undefined, min: number, cpu?: number): void => {
    if (r === undefined) return
    out.push(`| ${goal} | ${fmt(r.ratio)} (${list(r.rounds)}) | ${r.ratio >= min ? 'met' : '**missed**'} | ${fmt(cpu)} |`)
  }
  const cpuRatio = (c: Cell | undefined, ours: string, other: string): number | undefined => {
    const a = c?.figures.find((f) => f.name === ours)
    const b = c?.figures.find((f) => f.name === other)
    return a === undefined || b === undefined ? undefined : b.serverCpuMicrosPerRequest / a.serverCpuMicrosPerRequest
  }
  for (const w of ['get304', 'list304']) {
    add(
      `${w} ≥ ${GOALS.overFastify304}× Fastify + @fastify/etag`,
      versus(cell('peers', w), IFMATCH, FASTIFY),
      GOALS.overFastify304,
      cpuRatio(cell('peers', w), IFMATCH, FASTIFY),
    )
    // what the goal above can be on this machine: no server on node:http answers faster than the
    // ceiling, which routes, reads and counts nothing
    const bound = versus(cell('peers', w), CEILING, FASTIFY)
    if (bound !== undefined)
      out.push(
        `| ${w}: the ceiling's own ÷ Fastify + @fastify/etag, the most a server on node:http can reach here | ${fmt(bound.ratio)} (${list(bound.rounds)}) | ` +
          `${bound.ratio >= GOALS.overFastify304 ? 'room for the goal' : '**no room for the goal**'} | ${fmt(cpuRatio(cell('peers', w), CEILING, FASTIFY))} |`,
      )
    add(
      `${w} ≥ ${GOALS.overCeiling304} of the ceiling`,
      versus(cell('peers', w), IFMATCH, CEILING),
      GOALS.overCeiling304,
      cpuRatio(cell('peers', w), IFMATCH, CEILING),
    )
  }
  add(`get200 ≥ Fastify's`, versus(cell('peers', 'get200'), IFMATCH, FASTIFY), GOALS.overFastifyGet200, cpuRatio(cell('peers', 'get200'), IFMATCH, FASTIFY))
  add(
    `list200 ≥ ${GOALS.overFastifyList200}× Fastify's`,
    versus(cell('peers', 'list200'), IFMATCH, FASTIFY),
    GOALS.overFastifyList200,
    cpuRatio(cell('peers', 'list200'), IFMATCH, FASTIFY),
  )
  for (const [w, min] of Object.entries(EARLIER_TARGETS))
    add(`${w} ≥ ${min} of the ceiling (the earlier target)`, versus(cell('peers', w), IFMATCH, CEILING), min, cpuRatio(cell('peers', w), IFMATCH, CEILING))
  add(`PostgreSQL get304 ≥ ${GOALS.postgresGet304OverSqlite} of SQLite's`, versus(cell('postgres', 'get304'), PG, IFMATCH), GOALS.postgresGet304OverSqlite)
  if (report.conflicts !== undefined) {
    const { results, rounds } = report.conflicts
    for (const r of results.filter((x) => x.name.startsWith('ifmatch'))) {
      out.push(
        `| conflicting writes, ${r.name}: no lost update | ${r.lost} lost of ${r.acknowledged} acknowledged | ${r.lost === 0 ? 'met' : '**missed**'} | |`,
      )
    }
    const j = results.findIndex((r) => r.name === IFMATCH)
    const k = results.findIndex((r) => r.name === FASTIFY)
    if (j >= 0 && k >= 0) {
      const ratios = rounds[j]!.map((x, i) => x / rounds[k]![i]!)
      add(
        `conflicting writes on SQLite ≥ ${GOALS.conflictsOverFastify} of Fastify's updates/s`,
        { ratio: median(ratios), rounds: ratios },
        GOALS.conflictsOverFastify,
        results[k]!.serverCpuMicrosPerUpdate / results[j]!.serverCpuMicrosPerUpdate,
      )
    }
  }
  const c = report.compression
  if (c !== undefined) {
    const identity = c.answers.find((a) => a.server === 'ifmatch' && a.coding === 'identity')!
    for (const coding of ['gzip', 'br'] as const) {
      const a = c.answers.find((x) => x.server === 'ifmatch' && x.coding === coding)!
      const share = a.bytes / identity.bytes
      out.push(
        `| ${coding} page under 1/5 of identity's bytes | ${fmt(share, 3)} (${a.bytes} of ${identity.bytes}) | ${share < GOALS.compressedBytes ? 'met' : '**missed**'} | |`,
      )
      const r = c.rates.find((x) => x.server === 'ifmatch' && x.coding === coding)!
      add(`${coding} page ≥ ${GOALS.compressedRate} of identity's req/s`, { ratio: r.ratio, rounds: r.ratios }, GOALS.compressedRate)
    }
  }
  return out
}

if (sections.size > 0 && !(sections.size === 1 && sections.has('changes'))) await main()
if (sections.has('changes') && !(await changesBench(changesBenchDefaults(quick)))) process.exitCode = 1
