/**
 * The real shared caches of deploy/ — varnishd with deploy/varnish/ifmatch.vcl, nginx with
 * deploy/nginx/ifmatch.conf — started as this process's own children on free loopback ports in
 * front of a running ifmatch, each in a temporary directory of its own (never the system's
 * configuration, services or ports), and stopped by their own pid.
 * Without the binary: with CI=true the suites fail (CI must run them); elsewhere they are
 * skipped, loudly (as test-stores.ts does for PostgreSQL).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { tempDir } from './test-stores.js'

const DEPLOY = fileURLToPath(new URL('../../deploy/', import.meta.url))

// only to turn a hang into a failure, never to judge speed
const READY_TIMEOUT_MS = 20_000
const STOP_TIMEOUT_MS = 10_000

/** A cache running in front of ifmatch. */
export interface RunningCache {
  /** Where clients reach ifmatch through the cache. */
  readonly baseUrl: string
  /** Everything the cache's process wrote so far, stdout and stderr. */
  output(): string
  /** Stops the process (SIGTERM, then SIGKILL) and removes its directory. */
  stop(): Promise<void>
}

/** One kind of shared cache the suites put in front of ifmatch. */
export interface SharedCache {
  readonly name: string
  /** The binary (VARNISHD_PATH / NGINX_PATH override). */
  readonly binary: string
  /** The configuration file in deploy/ that the cache runs with. */
  readonly config: string
  /** Why the suite cannot run here, or false: the `skip` option of a `describe`. */
  skipReason(): string | false
  /** Starts the cache in front of the ifmatch at `backendUrl`. */
  start(backendUrl: string, options?: StartCacheOptions): Promise<RunningCache>
}

export interface StartCacheOptions {
  /** Extra command-line arguments for the cache's binary (varnishd `-p` parameters, …). */
  readonly args?: readonly string[]
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no TCP address')
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return address.port
}

/**
 * `text` with each `[from, to]` replaced. A `from` that is not in `text` is an error: the
 * deploy file changed, and the tests would otherwise run something else than what they say.
 */
export function substitute(text: string, file: string, replacements: readonly (readonly [string, string])[]): string {
  let result = text
  for (const [from, to] of replacements) {
    if (!result.includes(from)) throw new Error(`${file} no longer contains ${JSON.stringify(from)}`)
    result = result.split(from).join(to)
  }
  return result
}

// said once per binary, however many suites ask
const announced = new Set<string>()

function skipReason(name: string, binary: string): string | false {
  if (existsSync(binary) || process.env.CI === 'true') return false
  const reason = `${binary} is missing: the ${name} tests are NOT run (apt-get install ${name === 'Varnish' ? 'varnish' : 'nginx-light'}; .ci/run does)`
  if (!announced.has(binary)) process.stderr.write(`\n!!! ${reason}\n\n`)
  announced.add(binary)
  return reason
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

interface Spawned {
  readonly child: ChildProcess
  output(): string
}

function spawnLogged(binary: string, args: readonly string[], cwd: string): Spawned {
  const child = spawn(binary, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  let text = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    text += chunk
  })
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    text += chunk
  })
  child.on('error', (error) => {
    text += `\n${String(error)}`
  })
  return { child, output: () => text }
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (exited(child) || child.pid === undefined) return
  const done = once(child, 'exit')
  child.kill('SIGTERM')
  let timer: NodeJS.Timeout | undefined
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), STOP_TIMEOUT_MS)
  })
  const result = await Promise.race([done, timedOut])
  clearTimeout(timer)
  if (result === 'timeout' && !exited(child)) {
    process.stderr.write(`!!! ${child.spawnfile} (pid ${child.pid}) ignored SIGTERM for ${STOP_TIMEOUT_MS} ms; killing it\n`)
    child.kill('SIGKILL')
    await done
  }
}

/** Waits until `port` accepts connections; fails if the process exits first or never gets there. */
async function waitUntilListening(spawned: Spawned, port: number, name: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS
  while (!exited(spawned.child)) {
    if (await canConnect(port)) return
    if (Date.now() > deadline) throw new Error(`${name} did not listen on ${port} within ${READY_TIMEOUT_MS} ms:\n${spawned.output()}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`${name} exited (${String(spawned.child.exitCode ?? spawned.child.signalCode)}) before it listened:\n${spawned.output()}`)
}

/**
 * Starts a cache with `launch` (which picks its ports and spawns it), retrying with new ports
 * when another process took one between freePort() and the cache's bind.
 */
async function startWithRetry(name: string, launch: () => Promise<{ spawned: Spawned; port: number; dir: { cleanup(): void } }>): Promise<RunningCache> {
  for (let attempt = 1; ; attempt++) {
    const { spawned, port, dir } = await launch()
    try {
      await waitUntilListening(spawned, port, name)
    } catch (error) {
      await stopChild(spawned.child)
      dir.cleanup()
      if (attempt < 3 && /in use|EADDRINUSE|Could not get socket/i.test(spawned.output())) continue
      throw error
    }
    return {
      baseUrl: `http://127.0.0.1:${port}`,
      output: spawned.output,
      async stop() {
        await stopChild(spawned.child)
        dir.cleanup()
      },
    }
  }
}

