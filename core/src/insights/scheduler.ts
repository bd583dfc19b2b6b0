/**
 * The scheduled insights pass, worker work: every `everyMs` of the runtime's clock it brings
 * each tenant's rollups up to date, then runs its alert rules. Tenants are found as
 * trellis_events (read-only); everything else happens in the tenant's own transaction.
 */
import type { Logger } from 'pino'
import type { Database } from '../db/database.js'
import { MET } from '../metrics/errors.js'
import { availableMetrics } from '../metrics/catalog.js'
import { refreshRollup } from '../metrics/rollups.js'
import type { WorkflowClock } from '../workflows/clock.js'
import { detectForTenant, type DetectionDeps } from './detection.js'

export interface InsightsSchedulerDeps extends DetectionDeps {
  db: Pick<Database, 'inOrg'>
  clock: WorkflowClock
  logger: Logger
}

/** Default period of the pass: a quarter of an hour. */
export const INSIGHTS_EVERY_MS = 15 * 60_000

/** Refreshes every rollup of `tenantId`; one that fails records why and the others still refresh. */
export async function refreshTenantRollups(deps: DetectionDeps, tenantId: string, now: Date): Promise<number> {
  const rollups = await deps.orgTx(tenantId, (tx) =>
    tx.sql<{ id: string; metric: string }>('select id, metric from metric_rollups order by id'),
  )
  if (!rollups.length) return 0
  const metrics = await availableMetrics(deps.plugins, tenantId)
  let refreshed = 0
  for (const r of rollups) {
    try {
      const m = metrics.get(r.metric)
      if (!m) throw MET.SOURCE_UNAVAILABLE({ name: r.metric, reason: 'its plugin or a source is not installed' })
      await deps.orgTx(tenantId, (tx) => refreshRollup(tx, m, r.id, now))
      refreshed++
    } catch (err) {
      await deps.orgTx(tenantId, (tx) =>
        tx.sql('update metric_rollups set last_error = ? where id = ?::uuid', [
          err instanceof Error ? err.message : String(err),
          r.id,
        ]),
      )
    }
  }
  return refreshed
}

export class InsightsScheduler {
  private stop?: () => void
  private running: Promise<void> = Promise.resolve()

  constructor(private readonly deps: InsightsSchedulerDeps) {}

  start(everyMs = INSIGHTS_EVERY_MS): void {
    this.stop = this.deps.clock.every(everyMs, () => {
      this.running = this.run()
      return this.running
    })
  }

  /** One pass over every tenant with rollups or alert rules, at the clock's now. */
  async run(): Promise<void> {
    const now = new Date(this.deps.clock.now())
    const tenants = await this.deps.db.inOrg(
      null,
      (tx) =>
        tx.sql<{ tenant_id: string }>(
          'select tenant_id from metric_rollups union select tenant_id from insight_alert_rules',
        ),
      'trellis_events',
    )
    for (const { tenant_id } of tenants) {
      try {
        await refreshTenantRollups(this.deps, tenant_id, now)
        await detectForTenant(this.deps, tenant_id, now)
      } catch (err) {
        this.deps.logger.warn({ err, tenantId: tenant_id }, 'the insights pass failed for a tenant')
      }
    }
  }

  async close(): Promise<void> {
    this.stop?.()
    await this.running.catch(() => undefined)
  }
}
