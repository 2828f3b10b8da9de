/**
 * The changes-feed benchmark: what keeping a copy current costs on the wire by polling the pages
 * and by following the feed, and how fast one write wakes 1,000 long polls, in one process on
 * SQLite and across two processes on PostgreSQL. Prints a markdown table and writes it, with every
 * round, under bench/results/ (changes.md, changes.json). See docs/performance.md.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { keepCopies, type CopyKeepingResult, type WireFigures } from './copy-keeping.js'
import { PG_ADMIN_URL, createBenchDatabase, type BenchDatabase } from './postgres-database.js'
import { ROOT, machineFigures, pinSelf, startBareLongPoll, startIfmatch, type RunningProcess } from './processes.js'
import { keepAliveAgent, rawRequest } from './raw-request.js'
import { measureWakeUp, measureWakeUpPaired, type PairedWakeUp, type WakeUpResult } from './wake-up.js'
import { seed } from './workloads.js'

export interface ChangesBenchOptions {
  /** Written to .bench/changes-quick.* instead of bench/results/. */
  readonly quick: boolean
  /** Seconds of writes while the two clients keep their copies. */
  readonly copySeconds: number
  readonly persons: number
  readonly writesPerSecond: number
  readonly waiters: number
  /** Measured wake-up rounds per setup (after one warm-up round). */
  readonly rounds: number
  /** Skip the PostgreSQL wake-up. */
  readonly noPostgres: boolean
  /** Accept-Encoding for both copy-keeping clients (none: identity). */
  readonly acceptEncoding?: string | undefined
  /** The PostgreSQL server on which a fresh database is made and dropped. */
  readonly postgresAdminUrl: string
}

/** The defaults of `npm run bench`; `quick` shortens the copy to 20 s and the rounds to 3. */
export function changesBenchDefaults(quick: boolean): ChangesBenchOptions {
  return {
    quick,
    copySeconds: quick ? 20 : 60,
    persons: 10_000,
    writesPerSecond: 10,
    waiters: 1000,
    rounds: quick ? 3 : 5,
    noPostgres: false,
    postgresAdminUrl: PG_ADMIN_URL,
  }
}

/** Goals from the issue. */
const GOALS = { byteRatio: 0.01, p99Ms: 250 }
const WAKE_PERSON = 'wake-up'

function log(message: string): void {
  process.stderr.write(`${message}\n`)
}

/** The soft limit on open files of this process (server processes inherit it). */
function openFilesLimit(): number {
  try {
    const match = /^Max open files\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))
    return match === null || match[1] === 'unlimited' ? Infinity : Number(match[1])
  } catch {
    return Infinity
  }
}

async function createPerson(server: RunningProcess, id: string): Promise<void> {
  const agent = keepAliveAgent()
  try {
    const response = await rawRequest(`${server.url}/persons`, { agent, method: 'POST', body: JSON.stringify({ person_id: id, person_name: 'Wake me' }) })
    if (response.status !== 201) throw new Error(`POST /persons ${id}: ${response.status} ${response.body.toString('utf8')}`)
  } finally {
    agent.destroy()
  }
}

interface Report {
  date: string
  machine: Record<string, unknown>
  settings: Record<string, unknown>
  copyKeeping: CopyKeepingResult
  wakeUp: { sqlite: PairedWakeUp; postgres?: WakeUpResult | undefined; postgresSkipped?: string | undefined }
}

