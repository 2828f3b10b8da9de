import pg from 'pg'
import { newEpoch } from '../epoch.js'
import {
  StoreUnavailableError,
  type ChangesPage,
  type ChangesRequest,
  type CollectionValidator,
  type DeleteResult,
  type GatheredReadObserver,
  type StoredChange,
  type Unwatch,
  type PageRequest,
  type PersonPage,
  type PersonStore,
  type PersonValidator,
  type StoredPerson,
  type WriteResult,
} from '../person-store.js'
import { GatheredReads } from './gathered-reads.js'
import { CLOSED_MESSAGE, PipelinedConnection } from './pipelined-connection.js'
import { PostgresChangeListener } from './postgres-change-listener.js'
import { MIGRATIONS, MIGRATION_LOCK_KEY, SCHEMA_VERSION } from './postgres-schema.js'

/** Options for the PostgreSQL driver. */
export interface PostgresOptions {
  /** Most connections this process holds open (DATABASE_POOL_SIZE; default 10). */
  readonly poolSize?: number
  /** How long to wait for a connection before answering 503, in ms. */
  readonly connectionTimeoutMs?: number
  /** The longest a statement may run before it is cancelled, in ms. */
  readonly statementTimeoutMs?: number
  /**
   * The longest this process waits for any answer to a query, in ms: when the network to the
   * database stalls, the server-side statement timeout never fires, and this one does.
   */
  readonly queryTimeoutMs?: number
  /**
   * How often a process with waiting feed requests re-reads the revision even without a
   * notification, in ms (default 1000): the most a lost LISTEN notification can delay a wake-up.
   */
  readonly changesRecheckMs?: number
}

/** A row of the changes query, as json_agg writes it: a tombstone has no person_name. */
interface ChangeRow {
  person_id: string
  person_name: string | null
  change_date: number
  version: number
}

// the one key of the collection validator's gathered reads
const META_KEY = 1
// ids in one gathered validator statement
const MAX_GATHERED_IDS = 500
// gathered statements of each kind in flight at once on the validator connection: enough that one
// is being written while others are answered; more only make each smaller (1, 2, 4 and 8 measured
// within noise of each other for get304 at 10 connections)
const PIPELINED_STATEMENTS = 4

/** The application_name of the connection that reads validators, as pg_stat_activity shows it. */
export const VALIDATORS_APPLICATION_NAME = 'ifmatch-validators'

interface MetaRow {
  revision: string
  changed_at: string
  horizon: string
}

function toCollection(row: MetaRow): CollectionValidator {
  return { revision: Number(row.revision), changedAt: Number(row.changed_at), horizon: Number(row.horizon) }
}

function toChange(row: ChangeRow): StoredChange {
  if (row.person_name === null) return { deleted: true, id: row.person_id, version: row.version }
  return { deleted: false, person: { id: row.person_id, name: row.person_name, changedAt: row.change_date, version: row.version } }
}

interface PersonRow {
  person_id: string
  person_name: string
  change_date: string
  version: string
}

// bigint columns arrive as strings; revisions and milliseconds stay far below 2^53
function toPerson(row: PersonRow): StoredPerson {
  return { id: row.person_id, name: row.person_name, changedAt: Number(row.change_date), version: Number(row.version) }
}

// what pg says of a connection that is gone or could not be made: the pool's words, then a
// single client's (the validator connection's: its connect timeout, and a statement asked of it
// once closed)
const UNAVAILABLE_MESSAGE = new RegExp(
  [
    'Connection terminated',
    'timeout exceeded when trying to connect',
    'Query read timeout',
    'Client has encountered a connection error',
    'Cannot use a pool after calling end',
    '^timeout expired$',
    `^${CLOSED_MESSAGE}$`,
  ].join('|'),
  'i',
)

