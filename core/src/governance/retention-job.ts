/**
 * The retention job: for each tenant, purges what its retention policies say is past keeping —
 * plugin records not written for longer than their collection's days, invocation transcripts
 * and logs, AI interaction text, finished webhook deliveries and audit payloads — except what a
 * legal hold covers, and records what it purged and held (`retention_runs`, audited). One
 * tenant per transaction; a tenant another process is purging is skipped.
 */
import type { Logger } from 'pino'
import { v7 as uuidv7 } from 'uuid'
import { appendAudit } from '../audit/audit-log.js'
import { sqlArray, type Database, type Tx } from '../db/database.js'
import type { OrgTx } from '../http/route-deps.js'
import { activeHolds, type ActiveHolds } from './legal-holds.js'
import { tenantRetention } from './retention-policies.js'
import type { RetentionTarget } from './retention-targets.js'

const DAY_MS = 86_400_000

/** What one run did in one tenant: per target, rows purged and rows kept by a legal hold. */
export interface RetentionRun {
  id: string
  tenantId: string
  ranAt: string
  /** The instant the policies were measured from (the job's clock). */
  asOf: string
  purged: Record<string, number>
  held: Record<string, number>
  total: number
}

export interface RetentionJobDeps {
  db: Pick<Database, 'inOrg'>
  /** The kernel's organisation transaction (seals the run's audit entry after commit). */
  orgTx: OrgTx
  logger?: Logger
}

export interface RetentionJobOptions {
  /** How often the job runs (default hourly). */
  intervalMs?: number
  /** The job's clock (tests inject one). */
  clock?: () => Date
}

/** Rows of one target past `before`: `held` are counted and kept, the rest purged. */
type Purge = (tx: Tx, before: string, keep: string[]) => Promise<{ purged: number; held: number }>

const count = async (tx: Tx, sql: string, params: unknown[]) =>
  Number((await tx.sql<{ n: number }>(sql, params))[0]?.n ?? 0)

/** How each kind of target is purged. Every statement runs under the tenant's row-level security. */
function purgeOf(ref: RetentionTarget): { purge: Purge; heldAll: (tx: Tx, before: string) => Promise<number> } {
  if (ref.kind === 'collection') {
    const where = 'plugin = ? and collection = ? and updated_at < ?::timestamptz'
    const p = [ref.plugin, ref.collection]
    return {
      heldAll: (tx, before) =>
        count(tx, `select count(*)::int as n from plugin_records where ${where}`, [...p, before]),
      purge: async (tx, before, keep) => ({
        held: keep.length
          ? await count(tx, `select count(*)::int as n from plugin_records where ${where} and id = any(?::uuid[])`, [
              ...p,
              before,
              sqlArray(keep),
            ])
          : 0,
        purged: await count(
          tx,
          `with gone as (delete from plugin_records where ${where} and not (id = any(?::uuid[])) returning 1) select count(*)::int as n from gone`,
          [...p, before, sqlArray(keep)],
        ),
      }),
    }
  }
  const spec = {
    'invocation-logs': {
      table: 'plugin_invocations',
      where: `started_at < ?::timestamptz and (input is not null or transcript is not null or logs <> '[]'::jsonb)`,
      act: `update plugin_invocations set input = null, transcript = null, logs = '[]'::jsonb`,
    },
    'ai-interactions': {
      table: 'ai_records',
      where: `at < ?::timestamptz and (prompt is not null or answer is not null or chunks <> '[]'::jsonb or citations <> '[]'::jsonb)`,
      act: `update ai_records set prompt = null, answer = null, chunks = '[]'::jsonb, citations = '[]'::jsonb`,
    },
    'webhook-deliveries': {
      table: 'webhook_deliveries',
      where: `status <> 'pending' and updated_at < ?::timestamptz`,
      act: 'delete from webhook_deliveries',
    },
    'audit-payloads': {
      table: 'audit_log',
      where: `at < ?::timestamptz and hash is not null and data_digest is not null and erased_at is null and data <> '{}'::jsonb`,
      act: `update audit_log set data = '{}'::jsonb, erased_at = now()`,
    },
  }[ref.name]
  return {
    heldAll: (tx, before) => count(tx, `select count(*)::int as n from ${spec.table} where ${spec.where}`, [before]),
    purge: async (tx, before, keep) => ({
      held: keep.length
        ? await count(tx, `select count(*)::int as n from ${spec.table} where ${spec.where} and id = any(?::uuid[])`, [
            before,
            sqlArray(keep),
          ])
        : 0,
      purged: await count(
        tx,
        `with gone as (${spec.act} where ${spec.where} and not (id = any(?::uuid[])) returning 1) select count(*)::int as n from gone`,
        [before, sqlArray(keep)],
      ),
    }),
  }
}

