/**
 * `npm run bench`: measures ifmatch against the bare node:http ceiling in one run, and prints
 * requests/s, p50/p99 latency and the ratio to that ceiling for each workload, as a markdown table
 * (also written as JSON and markdown under bench/results/). See README.md, "Performance".
 *
 *   npm run bench                      the full run (under three minutes), then the changes feed's (about two)
 *   npm run bench -- --quick           a short smoke run of both (about 45 s + 1 min), written to .bench/
 *   npm run bench -- --synchronous FULL   SQLite commits fsync'd before each acknowledgement
 *   npm run bench -- --no-changes      the request-rate tables only
 *   npm run bench -- --changes-only    the changes feed's only (bench/changes.ts has its own options)
 *
 * Every ifmatch cell is paired with its ceiling: rounds of a short run against each, back to back,
 * and the ratio reported is the median of the rounds' ratios (see load.ts: measurePaired).
 *
 * Other options: --duration S (seconds per side and cell, split into the rounds), --warmup S,
 * --rounds N, --connections N, --no-workers (skip the 2-worker table).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { measurePaired, type LoadOptions, type Measurement, type Workload } from './load.js'
import { PAGE, ifmatchWorkloads, seed } from './workloads.js'
import { CAN_PIN, ROOT, pinSelf, startBare, startIfmatch, type RunningProcess } from './processes.js'
import { changesBench, changesBenchDefaults } from './changes-bench.js'

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    rounds: { type: 'string' },
    connections: { type: 'string', default: '10' },
    synchronous: { type: 'string', default: 'NORMAL' },
    'no-workers': { type: 'boolean', default: false },
    'no-changes': { type: 'boolean', default: false },
    'changes-only': { type: 'boolean', default: false },
  },
})

const quick = flags.quick === true
const load: LoadOptions = {
  connections: Number(flags.connections),
  durationSeconds: Number(flags.duration ?? (quick ? 1 : 3)),
  warmupSeconds: Number(flags.warmup ?? 0.4),
  rounds: Number(flags.rounds ?? (quick ? 1 : 3)),
}
const synchronous = flags.synchronous === 'FULL' ? 'FULL' : 'NORMAL'

/** Ratio targets from the issue, as fractions of the bare node:http ceiling of the same run. */
const TARGETS: Record<string, number> = {
  get304: 0.80, get200: 0.75, put: 0.50, 'list304@1000': 0.75, 'list304@10000': 0.75, 'list200@1000': 0.30,
}

interface Cell extends Measurement {
  readonly workload: string
  readonly persons: number
  readonly workers: number
  /** Which ceiling the ratio is taken against: bare200 or bare304. */
  readonly ceiling: string
  /** The ceiling's requests/s in the round reported. */
  readonly ceilingRequestsPerSecond: number
  /** Requests/s over the ceiling's: the median of the rounds. */
  readonly ratio: number
  readonly ratios: readonly number[]
  /** The ceiling's server CPU per request divided by this cell's: the ratio with the load generator taken out. */
  readonly cpuRatio: number
  /** list200 only: the ratio to a bare server sending a fixed body of the same size. */
  ratioSameSize?: number
  target?: number
  speedup?: number
}

function log(message: string): void {
  process.stderr.write(message + '\n')
}

function describe(name: string, workers: number, m: Measurement): string {
  return `  ${name.padEnd(16)} workers=${workers}  ${m.requestsPerSecond.toFixed(0).padStart(7)} req/s  p50 ${m.latencyP50Ms} ms  p99 ${m.latencyP99Ms} ms  ` +
    `server CPU ${m.serverCpuMicrosPerRequest.toFixed(1)} µs/req` +
    (m.unexpected > 0 ? `  UNEXPECTED: ${JSON.stringify(m.statuses)}` : '')
}

/**
 * One workload on ifmatch, paired round by round with its ceiling on the bare server; `sameSize`,
 * for a page, is paired too: a bare server sending a fixed body of the page's size.
 */
