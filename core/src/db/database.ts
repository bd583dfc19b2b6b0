import type { MikroORM } from '@mikro-orm/postgresql'
import type { EntityManager } from '@mikro-orm/postgresql'
import { migrationsList } from '@trellis/migrations'
import { join } from 'node:path'
import pg from 'pg'
import type { Logger } from 'pino'
import type { KernelConfig } from '../config.js'
import { KRN } from '../errors.js'
import { startEmbeddedPostgres, type EmbeddedPostgres } from './embedded.js'
import { initOrm, migratorOf } from './orm.js'
import { abandoned, begin, type RawConnection, scopedTx, settle } from './scoped-tx.js'

export { positional } from './scoped-tx.js'

/** The organisation id of the platform itself: it owns the platform audit chain and platform memberships. */
export const PLATFORM_ORG = '00000000-0000-0000-0000-000000000000'

const ACTIVE: OrgStatus = Object.freeze({ orgStatus: 'active', partnerStatus: 'active' })

// A transaction's scoping — its role, its organisation, and the organisation's status read back
// or checked (ADR 0112) — as statements prepared once per connection.
const SCOPING = "select set_config('role', $1, true), set_config('app.tenant_id', $2, true)"
const SCOPE_STATUS = { name: 'trellis_scope_status', text: `${SCOPING}, trellis_org_block($3::uuid) as block` }
const SCOPE_ACTIVE = { name: 'trellis_scope_active', text: `${SCOPING}, trellis_org_assert_active($3::uuid)` }

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

interface RawPool {
  acquireConnection(): Promise<RawConnection>
  releaseConnection(conn: RawConnection): Promise<void>
}

/** What a transaction body gets. */
export interface Tx {
  /** Runs parameterised SQL (`?` placeholders) in this transaction. */
  sql<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>
  /**
   * Like {@link sql} but not kept as a named prepared statement: for SQL whose text varies with
   * its input (plugin queries), so the set of statements stays bounded and each is planned with
   * its actual values.
   */
  sqlOnce<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>
  /**
   * Switches the rows this transaction sees (and may write) to another organisation, for the
   * few platform acts that must write into two organisations atomically (creating a tenant
   * with its first admin).
   */
  useOrg(orgId: string): Promise<void>
  /** Every organisation this transaction has acted in. */
  readonly orgs: ReadonlySet<string>
}

/**
 * Where transactions come from: the request pool ({@link Database}) or the background pool
 * ({@link Database.background}), scoped alike.
 */
export type TransactionSource = Pick<Database, 'inOrg'>

/** Connections background work may hold at once (on PostgreSQL; PGlite has one connection in all). */
export const BACKGROUND_POOL_MAX = 2

export type DbRole = 'trellis_app' | 'trellis_auditor' | 'trellis_bootstrap' | 'trellis_events' | 'trellis_signin'

export interface OrgStatus {
  orgStatus: string | null
  partnerStatus: string | null
}

/**
 * The kernel's database: one MikroORM instance over one pool, and the only way to run SQL —
 * inside a transaction that has dropped to a non-owner role and set the organisation whose
 * rows it may see. Row-level security does the rest.
 */
export class Database {
  readonly embedded: boolean
  /**
   * Transactions for background work — the audit sealer, the event dispatcher, fan-out and
   * delivery records — from a small pool of their own, so that under load they neither wait
   * behind requests nor take connections requests are waiting for (ADR 0055). On PGlite, which
   * has one connection, the same pool as requests.
   */
  readonly background: TransactionSource
  private readonly backgroundPool: pg.Pool | undefined

  private constructor(
    readonly orm: MikroORM,
    private readonly adminUrl: string,
    private readonly embeddedServer: EmbeddedPostgres | undefined,
    private readonly logger?: Logger,
    backgroundPoolMax = BACKGROUND_POOL_MAX,
  ) {
    this.embedded = embeddedServer !== undefined
    if (this.embedded || backgroundPoolMax <= 0) {
      this.background = this
      return
    }
    // The same connection settings (and type parsers: timestamps as text) as MikroORM's pool.
    const options = orm.em.getConnection().getConnectionOptions() as pg.PoolConfig
    const pool = new pg.Pool({ ...options, max: backgroundPoolMax, idleTimeoutMillis: 10_000 })
    // An idle connection the server closed is dropped and replaced on next use; say so, nothing more.
    pool.on('error', (err) => logger?.warn({ err }, 'a background database connection failed'))
    this.backgroundPool = pool
    const raw: RawPool = {
      acquireConnection: () => pool.connect() as Promise<RawConnection & pg.PoolClient>,
      releaseConnection: async (conn) => {
        const disposed = conn.__knex__disposed
        ;(conn as RawConnection & pg.PoolClient).release(disposed ? (disposed as Error) : undefined)
      },
    }
    this.background = { inOrg: (orgId, fn, role = 'trellis_app') => this.runInOrg(raw, orgId, fn, role, false) }
  }

