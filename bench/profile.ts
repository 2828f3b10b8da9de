/**
 * `npm run bench:profile -- WORKLOAD`: where a request's CPU time goes. Runs one workload of
 * `npm run bench` (get200, get304, put, list200, list304) against ifmatch and its ceiling against
 * the bare node:http server, each under `node --cpu-prof`, and prints the server CPU time per
 * request by where it was spent: the socket write, the rest of Node's HTTP, Fastify, SQLite, the
 * service's own code, garbage collection. The .cpuprofile files stay in .bench/profiles/ for
 * Chrome DevTools.
 *
 * Options: --duration S (default 5), --connections N (default 10), --persons N (default 1000),
 * --postgres (ifmatch on a fresh PostgreSQL database too, beside SQLite and the ceiling: where a
 * request's time goes when every validator is a round trip).
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { summarise } from './cpu-profile.js'
import { measure, type LoadOptions, type Workload } from './load.js'
import { createBenchDatabase, type BenchDatabase } from './postgres-database.js'
import { ROOT, pinSelf, startBare, startIfmatch, startPeer, type RunningProcess } from './processes.js'
import { PAGE, ifmatchWorkloads, seed, seedDatabase } from './workloads.js'

const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '10' },
    persons: { type: 'string', default: '1000' },
    postgres: { type: 'boolean', default: false },
    peers: { type: 'boolean', default: false },
  },
})
const workloadName = positionals[0] ?? 'get304'
const load: LoadOptions = { connections: Number(flags.connections), durationSeconds: Number(flags.duration), warmupSeconds: 1, rounds: 1 }

async function profiled(start: (args: string[]) => Promise<RunningProcess>, dir: string, workload: Workload): Promise<Map<string, number>> {
  mkdirSync(dir, { recursive: true })
  const server = await start(['--cpu-prof', `--cpu-prof-dir=${dir}`])
  let requests = 0
  try {
    const m = await measure(server.url, workload, load, () => server.cpuMs())
    // the profile spans the warm-up too: count its requests as well (same rate, within noise)
    requests = m.requests * (1 + load.warmupSeconds / load.durationSeconds)
    process.stderr.write(`  ${workload.name}: ${m.requestsPerSecond.toFixed(0)} req/s, server CPU ${m.serverCpuMicrosPerRequest.toFixed(1)} µs/req\n`)
  } finally {
    await server.stop()
  }
  const file = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .sort()
    .at(-1)
  if (file === undefined) throw new Error(`no profile written in ${dir}`)
  return summarise(join(dir, file), requests)
}

async function main(): Promise<void> {
  const pinned = pinSelf('1')
  const cpus = pinned ? '0' : undefined
  const outDir = join(ROOT, '.bench', 'profiles', `${workloadName}-${Date.now()}`)
  const dataDir = mkdtempSync(join(tmpdir(), 'ifmatch-profile-'))
  const dbPath = join(dataDir, 'bench.sqlite')
  let database: BenchDatabase | undefined
  try {
    await seed(dbPath, 0, Number(flags.persons))
    const columns: { name: string; profile: Map<string, number> }[] = []
    let pageBytes = 0
    const ifmatch = async (name: string, url: string, dir: string): Promise<void> => {
      let base = ''
      const workload = ifmatchWorkloads(() => base, load.connections).find((w) => w.name === workloadName)
      if (workload === undefined) throw new Error(`no workload ${workloadName}: get200, get304, put, list200 or list304`)
      columns.push({
        name,
        profile: await profiled(
          async (args) => {
            const server = await startIfmatch(url, 1, cpus, {}, args)
            base = server.url
            pageBytes = Buffer.byteLength(await (await fetch(base + PAGE)).text())
            return server
          },
          join(outDir, dir),
          workload,
        ),
      })
    }
    if (flags.postgres === true) {
      database = await createBenchDatabase()
      await seedDatabase(database.url, 0, Number(flags.persons))
      await ifmatch('ifmatch on PostgreSQL', database.url, 'ifmatch-postgres')
    }
    await ifmatch('ifmatch', `sqlite:${dbPath}`, 'ifmatch')
    if (flags.peers === true) {
      for (const kind of ['fastify', 'express'] as const) {
        let base = ''
        const workload = ifmatchWorkloads(() => base, load.connections).find((w) => w.name === workloadName)!
        columns.push({
          name: kind === 'fastify' ? 'Fastify + @fastify/etag' : 'Express 5',
          profile: await profiled(
            async (args) => {
              const server = await startPeer(kind, Number(flags.persons), cpus, [], args)
              base = server.url
              return server
            },
            join(outDir, kind),
            workload,
          ),
        })
      }
    }
    const bareWorkload: Workload = workloadName.endsWith('304')
      ? { name: 'bare304', path: '/persons/x', expect: 304, headers: { 'if-none-match': '"bare.1"' } }
      : { name: 'bare200', path: workloadName.startsWith('list') ? '/page' : '/persons/x', expect: 200 }
    columns.push({ name: 'bare node:http', profile: await profiled((args) => startBare(pageBytes, cpus, args), join(outDir, 'bare'), bareWorkload) })
    const first = columns[0]!.profile
    const rows = [...new Set(columns.flatMap((c) => [...c.profile.keys()]))].sort((a, b) => (first.get(b) ?? 0) - (first.get(a) ?? 0))
    const total = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0)
    const lines = [
      `| server CPU µs per request (${workloadName} vs ${bareWorkload.name}) | ${columns.map((c) => c.name).join(' | ')} |`,
      `| --- | ${columns.map(() => '---:').join(' | ')} |`,
    ]
    for (const row of rows) lines.push(`| ${row} | ${columns.map((c) => (c.profile.get(row) ?? 0).toFixed(2)).join(' | ')} |`)
    lines.push(`| **total** | ${columns.map((c) => `**${total(c.profile).toFixed(2)}**`).join(' | ')} |`)
    process.stdout.write(`${lines.join('\n')}\n\nprofiles: ${outDir}\n`)
  } finally {
    rmSync(dataDir, { recursive: true, force: true })
    await database?.drop()
  }
}

await main()