/** Runs the three measurements, prints the table, writes the results; resolves false when a run went wrong. */
export async function changesBench(options: ChangesBenchOptions): Promise<boolean> {
  const started = Date.now()
  const pinned = pinSelf('1')
  const serverCpus = pinned ? '0' : undefined
  const load0 = loadavg()
  const files = openFilesLimit()
  // each waiter is one socket here and one in the server; both processes have this limit
  if (files < options.waiters + 200) {
    throw new Error(`ulimit -n is ${files}: ${options.waiters} waiters need at least ${options.waiters + 200} open files (raise it with ulimit -n)`)
  }
  log(
    `ifmatch changes-feed bench: ${options.persons} persons, ${options.writesPerSecond} writes/s for ${options.copySeconds} s; ` +
      `${options.waiters} waiters × ${options.rounds} rounds; open files limit ${files}; ` +
      `${pinned ? 'servers on CPU 0, load generator on CPU 1' : 'not pinned'}`,
  )
  const dir = mkdtempSync(join(tmpdir(), 'ifmatch-bench-changes-'))
  const dbPath = join(dir, 'bench.sqlite')
  const running: RunningProcess[] = []
  const start = async (url: string): Promise<RunningProcess> => {
    const server = await startIfmatch(url, 1, serverCpus)
    running.push(server)
    return server
  }
  const stop = async (server: RunningProcess): Promise<void> => {
    await server.stop()
    running.splice(running.indexOf(server), 1)
  }
  let postgresDatabase: BenchDatabase | undefined
  try {
    await seed(dbPath, 0, options.persons)
    log(`keeping a copy of ${options.persons} persons current for ${options.copySeconds} s (SQLite, one process)`)
    let server = await start(`sqlite:${dbPath}`)
    const copyKeeping = await keepCopies(server.url, {
      durationSeconds: options.copySeconds,
      writesPerSecond: options.writesPerSecond,
      pollIntervalMs: 1000,
      limit: 1000,
      waitSeconds: 30,
      acceptEncoding: options.acceptEncoding,
      log,
    })
    log(
      `  polling: ${describeWire(copyKeeping.polling.keeping)}; feed: ${describeWire(copyKeeping.feed.keeping)}; ` +
        `feed/polling bytes ${(copyKeeping.byteRatio * 100).toFixed(2)} %`,
    )
    await stop(server)

    const wakeOptions = { waiters: options.waiters, rounds: options.rounds, waitSeconds: 30, connectBatch: 100, log }
    log(
      `${options.waiters} long polls woken by one write: SQLite, one process (a fresh one, so that its memory is theirs), ` +
        'each round paired with the same on a bare node:http server',
    )
    server = await start(`sqlite:${dbPath}`)
    const bare = await startBareLongPoll(serverCpus)
    running.push(bare)
    await createPerson(server, WAKE_PERSON)
    const sqlite = await measureWakeUpPaired(server, bare, WAKE_PERSON, wakeOptions)
    await stop(server)
    await stop(bare)

    let postgres: WakeUpResult | undefined
    let postgresSkipped: string | undefined
    if (options.noPostgres) {
      postgresSkipped = 'skipped (--no-postgres)'
    } else {
      try {
        postgresDatabase = await createBenchDatabase(options.postgresAdminUrl)
      } catch (error) {
        postgresSkipped = `skipped: PostgreSQL at ${options.postgresAdminUrl} did not answer (${error instanceof Error ? error.message : String(error)})`
        log(postgresSkipped)
      }
      if (postgresDatabase !== undefined) {
        log(`${options.waiters} long polls woken by one write: PostgreSQL, waiters on process A, the write through process B`)
        const a = await start(postgresDatabase.url)
        const b = await start(postgresDatabase.url)
        await createPerson(b, WAKE_PERSON)
        postgres = await measureWakeUp(a, b, WAKE_PERSON, wakeOptions)
        await stop(a)
        await stop(b)
      }
    }

    const report: Report = {
      date: new Date().toISOString(),
      machine: { ...machineFigures(load0), openFilesLimit: files },
      settings: {
        persons: options.persons,
        copySeconds: options.copySeconds,
        writesPerSecond: options.writesPerSecond,
        pollIntervalMs: 1000,
        limit: 1000,
        waitSeconds: 30,
        acceptEncoding: options.acceptEncoding ?? 'identity',
        waiters: options.waiters,
        rounds: options.rounds,
        pinned,
        seconds: Math.round((Date.now() - started) / 1000),
      },
      copyKeeping,
      wakeUp: { sqlite, postgres, postgresSkipped },
    }
    const markdown = renderMarkdown(report)
    process.stdout.write(markdown)
    const outDir = options.quick ? join(ROOT, '.bench') : join(ROOT, 'bench', 'results')
    mkdirSync(outDir, { recursive: true })
    writeFileSync(join(outDir, options.quick ? 'changes-quick.json' : 'changes.json'), `${JSON.stringify(report, null, 2)}\n`)
    writeFileSync(join(outDir, options.quick ? 'changes-quick.md' : 'changes.md'), markdown)
    log(`written to ${outDir} in ${report.settings.seconds as number} s`)
    const wrong = !copyKeeping.polling.equal || !copyKeeping.feed.equal || sqlite.ours.unexpected > 0 || (postgres?.unexpected ?? 0) > 0
    if (wrong) log('a copy differs from the server, or a waiter was answered wrongly: the figures above do not count')
    return !wrong
  } finally {
    for (const server of [...running]) await server.stop()
    if (postgresDatabase !== undefined) {
      // a failed drop must not hide why the run failed
      await postgresDatabase.drop().catch((error: unknown) => log(`could not drop ${postgresDatabase?.url}: ${String(error)}`))
    }
    rmSync(dir, { recursive: true, force: true })
  }
}