function backendAddress(backendUrl: string): { host: string; port: string } {
  const url = new URL(backendUrl)
  return { host: url.hostname, port: url.port }
}

const VARNISH_VCL = join(DEPLOY, 'varnish', 'ifmatch.vcl')

/** varnishd with deploy/varnish/ifmatch.vcl (its backend pointed at the test's ifmatch). */
export const VARNISH: SharedCache = {
  name: 'Varnish',
  binary: process.env.VARNISHD_PATH ?? '/usr/sbin/varnishd',
  config: 'deploy/varnish/ifmatch.vcl',
  skipReason() {
    return skipReason(this.name, this.binary)
  },
  start(backendUrl, options = {}) {
    return startWithRetry(this.name, async () => {
      const dir = tempDir('ifmatch-varnish-')
      const backend = backendAddress(backendUrl)
      const vcl = substitute(readFileSync(VARNISH_VCL, 'utf8'), this.config, [
        ['.host = "127.0.0.1";', `.host = "${backend.host}";`],
        ['.port = "5000";', `.port = "${backend.port}";`],
      ])
      const vclPath = join(dir.path, 'ifmatch.vcl')
      writeFileSync(vclPath, vcl)
      const port = await freePort()
      const args = [
        // foreground, its own working directory (-n), no jail: a child of this test, nothing shared
        '-F',
        '-j',
        'none',
        '-n',
        join(dir.path, 'work'),
        '-a',
        `127.0.0.1:${port}`,
        '-f',
        vclPath,
        '-s',
        'malloc,32m',
        // as the VCL's header asks
        '-p',
        'http_gzip_support=off',
        ...(options.args ?? []),
      ]
      return { spawned: spawnLogged(this.binary, args, dir.path), port, dir }
    })
  },
}

const NGINX_CONF = join(DEPLOY, 'nginx', 'ifmatch.conf')

/** nginx with deploy/nginx/ifmatch.conf included in a minimal nginx.conf of the test's own. */
export const NGINX: SharedCache = {
  name: 'nginx',
  binary: process.env.NGINX_PATH ?? '/usr/sbin/nginx',
  config: 'deploy/nginx/ifmatch.conf',
  skipReason() {
    return skipReason(this.name, this.binary)
  },
  start(backendUrl, options = {}) {
    return startWithRetry(this.name, async () => {
      const dir = tempDir('ifmatch-nginx-')
      // run as root, nginx's workers drop to nobody: they must reach the cache and temp directories
      chmodSync(dir.path, 0o755)
      const backend = backendAddress(backendUrl)
      const [port, innerPort] = [await freePort(), await freePort()]
      const conf = substitute(readFileSync(NGINX_CONF, 'utf8'), this.config, [
        ['server 127.0.0.1:5000;', `server ${backend.host}:${backend.port};`],
        ['server 127.0.0.1:8081;', `server 127.0.0.1:${innerPort};`],
        ['listen 127.0.0.1:8081;', `listen 127.0.0.1:${innerPort};`],
        ['listen 8080;', `listen 127.0.0.1:${port};`],
        ['/var/cache/nginx/ifmatch', join(dir.path, 'cache')],
      ])
      writeFileSync(join(dir.path, 'ifmatch.conf'), conf)
      // every path nginx would otherwise take from its compiled-in defaults (/var/lib/nginx, /run)
      const temp = (kind: string): string => `  ${kind}_temp_path ${join(dir.path, kind)};`
      writeFileSync(
        join(dir.path, 'nginx.conf'),
        [
          'worker_processes 1;',
          `pid ${join(dir.path, 'nginx.pid')};`,
          // into output(), so that a failing test shows nginx's complaint
          'error_log stderr warn;',
          'events { worker_connections 512; }',
          'http {',
          '  access_log off;',
          temp('client_body'),
          temp('proxy'),
          temp('fastcgi'),
          temp('uwsgi'),
          temp('scgi'),
          `  include ${join(dir.path, 'ifmatch.conf')};`,
          '}',
          '',
        ].join('\n'),
      )
      const args = ['-e', 'stderr', '-p', dir.path, '-c', join(dir.path, 'nginx.conf'), '-g', 'daemon off;', ...(options.args ?? [])]
      return { spawned: spawnLogged(this.binary, args, dir.path), port, dir }
    })
  },
}