async function cell(server: RunningProcess, workload: Workload, persons: number, workers: number, bare: RunningProcess, ceiling: Workload, sameSize?: Workload): Promise<Cell> {
  const paired = await measurePaired(
    { baseUrl: server.url, workload, serverCpuMs: () => server.cpuMs() },
    { baseUrl: bare.url, workload: ceiling, serverCpuMs: () => bare.cpuMs() },
    load)
  const key = workload.name.startsWith('list') ? `${workload.name}@${persons}` : workload.name
  log(describe(key, workers, paired.ours) + `  ratio ${paired.ratio.toFixed(2)} (rounds ${paired.ratios.map((r) => r.toFixed(2)).join(', ')}; ${ceiling.name} ${paired.ceiling.requestsPerSecond.toFixed(0)} req/s)`)
  let ratioSameSize: number | undefined
  if (sameSize !== undefined) {
    const page = await measurePaired(
      { baseUrl: server.url, workload, serverCpuMs: () => server.cpuMs() },
      { baseUrl: bare.url, workload: sameSize, serverCpuMs: () => bare.cpuMs() },
      load)
    ratioSameSize = page.ratio
    log(`  ${''.padEnd(16)} against ${sameSize.name}: ratio ${page.ratio.toFixed(2)} (rounds ${page.ratios.map((r) => r.toFixed(2)).join(', ')})`)
  }
  return {
    workload: workload.name, persons, workers, ceiling: ceiling.name, ...paired.ours,
    ceilingRequestsPerSecond: paired.ceiling.requestsPerSecond, ratio: paired.ratio, ratios: paired.ratios, cpuRatio: paired.cpuRatio,
    ...(ratioSameSize === undefined ? {} : { ratioSameSize }),
  }
}