/** Purges one tenant as of `now` in its transaction; null when nothing has a retention or another process holds it. */
export async function purgeTenant(tx: Tx, tenantId: string, now: Date): Promise<RetentionRun | null> {
  const [lock] = await tx.sql<{ ok: boolean }>(
    `select pg_try_advisory_xact_lock(hashtextextended('trellis.retention.' || ?, 0)) as ok`,
    [tenantId],
  )
  if (!lock?.ok) return null
  const policies = (await tenantRetention(tx)).filter((p) => p.effectiveDays !== null)
  if (!policies.length) return null
  const holds: ActiveHolds = await activeHolds(tx)
  const purged: Record<string, number> = {}
  const held: Record<string, number> = {}
  for (const p of policies) {
    const before = new Date(now.getTime() - p.effectiveDays! * DAY_MS).toISOString()
    const { purge, heldAll } = purgeOf(p.ref)
    if (holds.tenant || holds.targets.has(p.target)) {
      purged[p.target] = 0
      held[p.target] = await heldAll(tx, before)
      continue
    }
    const r = await purge(tx, before, holds.records.get(p.target) ?? [])
    purged[p.target] = r.purged
    held[p.target] = r.held
  }
  const total = Object.values(purged).reduce((a, b) => a + b, 0)
  const run: RetentionRun = {
    id: uuidv7(),
    tenantId,
    ranAt: new Date().toISOString(),
    asOf: now.toISOString(),
    purged,
    held,
    total,
  }
  await tx.sql(
    `insert into retention_runs (id, ran_at, as_of, purged, held, total) values (?::uuid, ?::timestamptz, ?::timestamptz, ?::jsonb, ?::jsonb, ?)`,
    [run.id, run.ranAt, run.asOf, JSON.stringify(purged), JSON.stringify(held), total],
  )
  if (total || Object.values(held).some((n) => n > 0))
    await appendAudit(tx, tenantId, {
      actor: { kind: 'system', id: 'retention' },
      action: 'governance.retention.purged',
      target: { kind: 'retention_run', id: run.id },
      data: { asOf: run.asOf, purged, held },
    })
  return run
}

/** The scheduled job: every tenant, one transaction each. */
export class RetentionJob {
  private timer: NodeJS.Timeout | undefined
  private running: Promise<unknown> | undefined
  private closed = false
  private readonly clock: () => Date

  constructor(
    private readonly deps: RetentionJobDeps,
    private readonly opts: RetentionJobOptions = {},
  ) {
    this.clock = opts.clock ?? (() => new Date())
  }

  start(): void {
    if (this.closed || this.timer) return
    const every = this.opts.intervalMs ?? 3_600_000
    const tick = () => {
      if (this.running || this.closed) return
      this.running = this.runAll()
        .catch((err) => this.deps.logger?.warn({ err }, 'retention run failed; the next run tries again'))
        .finally(() => (this.running = undefined))
    }
    this.timer = setInterval(tick, every)
    this.timer.unref()
    setTimeout(tick, Math.min(every, 60_000)).unref()
  }

  async close(): Promise<void> {
    this.closed = true
    if (this.timer) clearInterval(this.timer)
    await this.running
  }

  /** Runs every tenant (a suspended one too: its data is not kept longer) as of the job's clock; resolves to the runs recorded. */
  async runAll(now: Date = this.clock()): Promise<RetentionRun[]> {
    const tenants = await this.deps.db.inOrg(
      null,
      (tx) => tx.sql<{ id: string }>('select id from tenants order by id'),
      'trellis_auditor',
    )
    const runs: RetentionRun[] = []
    for (const { id } of tenants) {
      if (this.closed) break
      try {
        const run = await this.runTenant(id, now)
        if (run) runs.push(run)
      } catch (err) {
        this.deps.logger?.warn({ err, tenantId: id }, 'retention of a tenant failed; the next run tries again')
      }
    }
    const purged = runs.reduce((a, r) => a + r.total, 0)
    if (purged) this.deps.logger?.info({ tenants: runs.length, purged }, 'retention purged records past their policies')
    return runs
  }

  /** Runs one tenant as of `now` (default: the job's clock). */
  runTenant(tenantId: string, now: Date = this.clock()): Promise<RetentionRun | null> {
    return this.deps.orgTx(tenantId, (tx) => purgeTenant(tx, tenantId, now), { allowSuspended: true })
  }
}

/** The tenant's recorded runs, newest first. */
export async function listRetentionRuns(tx: Tx, limit = 50, before?: string): Promise<RetentionRun[]> {
  const rows = await tx.sql<{
    id: string
    tenant_id: string
    ran_at: Date
    as_of: Date
    purged: Record<string, number>
    held: Record<string, number>
    total: number
  }>(
    `select id, tenant_id, ran_at, as_of, purged, held, total from retention_runs
      where (?::uuid is null or id < ?::uuid) order by id desc limit ?`,
    [before ?? null, before ?? null, limit],
  )
  return rows.map((r) => ({
    id: r.id,
    tenantId: r.tenant_id,
    ranAt: new Date(r.ran_at).toISOString(),
    asOf: new Date(r.as_of).toISOString(),
    purged: r.purged,
    held: r.held,
    total: r.total,
  }))
}