// SQLSTATE classes 08 (connection), 53 (resources), 57P (operator intervention: shutdown, …),
// 57014 (a statement cancelled: it outlived statement_timeout, waiting for a lock or a busy server)
// and socket errors are conditions of the moment, answered 503; anything else is a bug
function isUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false
  const code = (error as { code?: unknown }).code
  if (typeof code === 'string' && (/^(08|53|57P|57014$)/.test(code) || /^E(CONNREFUSED|CONNRESET|PIPE|TIMEDOUT|HOSTUNREACH|NETUNREACH|AI_AGAIN)$/.test(code))) {
    return true
  }
  return UNAVAILABLE_MESSAGE.test(error.message)
}

/**
 * The PostgreSQL driver: any number of server processes may share one database. Each write is
 * one call of a PL/pgSQL function (see postgres-schema.ts); each read is one statement, so a page
 * and its collection validator always come from the same snapshot.
 */
export class PostgresPersonStore implements PersonStore {
  readonly driver = 'postgres'

  // the validator reads of concurrent requests, one statement for many (gathered-reads.ts says
  // why each is still its request's own read), sent on a connection of their own in pipeline mode
  // (pipelined-connection.ts), so that they take no connection of the pool from the writes
  private readonly validators: GatheredReads<string, PersonValidator>
  private readonly collection: GatheredReads<typeof META_KEY, CollectionValidator>

  private constructor(
    private readonly pool: pg.Pool,
    private readonly validatorConnection: PipelinedConnection,
    readonly epoch: string,
    private readonly listener: PostgresChangeListener,
  ) {
    this.validators = new GatheredReads((ids) => this.readValidators(ids), { maxInFlight: PIPELINED_STATEMENTS, maxKeys: MAX_GATHERED_IDS })
    this.collection = new GatheredReads(() => this.readMeta(), { maxInFlight: PIPELINED_STATEMENTS, maxKeys: 1 })
  }

  /** Connects, creates or migrates the schema (one process at a time), and reads the epoch. */
  static async open(url: string, options: PostgresOptions = {}): Promise<PostgresPersonStore> {
    const connection: pg.ClientConfig = {
      connectionString: url,
      connectionTimeoutMillis: options.connectionTimeoutMs ?? 3000,
      statement_timeout: options.statementTimeoutMs ?? 4000,
      // a timed-out query fails its connection: the pool discards it, and the validator
      // connection is made again for the next read
      query_timeout: options.queryTimeoutMs ?? 5000,
      // notice a dead peer on an idle connection too
      keepAlive: true,
      application_name: 'ifmatch',
      // the write functions rely on READ COMMITTED: after taking the revision row lock, each
      // statement sees what earlier writers committed, whatever default the server was configured
      // with. Set at connection start-up, so it needs no query racing the first one.
      options: '-c default_transaction_isolation=read\\ committed',
    }
    const pool = new pg.Pool({ ...connection, max: options.poolSize ?? 10 })
    // an idle connection that the server drops must not crash the process; the pool replaces it
    pool.on('error', () => {})
    try {
      const epoch = await migrate(pool)
      const listener = new PostgresChangeListener({
        url,
        ...(options.changesRecheckMs === undefined ? {} : { recheckMs: options.changesRecheckMs }),
        ...(options.connectionTimeoutMs === undefined ? {} : { connectionTimeoutMs: options.connectionTimeoutMs }),
      })
      return new PostgresPersonStore(pool, new PipelinedConnection({ ...connection, application_name: VALIDATORS_APPLICATION_NAME }), epoch, listener)
    } catch (error) {
      await pool.end().catch(() => {})
      if (isUnavailable(error)) throw new StoreUnavailableError('PostgreSQL is unavailable', { cause: error })
      throw error
    }
  }

  observeGatheredReads(observer: GatheredReadObserver): Unwatch {
    const stops = [
      this.validators.observe((outcome, seconds) => observer('readValidator', outcome, seconds)),
      this.collection.observe((outcome, seconds) => observer('readCollectionValidator', outcome, seconds)),
    ]
    return () => {
      for (const stop of stops) stop()
    }
  }

  readValidator(id: string): Promise<PersonValidator | undefined> {
    return this.validators.read(id)
  }

