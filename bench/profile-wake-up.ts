/**
 * `node --import tsx bench/profile-wake-up.ts [--postgres]` (after `npm run build`): where the
 * server's CPU time goes while one write wakes 1,000 long polls. Runs the wake-up of the changes
 * bench against servers under `node --cpu-prof` and prints their CPU time per woken waiter by
 * where it was spent, counting only the samples taken between each write and its last answer.
 * The .cpuprofile files stay in .bench/profiles/ for Chrome DevTools, with wake-up-spans.json (µs on
 * the profiles' clock).
 *
 * Options: --waiters N (default 1000), --rounds N (default 3), --postgres (waiters on process A,
 * the write through process B, on a fresh PostgreSQL database; both are profiled).
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { summarise } from './cpu-profile.js'
import { createBenchDatabase, type BenchDatabase } from './postgres-database.js'
import { ROOT, pinSelf, startIfmatch, type RunningProcess } from './processes.js'
import { keepAliveAgent, rawRequest } from './raw-request.js'
import { measureWakeUp } from './wake-up.js'
import { seed } from './workloads.js'

const { values: flags } = parseArgs({
  options: {
    waiters: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '3' },
    postgres: { type: 'boolean', default: false },
  },
})
const waiters = Number(flags.waiters)
const rounds = Number(flags.rounds)

function log(message: string): void {
  process.stderr.write(`${message}\n`)
}

async function main(): Promise<void> {
  const pinned = pinSelf('1')
  const cpus = pinned ? '0' : undefined
  const outDir = join(ROOT, '.bench', 'profiles', `wake-up-${Date.now()}`)
  const dataDir = mkdtempSync(join(tmpdir(), 'ifmatch-profile-'))
  const servers = new Map<string, RunningProcess>()
  let database: BenchDatabase | undefined
  try {
    let url: string
    if (flags.postgres === true) {
      database = await createBenchDatabase()
      url = database.url
    } else {
      url = `sqlite:${join(dataDir, 'bench.sqlite')}`
      await seed(url.slice('sqlite:'.length), 0, 1000)
    }
    const names = flags.postgres === true ? ['waiters', 'writer'] : ['waiters']
    for (const name of names) {
      mkdirSync(join(outDir, name), { recursive: true })
      servers.set(name, await startIfmatch(url, 1, cpus, {}, ['--cpu-prof', `--cpu-prof-dir=${join(outDir, name)}`]))
    }
    const waitOn = servers.get('waiters')!
    const writeThrough = servers.get('writer') ?? waitOn
    const agent = keepAliveAgent()
    const created = await rawRequest(`${writeThrough.url}/persons`, {
      agent,
      method: 'POST',
      body: JSON.stringify({ person_id: 'wake-up', person_name: 'Wake me' }),
    })
    agent.destroy()
    if (created.status !== 201) throw new Error(`POST /persons: ${created.status}`)
    const spans: [bigint, bigint][] = []
    const result = await measureWakeUp(waitOn, writeThrough, 'wake-up', {
      waiters,
      rounds,
      waitSeconds: 30,
      connectBatch: 100,
      log,
      onWakeUp: (from, to) => spans.push([from, to]),
    })
    log(`under the profiler: p50 ${result.p50Ms.toFixed(1)} ms, p99 ${result.p99Ms.toFixed(1)} ms, server CPU in the wake-up ${result.serverCpuMs} ms`)
    for (const server of servers.values()) await server.stop()
    // the spans, for reading the profiles further (µs, the profiles' clock)
    writeFileSync(join(outDir, 'wake-up-spans.json'), `${JSON.stringify(spans.map(([from, to]) => [Number(from / 1000n), Number(to / 1000n)]))}\n`)
    const lines: string[] = []
    for (const name of names) {
      const file = readdirSync(join(outDir, name)).find((f) => f.endsWith('.cpuprofile'))
      if (file === undefined) throw new Error(`no profile written in ${join(outDir, name)}`)
      // every wake-up span counts, the warm-up round's too
      const micros = summarise(join(outDir, name, file), waiters * spans.length, spans)
      const total = [...micros.values()].reduce((a, b) => a + b, 0)
      lines.push(
        '',
        `| ${name === 'waiters' ? 'the process holding the waiters' : 'the process taking the write'}: CPU µs per woken waiter | µs |`,
        '| --- | ---: |',
      )
      for (const [where, us] of [...micros].sort((a, b) => b[1] - a[1])) lines.push(`| ${where} | ${us.toFixed(1)} |`)
      lines.push(`| **total** | **${total.toFixed(1)}** |`)
    }
    process.stdout.write(`${lines.join('\n')}\n\nprofiles: ${outDir}\n`)
  } finally {
    for (const server of servers.values()) await server.stop()
    if (database !== undefined) await database.drop()
    rmSync(dataDir, { recursive: true, force: true })
  }
}

await main()