function describeWire(w: WireFigures): string {
  return `${w.requests} requests ${JSON.stringify(w.statuses)}, ${w.bytes} bytes (${w.bytesIn} in, ${w.bytesOut} out)`
}

const perAnswer = (bytes: number, w: WireFigures): string => (bytes / Math.max(1, w.requests)).toFixed(0)
const kib = (bytes: number): string => (bytes / 1024).toFixed(1)
const bytesText = (bytes: number): string => (bytes >= 10 * 2 ** 20 ? `${(bytes / 2 ** 20).toFixed(1)} MiB` : `${kib(bytes)} KiB`)

function renderMarkdown(report: Report): string {
  const m = report.machine
  const s = report.settings
  const c = report.copyKeeping
  const lines: string[] = []
  lines.push(
    `ifmatch changes-feed bench, ${report.date}: ${String(m.cpu)} × ${String(m.cores)}, Node ${String(m.node)}, ` +
      `load average ${JSON.stringify(m.loadAverageBefore)} before; ${s.pinned === true ? 'servers pinned to CPU 0, load generator to CPU 1' : 'not pinned'}; ` +
      `open files limit ${String(m.openFilesLimit)}`,
  )
  lines.push(
    '',
    `**Keeping a copy of ${c.personsAtStart.toLocaleString('en')} persons current for ${c.durationSeconds} s while ` +
      `${c.writesPerSecond} writes/s arrive** (${c.writes.update} updates, ${c.writes.create} creates, ${c.writes.delete} deletes, ` +
      `each with its precondition; SQLite, one process; Accept-Encoding: ${String(s.acceptEncoding)}). Bytes are counted at each client's ` +
      'sockets: request and status lines, header fields, bodies.',
    '',
  )
  lines.push(
    '| client | requests | answers | bytes received (of which bodies) | bytes sent | total | of polling | copy equals the server |',
    '| --- | ---: | --- | ---: | ---: | ---: | ---: | --- |',
  )
  const row = (name: string, k: { keeping: WireFigures; equal: boolean; differences: number }, share: string): string =>
    `| ${name} | ${k.keeping.requests} | ${Object.entries(k.keeping.statuses)
      .map(([status, n]) => `${n} × ${status}`)
      .join(', ')} | ` +
    `${bytesText(k.keeping.bytesIn)} (bodies ${bytesText(k.keeping.bodyBytesIn)}) | ${bytesText(k.keeping.bytesOut)} | ${bytesText(k.keeping.bytes)} | ${share} | ` +
    `${k.equal ? 'yes' : `**no** (${k.differences} persons differ)`} |`
  lines.push(row(`A: every page (limit ${String(s.limit)}) each second, If-None-Match`, c.polling, '100 %'))
  lines.push(row(`B: the feed, long polling (wait=${String(s.waitSeconds)}), If-None-Match`, c.feed, `**${(c.byteRatio * 100).toFixed(2)} %**`))
  lines.push(
    '',
    `Goal: the feed under ${GOALS.byteRatio * 100} % of polling's bytes: ${c.byteRatio < GOALS.byteRatio ? 'met' : '**missed**'}. ` +
      `The first copy, before the writes and not counted above: A ${c.polling.initial.requests} requests, ${bytesText(c.polling.initial.bytes)}; ` +
      `B ${c.feed.initial.requests} requests, ${bytesText(c.feed.initial.bytes)}. A read the collection ${c.polling.rounds} times; ` +
      `${c.personsAtEnd.toLocaleString('en')} persons at the end. One answer to B averaged ` +
      `${perAnswer(c.feed.keeping.bytesIn - c.feed.keeping.bodyBytesIn, c.feed.keeping)} bytes of status line and header fields and ` +
      `${perAnswer(c.feed.keeping.bodyBytesIn, c.feed.keeping)} of body, one request ${perAnswer(c.feed.keeping.bytesOut, c.feed.keeping)}; one page to A ` +
      `${perAnswer(c.polling.keeping.bytesIn, c.polling.keeping)} bytes in all.`,
  )
  const w = report.wakeUp
  const rounds = w.sqlite.ours.rounds.length
  lines.push(
    '',
    `**${w.sqlite.ours.waiters.toLocaleString('en')} long polls woken by one write** (latency from the write's 2xx to the end of each ` +
      `waiter's answer; p50/p99 over the waiters of a round, then the median of ${rounds} rounds after a warm-up round; memory: the ` +
      "waiting server's resident set and V8 heap with the waiters held, less before they connected, per waiter: in the warm-up round, " +
      'the first time they all came to a fresh process, and the median of the later rounds, which reuse what the first left and whose heap ' +
      'figures include garbage not yet collected, so they can even be negative). The ceiling is ' +
      '`bench/bare-long-poll.mjs`, a bare node:http server that holds the requests in an array and answers them all with the same bytes ' +
      'when the person is written; its rounds alternate with the SQLite ones.',
    '',
  )
  lines.push(
    '| setup | first ms | p50 ms | p99 ms | max ms | goal p99 | met | memory per waiter, RSS / heap: fresh process; later rounds | server CPU: taking the waiters in / the wake-up | load generator CPU in the wake-up | main threads waiting for a core in the wake-up: server / load generator | p99 of each round |',
    '| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- |',
  )
  const wakeRow = (name: string, r: WakeUpResult, goal = true): string =>
    `| ${name} | ${r.minMs.toFixed(1)} | ${r.p50Ms.toFixed(1)} | **${r.p99Ms.toFixed(1)}** | ${r.maxMs.toFixed(1)} | ${goal ? `< ${GOALS.p99Ms}` : ''} | ${!goal ? '' : r.p99Ms < GOALS.p99Ms ? 'yes' : '**no**'} | ` +
    `${kib(r.first.rssPerWaiterBytes)} / ${kib(r.first.heapPerWaiterBytes)} KiB; ${kib(r.rssPerWaiterBytes)} / ${kib(r.heapPerWaiterBytes)} KiB | ${r.connectServerCpuMs.toFixed(0)} ms / ${r.serverCpuMs.toFixed(0)} ms | ${r.loadGeneratorCpuMs.toFixed(0)} ms | ` +
    `${r.serverRunQueueMs.toFixed(0)} ms / ${r.loadGeneratorRunQueueMs.toFixed(0)} ms | ` +
    `${r.rounds.map((x) => x.p99Ms.toFixed(0)).join(', ')} |` +
    (r.unexpected > 0 ? ` UNEXPECTED: ${r.unexpected}` : '')
  lines.push(wakeRow('SQLite, one process', w.sqlite.ours))
  lines.push(wakeRow('bare node:http (the ceiling), same rounds', w.sqlite.ceiling, false))
  if (w.postgres !== undefined) lines.push(wakeRow('PostgreSQL, waiters on process A, write through B', w.postgres))
  else lines.push(`| PostgreSQL | ${w.postgresSkipped ?? 'skipped'} | | | | | | | | | | |`)
  lines.push(
    '',
    `SQLite's p99 over the ceiling's, round by round: ${w.sqlite.p99Ratios.map((r) => r.toFixed(2)).join(', ')} (median ${w.sqlite.p99Ratio.toFixed(2)}).`,
  )
  return `${lines.join('\n')}\n`
}