  static async open(
    config: Pick<KernelConfig, 'databaseUrl' | 'databaseAdminUrl' | 'dataDir'> & {
      poolMax?: number
      /** Connections of the background pool (see {@link Database.background}); 0 shares the request pool. */
      backgroundPoolMax?: number
      embeddedDir?: string
      /** A migrated data-directory dump a new embedded database starts from (see `embeddedTemplate`). */
      embeddedTemplate?: string
    },
    logger?: Logger,
  ): Promise<Database> {
    let embeddedServer: EmbeddedPostgres | undefined
    let url = config.databaseUrl
    if (!url) {
      embeddedServer = await startEmbeddedPostgres(config.embeddedDir ?? join(config.dataDir, 'pgdata'), {
        template: config.embeddedTemplate,
      })
      url = embeddedServer.url
    }
    try {
      const orm = await initOrm(url, embeddedServer ? 1 : (config.poolMax ?? 10), logger)
      return new Database(orm, config.databaseAdminUrl ?? url, embeddedServer, logger, config.backgroundPoolMax)
    } catch (err) {
      await embeddedServer?.stop()
      throw KRN.DATABASE_UNAVAILABLE(undefined, { cause: err })
    }
  }

  /**
   * Runs pending migrations over the owner connection (the same pool on the embedded default).
   * With nothing to run (every start of a migrated database) one read of the migrations table
   * answers, and the migrator is not even loaded.
   */
  async migrate(direction: 'up' | 'down' = 'up', to?: string): Promise<string[]> {
    if (direction === 'up' && to === undefined && (await this.pendingMigrations().catch(() => undefined))?.length === 0)
      return []
    const orm =
      this.embedded || this.adminUrl === this.orm.config.get('clientUrl')
        ? this.orm
        : await initOrm(this.adminUrl, 1, this.logger)
    try {
      const migrator = await migratorOf(orm)
      const done =
        direction === 'up' ? await migrator.up(to ? { to } : undefined) : await migrator.down(to ? { to } : undefined)
      return done.map((m) => m.name)
    } finally {
      if (orm !== this.orm) await orm.close()
    }
  }

  async migrationStatus(): Promise<{ executed: string[]; pending: string[] }> {
    const orm =
      this.embedded || this.adminUrl === this.orm.config.get('clientUrl')
        ? this.orm
        : await initOrm(this.adminUrl, 1, this.logger)
    try {
      const migrator = await migratorOf(orm)
      const executed = (await migrator.getExecutedMigrations()).map((m) => m.name)
      const pending = (await migrator.getPendingMigrations()).map((m) => m.name)
      return { executed, pending }
    } finally {
      if (orm !== this.orm) await orm.close()
    }
  }