  private async readValidators(ids: readonly string[]): Promise<ReadonlyMap<string, PersonValidator>> {
    // named: each connection parses and plans it once
    const { rows } = await this.validatorQuery<{ person_id: string; version: string; change_date: string }>({
      name: 'ifmatch_validators',
      text: 'SELECT person_id, version, change_date FROM persons WHERE person_id = ANY($1::text[])',
      values: [ids],
    })
    const found = new Map<string, PersonValidator>()
    for (const row of rows) found.set(row.person_id, { version: Number(row.version), changedAt: Number(row.change_date) })
    return found
  }

  async read(id: string): Promise<StoredPerson | undefined> {
    const { rows } = await this.query<PersonRow>('SELECT person_id, person_name, change_date, version FROM persons WHERE person_id = $1', [id])
    return rows[0] === undefined ? undefined : toPerson(rows[0])
  }

  async readCollectionValidator(): Promise<CollectionValidator> {
    return (await this.collection.read(META_KEY))!
  }

  private async readMeta(): Promise<ReadonlyMap<typeof META_KEY, CollectionValidator>> {
    const { rows } = await this.validatorQuery<MetaRow>({
      name: 'ifmatch_collection',
      text: 'SELECT revision, changed_at, horizon FROM ifmatch_meta WHERE id = 1',
    })
    return new Map([[META_KEY, toCollection(rows[0]!)]])
  }

  async readChanges(request: ChangesRequest): Promise<ChangesPage> {
    // one statement, one snapshot: every write up to the revision read is in the rows, and no
    // write after it (docs/changes-feed.md: a write still open has not moved the revision)
    const { rows } = await this.query<MetaRow & { changes: ChangeRow[] }>(
      `SELECT m.revision, m.changed_at, m.horizon,
              COALESCE((SELECT json_agg(c ORDER BY c.version) FROM (
                SELECT person_id, person_name, change_date, version FROM persons WHERE version > $1
                UNION ALL
                SELECT person_id, NULL, deleted_at, version FROM ifmatch_tombstones WHERE version > $2
                ORDER BY version LIMIT $3) c), '[]'::json) AS changes
       FROM ifmatch_meta m WHERE m.id = 1`,
      [request.since, request.tombstonesSince, request.limit + 1],
    )
    const row = rows[0]!
    return {
      collection: toCollection(row),
      changes: row.changes.slice(0, request.limit).map(toChange),
      hasMore: row.changes.length > request.limit,
    }
  }

  watch(listener: () => void): Unwatch {
    return this.listener.watch(listener)
  }

  async purgeTombstones(before: number): Promise<number> {
    // the horizon moves in the transaction that removes the tombstones: a reader sees both or neither
    const { rows } = await this.query<{ horizon: string }>(
      `WITH purged AS (DELETE FROM ifmatch_tombstones WHERE deleted_at < $1 RETURNING version),
            raised AS (UPDATE ifmatch_meta SET horizon = GREATEST(horizon, (SELECT max(version) FROM purged))
                       WHERE id = 1 AND EXISTS (SELECT 1 FROM purged) RETURNING horizon)
       SELECT COALESCE((SELECT horizon FROM raised), (SELECT horizon FROM ifmatch_meta WHERE id = 1)) AS horizon`,
      [before],
    )
    return Number(rows[0]!.horizon)
  }

  async readPage(request: PageRequest): Promise<PersonPage> {
    const { limit, after } = request
    // one statement, one snapshot: the rows and the revision that names them agree
    const { rows } = await this.query<MetaRow & { page: PersonRow[] }>(
      `SELECT m.revision, m.changed_at, m.horizon,
              COALESCE((SELECT json_agg(p ORDER BY p.person_id) FROM (
                SELECT person_id, person_name, change_date::text, version::text FROM persons
                WHERE $1::text IS NULL OR person_id > $1::text
                ORDER BY person_id LIMIT $2) p), '[]'::json) AS page
       FROM ifmatch_meta m WHERE m.id = 1`,
      [after ?? null, limit + 1],
    )
    const row = rows[0]!
    return {
      collection: toCollection(row),
      persons: row.page.slice(0, limit).map(toPerson),
      hasMore: row.page.length > limit,
    }
  }

