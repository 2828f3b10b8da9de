/**
 * One PostgreSQL connection in pipeline mode (node-postgres' `pipeline: true`): a statement is
 * written as soon as it is asked, without waiting for the answers of those before it, and the
 * answers come back in the order the statements went. The store sends its gathered validator reads
 * this way (gathered-reads.ts): several statements in flight then cost one backend that stays busy,
 * instead of one pooled connection each, whose backend is woken for every statement. Measured on a
 * 2-core machine with the other core busy: 33 µs of client CPU per statement against 54 µs with
 * five statements on five pooled connections (docs/performance.md has the service's figures).
 *
 * Pipelining changes no statement's meaning: each is its own Bind, Execute and Sync, so each runs
 * in its own implicit transaction with its own snapshot, taken when the backend starts it, which is
 * after it was written; a failed statement fails alone.
 *
 * The connection is made when the first statement is asked and made again, for the next one, after
 * it failed or the server ended it. Statements in flight when it fails fail with it: in pipeline
 * mode a statement that outlives `query_timeout` ends the connection, since the answers of those
 * behind it can only come after its own.
 */
import pg from 'pg'

/** What pg says when a connection was already closed when a statement was asked of it. */
export const CLOSED_MESSAGE = 'Client was closed and is not queryable'

export class PipelinedConnection {
  // the connection once made, and while it is being made the promise of it; both undefined
  // before the first statement and after a failure
  private ready: pg.Client | undefined
  private making: Promise<pg.Client> | undefined
  private ended = false

  /** `config`: as for a pg.Client; pipeline mode is added here. */
  constructor(private readonly config: pg.ClientConfig) {}

  /** Sends `statement` now (after the connection is made, the first time) and resolves with its answer. */
  query<R extends pg.QueryResultRow>(statement: pg.QueryConfig): Promise<pg.QueryResult<R>> {
    if (this.ended) return Promise.reject(new Error(CLOSED_MESSAGE))
    if (this.ready !== undefined) return this.ready.query<R>(statement)
    this.making ??= this.connect()
    return this.making.then((client) => client.query<R>(statement))
  }

  /** Closes the connection; statements asked after this fail. */
  async end(): Promise<void> {
    this.ended = true
    const client = this.ready ?? (await this.making?.catch(() => undefined))
    this.ready = undefined
    this.making = undefined
    await client?.end().catch(() => {})
  }

  private connect(): Promise<pg.Client> {
    const client = new pg.Client({ ...this.config, pipeline: true })
    // assigned below; declared first so that drop() can never meet it uninitialised
    let making: Promise<pg.Client> | undefined
    let failed = false
    // a connection that failed is dropped at once, so that the next statement makes a new one;
    // pg itself fails the statements in flight on it
    const drop = (): void => {
      if (failed) return
      failed = true
      if (this.ready === client) this.ready = undefined
      if (this.making === making) this.making = undefined
      client.end().catch(() => {})
    }
    // an 'error' with no listener would end the process
    client.on('error', drop)
    client.on('end', drop)
    making = client.connect().then(
      () => {
        if (this.making === making && !failed) {
          this.ready = client
          this.making = undefined
        }
        return client
      },
      (error: unknown) => {
        drop()
        throw error
      },
    )
    return making
  }
}