  /**
   * Runs `fn` in one transaction as the role the owner connection logs in as (the admin URL
   * when set): for maintenance and for tests that must see or break what the kernel cannot.
   */
  async asOwner<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    const orm =
      this.embedded || this.adminUrl === this.orm.config.get('clientUrl')
        ? this.orm
        : await initOrm(this.adminUrl, 1, this.logger)
    try {
      return await ormTransaction(orm.em.fork() as EntityManager, (tem) =>
        fn({
          sql: (text, params = []) => tem.execute(text, params as unknown[]) as never,
          sqlOnce: (text, params = []) => tem.execute(text, params as unknown[]) as never,
          orgs: new Set(),
          useOrg: () => Promise.reject(new Error('owner transactions are not scoped')),
        }),
      )
    } finally {
      if (orm !== this.orm) await orm.close()
    }
  }

  /**
   * Runs `fn` in one transaction as `role`, seeing only the rows of organisation `orgId`.
   * Also returns the organisation's and its partner's status from the same round trip, so a
   * suspension is honoured by the very next transaction.
   *
   * This is the hot path of every request, so it drives the pg connection directly — taken
   * from MikroORM's own pool, the request pool (one connection on PGlite); background work
   * takes {@link background} — and opens the transaction, drops the role and sets the tenant
   * in a single round trip.
   */
  inOrg<T>(
    orgId: string | null,
    fn: (tx: Tx, status: OrgStatus) => Promise<T>,
    role: DbRole = 'trellis_app',
  ): Promise<T> {
    return this.runInOrg(this.knexClient(), orgId, fn, role, false)
  }

  /**
   * Like {@link inOrg}, for a body that needs no status because a suspended organisation (or
   * partner) is refused outright: KRN.TENANT_SUSPENDED or KRN.PARTNER_SUSPENDED. The `begin`, the
   * scoping and the check travel with the transaction's first statement, in its round trip (ADR
   * 0112), so a transaction of one statement that carries its commit is one round trip in all.
   * The check comes before the statement runs; a body that sends no statement is checked after it.
   */
  inActiveOrg<T>(orgId: string | null, fn: (tx: Tx) => Promise<T>, role: DbRole = 'trellis_app'): Promise<T> {
    return this.runInOrg(this.knexClient(), orgId, fn, role, true)
  }

  private async runInOrg<T>(
    pool: RawPool,
    orgId: string | null,
    fn: (tx: Tx, status: OrgStatus) => Promise<T>,
    role: DbRole,
    refuseSuspended: boolean,
  ): Promise<T> {
    if (orgId !== null && !UUID.test(orgId)) throw KRN.NOT_FOUND({ what: 'organisation' })
    if (
      role !== 'trellis_app' &&
      role !== 'trellis_auditor' &&
      role !== 'trellis_bootstrap' &&
      role !== 'trellis_events' &&
      role !== 'trellis_signin'
    )
      throw new TypeError(`unknown role ${role as string}`)
    let conn: RawConnection
    try {
      conn = await pool.acquireConnection()
    } catch (err) {
      throw KRN.DATABASE_UNAVAILABLE(undefined, { cause: err })
    }
    let healthy = true
    let tx: Tx | undefined
    try {
      const org = orgId ?? ''
      const statusOf = orgId ?? PLATFORM_ORG
      const orgs = new Set<string>(orgId ? [orgId] : [])
      let status = ACTIVE
      if (refuseSuspended) tx = scopedTx(conn, orgs, { ...SCOPE_ACTIVE, values: [role, org, statusOf] })
      else {
        tx = scopedTx(conn, orgs)
        const { block } = await begin<{ block: 'tenant' | 'partner' | 'partner_self' | null }>(conn, {
          ...SCOPE_STATUS,
          values: [role, org, statusOf],
        })
        status = {
          orgStatus: block === 'tenant' || block === 'partner_self' ? 'suspended' : 'active',
          partnerStatus: block === 'partner' ? 'suspended' : 'active',
        }
      }
      const result = await fn(tx, status)
      await settle(tx)
      return result
    } catch (thrown) {
      const { err, begun } = tx ? abandoned(tx, thrown) : { err: thrown, begun: true }
      if (begun) {
        try {
          await conn.query('rollback')
        } catch {
          healthy = false
        }
      }
      if (isConnectionError(err)) throw KRN.DATABASE_UNAVAILABLE(undefined, { cause: err })
      throw err
    } finally {
      // A connection that cannot even roll back is dropped from the pool, not reused.
      if (!healthy) conn.__knex__disposed = new Error('connection broken during a transaction')
      await pool.releaseConnection(conn)
    }
  }

  /**
   * MikroORM's unit of work, scoped like {@link inOrg}: for ordinary entity reads where the
   * convenience matters more than the last round trip.
   */
  async withEntityManager<T>(orgId: string | null, fn: (em: EntityManager) => Promise<T>): Promise<T> {
    if (orgId !== null && !UUID.test(orgId)) throw KRN.NOT_FOUND({ what: 'organisation' })
    const em = this.orm.em.fork({ clear: true }) as EntityManager
    return ormTransaction(em, async (tem) => {
      await tem.execute(`select set_config('role', 'trellis_app', true), set_config('app.tenant_id', ?, true)`, [
        orgId ?? '',
      ])
      return fn(tem as EntityManager)
    })
  }

  /**
   * Runs `fn` over one connection outside any transaction, as the role the owner connection logs
   * in as (the admin URL when set): for what no transaction block may run (`VACUUM`). On the
   * embedded database, its one connection, taken from the request pool as a request takes it;
   * on PostgreSQL, a connection of its own, closed afterwards (session locks go with it).
   */
  async outsideTransaction<T>(fn: (sql: <R = Record<string, unknown>>(text: string) => Promise<R[]>) => Promise<T>) {
    if (this.embedded) {
      const pool = this.knexClient()
      const conn = await pool.acquireConnection()
      try {
        return await fn(async (text) => ((await conn.query(text)) as unknown as { rows: never[] }).rows)
      } finally {
        await pool.releaseConnection(conn)
      }
    }
    const client = new pg.Client({ connectionString: this.adminUrl })
    await client.connect()
    try {
      return await fn(async (text) => (await client.query(text)).rows)
    } finally {
      await client.end()
    }
  }

  /** How many callers wait for a pooled connection right now (all connections are in use). */
  waitingForConnection(): number {
    return (this.knexClient() as unknown as { pool?: { numPendingAcquires(): number } }).pool?.numPendingAcquires() ?? 0
  }

  private knexClient(): RawPool {
    return (this.orm.em.getConnection().getKnex() as unknown as { client: RawPool }).client
  }

  /** A transaction that belongs to no organisation: global tables only, every tenant row hidden. */
  unscoped<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.inOrg(null, (tx) => fn(tx))
  }

  /**
   * Migrations this code has that the database has not run: the schema is behind the code (an
   * older schema restored, a `migrate down`, a newer process started before `migrate up`). One
   * read of the migrations table, which every role may read.
   */
  async pendingMigrations(): Promise<string[]> {
    const rows = (await this.orm.em.fork().execute('select name from trellis_migrations')) as Array<{ name: string }>
    const done = new Set(rows.map((r) => r.name))
    return migrationsList.map((m) => m.name).filter((name) => !done.has(name))
  }

  /**
   * What {@link pendingMigrations} answers, and on a database without the migrations table yet
   * what the migrator lists (it makes the table): for a start that must refuse a schema behind.
   */
  async unappliedMigrations(): Promise<string[]> {
    return this.pendingMigrations().catch(async () => (await this.migrationStatus()).pending)
  }

  async ping(): Promise<boolean> {
    try {
      await this.orm.em.fork().execute('select 1')
      return true
    } catch {
      return false
    }
  }

  /** A copy of the embedded database's data directory (for a template); fails on PostgreSQL. */
  dumpEmbedded(): Promise<Blob> {
    if (!this.embeddedServer) return Promise.reject(new Error('only the embedded database can be dumped'))
    return this.embeddedServer.dump()
  }

  async close(): Promise<void> {
    await this.backgroundPool?.end()
    await this.orm.close(true)
    await this.embeddedServer?.stop()
  }
}