  async create(id: string, name: string): Promise<WriteResult> {
    const changedAt = Date.now()
    const { rows } = await this.query<{ v: string | null }>('SELECT ifmatch_create($1, $2, $3) AS v', [id, name, changedAt])
    const v = rows[0]!.v
    if (v === null) return { ok: false, reason: 'exists' }
    this.listener.announce()
    return { ok: true, person: { id, name, changedAt, version: Number(v) } }
  }

  async update(id: string, name: string, expectedVersion: number): Promise<WriteResult> {
    const changedAt = Date.now()
    const { rows } = await this.query<{ v: string }>('SELECT ifmatch_update($1, $2, $3, $4) AS v', [id, name, expectedVersion, changedAt])
    const v = Number(rows[0]!.v)
    if (v === -1) return { ok: false, reason: 'not-found' }
    if (v === -2) return { ok: false, reason: 'version-mismatch' }
    this.listener.announce()
    return { ok: true, person: { id, name, changedAt, version: v } }
  }

  async delete(id: string, expectedVersion: number): Promise<DeleteResult> {
    const { rows } = await this.query<{ v: string }>('SELECT ifmatch_delete($1, $2, $3) AS v', [id, expectedVersion, Date.now()])
    const v = Number(rows[0]!.v)
    if (v === -1) return { ok: false, reason: 'not-found' }
    if (v === -2) return { ok: false, reason: 'version-mismatch' }
    this.listener.announce()
    return { ok: true }
  }

  async ping(): Promise<void> {
    await this.query('SELECT 1')
  }

  async close(): Promise<void> {
    await this.listener.stop()
    await this.validatorConnection.end()
    if (!this.pool.ended) await this.pool.end()
  }

  private query<R extends pg.QueryResultRow>(text: string | pg.QueryConfig, values?: unknown[]): Promise<pg.QueryResult<R>> {
    return unavailableAsStoreError(typeof text === 'string' ? this.pool.query<R>(text, values) : this.pool.query<R>(text))
  }

  // a gathered validator read, on the validator connection
  private validatorQuery<R extends pg.QueryResultRow>(statement: pg.QueryConfig): Promise<pg.QueryResult<R>> {
    return unavailableAsStoreError(this.validatorConnection.query<R>(statement))
  }
}

/** `answer`, with the errors of an unavailable database turned into StoreUnavailableError. */
async function unavailableAsStoreError<T>(answer: Promise<T>): Promise<T> {
  try {
    return await answer
  } catch (error) {
    if (isUnavailable(error)) throw new StoreUnavailableError('PostgreSQL is unavailable', { cause: error })
    throw error
  }
}

/**
 * Creates or migrates the schema under a transaction-scoped advisory lock, so that several
 * processes starting at once on an empty database neither race nor fail. Returns the epoch.
 */
async function migrate(pool: pg.Pool): Promise<string> {
  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY])
    const exists = await client.query(`SELECT to_regclass('ifmatch_meta') IS NOT NULL AS exists`)
    let current = 0
    if (exists.rows[0].exists === true) {
      const { rows } = await client.query<{ schema_version: number }>('SELECT schema_version FROM ifmatch_meta WHERE id = 1')
      current = rows[0]?.schema_version ?? 0
    }
    if (current > SCHEMA_VERSION) {
      throw new Error(`the database has schema version ${current}, newer than this ifmatch knows (${SCHEMA_VERSION})`)
    }
    for (let version = current; version < SCHEMA_VERSION; version++) {
      await client.query(MIGRATIONS[version]!)
      if (version === 0) {
        await client.query('INSERT INTO ifmatch_meta (id, epoch, revision, changed_at, schema_version) VALUES (1, $1, 0, $2, 0)', [newEpoch(), Date.now()])
      }
    }
    await client.query('UPDATE ifmatch_meta SET schema_version = $1 WHERE id = 1', [SCHEMA_VERSION])
    const { rows } = await client.query<{ epoch: string }>('SELECT epoch FROM ifmatch_meta WHERE id = 1')
    await client.query('COMMIT')
    return rows[0]!.epoch
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {})
    throw error
  } finally {
    client.release()
  }
}
