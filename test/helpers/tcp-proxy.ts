/**
 * A TCP proxy (node:net) that tests put between a server process and its database, so that they
 * can take the database away for real: `close()` stops listening and cuts every open connection,
 * `open()` listens again on the same port; `stall()` keeps every connection open but lets nothing
 * through (a network partition), `flow()` delivers what waited and carries on.
 *
 * @example
 * const proxy = await TcpProxy.start({ host: '127.0.0.1', port: 5432 })
 * // DATABASE_URL=postgres://postgres@127.0.0.1:${proxy.port}/db
 * await proxy.close()
 * await proxy.open()
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { once } from 'node:events'

export interface ProxyTarget {
  readonly host: string
  readonly port: number
}

interface Pair {
  readonly client: Socket
  readonly upstream: Socket
}

/** Forwards every connection on 127.0.0.1:`port` to `target`, until closed. */
export class TcpProxy {
  private server: Server | undefined
  private readonly pairs = new Set<Pair>()
  private stalled = false
  private connectionCount = 0

  private constructor(
    private readonly target: ProxyTarget,
    private listenPort: number,
  ) {}

  /** Starts a proxy to `target` on an ephemeral port (or `port`). */
  static async start(target: ProxyTarget, port = 0): Promise<TcpProxy> {
    const proxy = new TcpProxy(target, port)
    await proxy.open()
    return proxy
  }

  /** The port the proxy listens on; the same after close() and open(). */
  get port(): number {
    return this.listenPort
  }

  /** How many client connections the proxy accepted so far. */
  get connections(): number {
    return this.connectionCount
  }

  /** Listens (again) on the proxy's port. */
  async open(): Promise<void> {
    if (this.server !== undefined) return
    const server = createServer((client) => this.forward(client))
    server.listen(this.listenPort, '127.0.0.1')
    await once(server, 'listening')
    const address = server.address()
    if (address === null || typeof address === 'string') throw new Error('proxy has no TCP address')
    this.listenPort = address.port
    this.server = server
  }

  /** Stops listening and destroys every open connection, both sides. */
  async close(): Promise<void> {
    const server = this.server
    if (server === undefined) return
    this.server = undefined
    const closed = new Promise<void>((resolve) => server.close(() => resolve()))
    for (const pair of this.pairs) this.drop(pair)
    await closed
  }

  /** Keeps every connection (and accepts new ones) but forwards nothing until flow(). */
  stall(): void {
    this.stalled = true
    for (const pair of this.pairs) {
      pair.client.unpipe(pair.upstream)
      pair.upstream.unpipe(pair.client)
      pair.client.pause()
      pair.upstream.pause()
    }
  }

  /** Delivers what waited during a stall, and forwards again. */
  flow(): void {
    this.stalled = false
    for (const pair of this.pairs) this.connect(pair)
  }

  private forward(client: Socket): void {
    this.connectionCount++
    const upstream = createConnection({ host: this.target.host, port: this.target.port })
    const pair = { client, upstream }
    this.pairs.add(pair)
    client.on('error', () => this.drop(pair)).on('close', () => this.drop(pair))
    upstream.on('error', () => this.drop(pair)).on('close', () => this.drop(pair))
    if (this.stalled) client.pause()
    else this.connect(pair)
  }

  private connect(pair: Pair): void {
    pair.client.pipe(pair.upstream)
    pair.upstream.pipe(pair.client)
  }

  private drop(pair: Pair): void {
    pair.client.destroy()
    pair.upstream.destroy()
    this.pairs.delete(pair)
  }
}

/** A TCP proxy in front of the PostgreSQL server of `databaseUrl`. */
export function proxyToDatabase(databaseUrl: string): Promise<TcpProxy> {
  const target = new URL(databaseUrl)
  return TcpProxy.start({ host: target.hostname, port: Number(target.port || 5432) })
}

/** `databaseUrl` with its host and port those of `proxy`: the same database, reached through it. */
export function throughProxy(databaseUrl: string, proxy: TcpProxy): string {
  const viaProxy = new URL(databaseUrl)
  viaProxy.hostname = '127.0.0.1'
  viaProxy.port = String(proxy.port)
  return viaProxy.toString()
}