/**
 * `em.transactional` without MikroORM's AsyncLocalStorage contexts: on Node 20 the first `run`
 * of any AsyncLocalStorage switches on a promise hook that every promise of the process pays
 * for from then on — every request, not only this transaction's (ADR 0106). The transaction
 * runs in no context (the kernel passes the entity manager explicitly), and the unit of work is
 * flushed — in MikroORM's own context — only when the body changed an entity: the kernel's
 * bodies read, so the hook stays off.
 */
async function ormTransaction<T>(em: EntityManager, fn: (em: EntityManager) => Promise<T>): Promise<T> {
  await em.begin()
  try {
    const result = await fn(em)
    const uow = em.getUnitOfWork()
    uow.computeChangeSets()
    // What MikroORM's own flush would find to write: change sets, collections changed on their
    // own, extra updates and orphans to remove.
    if (
      uow.getChangeSets().length > 0 ||
      uow.getCollectionUpdates().length > 0 ||
      uow.getExtraUpdates().size > 0 ||
      uow.getOrphanRemoveStack().size > 0
    )
      await em.flush()
    await em.getConnection('write').commit(em.getTransactionContext()!)
    em.resetTransactionContext()
    return result
  } catch (err) {
    // Already ended (a failed COMMIT) or the connection gone: the first error is the one to tell.
    await em.rollback().catch(() => undefined)
    throw err
  }
}

function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: string })?.code
  return code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === '57P01' || code === '08006' || code === '08001'
}

/**
 * A PostgreSQL array literal for a `?::text[]` (or `?::uuid[]`) parameter: the query layer
 * would otherwise spread a JS array into a list of parameters.
 */
export function sqlArray(values: readonly string[]): string {
  return `{${values.map((v) => `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`).join(',')}}`
}