async function main(): Promise<void> {
  const started = Date.now()
  const pinned = pinSelf('1')
  const serverCpus = pinned ? '0' : undefined
  const dir = mkdtempSync(join(tmpdir(), 'ifmatch-bench-'))
  const dbPath = join(dir, 'bench.sqlite')
  const databaseUrl = `sqlite:${dbPath}`
  const env = { SQLITE_SYNCHRONOUS: synchronous }
  const load0 = loadavg()
  log(`ifmatch bench: ${load.connections} connections, ${load.warmupSeconds} s warm-up + ${load.durationSeconds} s per cell, ` +
    `synchronous=${synchronous}, ${pinned ? 'server on CPU 0, load generator on CPU 1' : 'not pinned (no taskset or one core)'}`)
  const cells: Cell[] = []
  let server: RunningProcess | undefined
  let bare: RunningProcess | undefined
  try {
    await seed(dbPath, 0, 1000)
    server = await startIfmatch(databaseUrl, 1, serverCpus, env)
    const running = server
    const pageBytes = Buffer.byteLength(await (await fetch(server.url + PAGE)).text())

    bare = await startBare(pageBytes, serverCpus)
    const bareRunning = bare
    const bare200: Workload = { name: 'bare200', path: '/persons/x', expect: 200 }
    const bare304: Workload = { name: 'bare304', path: '/persons/x', expect: 304, headers: { 'if-none-match': '"bare.1"' } }
    const bare200page: Workload = { name: 'bare200page', path: '/page', expect: 200 }
    const ceilingOf = (w: Workload): Workload => (w.expect === 304 ? bare304 : bare200)
    const sameSizeOf = (w: Workload): Workload | undefined => (w.name === 'list200' ? bare200page : undefined)

    log('ifmatch, one process (each cell paired with its ceiling)')
    for (const w of ifmatchWorkloads(() => running.url, load.connections)) {
      cells.push(await cell(running, w, 1000, 1, bareRunning, ceilingOf(w), sameSizeOf(w)))
    }
    // the server owns its SQLite file (exclusive locking): it stops while the seed writes, then
    // starts again on the bigger collection (every cell warms up first)
    await server.stop()
    server = undefined
    await seed(dbPath, 1000, 10_000)
    server = await startIfmatch(databaseUrl, 1, serverCpus, env)
    const bigger = server
    for (const w of ifmatchWorkloads(() => bigger.url, load.connections).filter((x) => x.name.startsWith('list'))) {
      cells.push(await cell(bigger, w, 10_000, 1, bareRunning, ceilingOf(w), sameSizeOf(w)))
    }
    await server.stop()
    server = undefined

    if (flags['no-workers'] !== true) {
      log('ifmatch, --workers 2 (server processes and load generator share the two cores)')
      server = await startIfmatch(databaseUrl, 2, CAN_PIN ? '0,1' : undefined, env)
      const twoServer = server
      for (const w of ifmatchWorkloads(() => twoServer.url, load.connections)) {
        cells.push(await cell(twoServer, w, 10_000, 2, bareRunning, ceilingOf(w), sameSizeOf(w)))
      }
      await server.stop()
      server = undefined
    }
    await bare.stop()
    bare = undefined

    for (const c of cells) {
      const key = c.workload.startsWith('list') ? `${c.workload}@${c.persons}` : c.workload
      if (c.workers === 1) c.target = TARGETS[key]
      if (c.workers === 2) {
        // both ratios are to a ceiling measured beside them, so their quotient is the speed-up
        // with the machine's drift taken out
        const single = cells.find((s) => s.workers === 1 && s.workload === c.workload && (s.persons === c.persons || !c.workload.startsWith('list')))
        if (single !== undefined) c.speedup = c.ratio / single.ratio
      }
    }
    const report = {
      date: new Date().toISOString(),
      machine: {
        cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30),
        node: process.version, platform: `${process.platform} ${process.arch}`,
        loadAverageBefore: load0.map((x) => Number(x.toFixed(2))), loadAverageAfter: loadavg().map((x) => Number(x.toFixed(2))),
      },
      settings: { ...load, synchronous, pinned, pageBytes, seconds: Math.round((Date.now() - started) / 1000) },
      cells,
    }
    const markdown = renderMarkdown(cells, report)
    process.stdout.write(markdown)
    const outDir = quick ? join(ROOT, '.bench') : join(ROOT, 'bench', 'results')
    mkdirSync(outDir, { recursive: true })
    writeFileSync(join(outDir, quick ? 'quick.json' : 'latest.json'), JSON.stringify(report, null, 2) + '\n')
    writeFileSync(join(outDir, quick ? 'quick.md' : 'latest.md'), markdown)
    log(`written to ${outDir} in ${report.settings.seconds} s`)
    if (cells.some((c) => c.unexpected > 0)) {
      log('some responses had an unexpected status: the figures above do not count')
      process.exitCode = 1
    }
  } finally {
    await bare?.stop()
    await server?.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

const fmt = (n: number | undefined, digits = 2): string => n === undefined ? '' : n.toFixed(digits)

function renderMarkdown(cells: readonly Cell[], report: { date: string; machine: Record<string, unknown>; settings: Record<string, unknown> }): string {
  const lines: string[] = []
  const m = report.machine
  lines.push(`ifmatch bench, ${report.date}: ${String(m.cpu)} × ${String(m.cores)}, Node ${String(m.node)}, ` +
    `load average ${JSON.stringify(m.loadAverageBefore)} before; ${load.connections} connections, ` +
    `each cell ${load.rounds} rounds of ${fmt(load.durationSeconds / load.rounds, 1)} s against ifmatch and ${fmt(load.durationSeconds / load.rounds, 1)} s against its ceiling, back to back, ` +
    `after ${load.warmupSeconds} s warm-up each; ratio = the median round's; SQLite synchronous=${synchronous}; ` +
    `${report.settings.pinned === true ? 'server pinned to CPU 0, load generator to CPU 1' : 'not pinned'}`)
  for (const workers of [1, 2]) {
    const rows = cells.filter((c) => c.workers === workers)
    if (rows.length === 0) continue
    lines.push('', workers === 1 ? '**One server process**' : '**`--workers 2`** (speed-up over one process)', '')
    lines.push('| workload | persons | req/s | p50 ms | p99 ms | ceiling req/s (same round) | ratio to ceiling (rounds) | target | ' + (workers === 1 ? 'met' : 'speed-up') +
      ' | server CPU µs/req | CPU ratio |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |')
    for (const c of rows) {
      const ratio = `**${fmt(c.ratio)}** (${c.ratios.map((r) => fmt(r)).join(', ')})` +
        (c.ratioSameSize === undefined ? '' : `; ${fmt(c.ratioSameSize)} of a same-size bare body`)
      const last = workers === 1
        ? (c.target === undefined ? '' : (c.ratio! >= c.target ? 'yes' : '**no**'))
        : `${fmt(c.speedup)}×`
      lines.push(`| ${c.workload} | ${c.persons} | ${c.requestsPerSecond.toFixed(0)} | ${c.latencyP50Ms} | ${c.latencyP99Ms} | ${c.ceilingRequestsPerSecond.toFixed(0)} | ${ratio} | ${c.target === undefined ? '' : `≥ ${c.target}`} | ${last} | ` +
        `${fmt(c.serverCpuMicrosPerRequest, 1)} | ${fmt(c.cpuRatio)} |`)
    }
  }
  return lines.join('\n') + '\n'
}

if (flags['changes-only'] !== true) await main()
if (flags['no-changes'] !== true && !await changesBench(changesBenchDefaults(quick))) process.exitCode = 1
