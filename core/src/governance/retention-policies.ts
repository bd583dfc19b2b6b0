/**
 * Retention policies: the platform's bounds per target (fewest days a tenant must keep, most it
 * may keep, the default when it sets nothing) and each tenant's own days within them. The
 * bounds always win: a tenant's days outside bounds the platform changed later are clamped.
 */
import type { Tx } from '../db/database.js'
import { GOV } from './errors.js'
import {
  ALL_COLLECTIONS,
  isKernelTarget,
  targetName,
  tenantTargets,
  type RetentionTarget,
} from './retention-targets.js'

/** The platform's bounds of one target (null: no bound). */
export interface RetentionBounds {
  minDays: number | null
  maxDays: number | null
  defaultDays: number | null
}

/** One target's retention as a tenant sees it. */
export interface TargetRetention extends RetentionBounds {
  target: string
  /** The tenant's own choice, or null. */
  days: number | null
  /** What the retention job applies: null keeps everything. */
  effectiveDays: number | null
}

const NONE: RetentionBounds = { minDays: null, maxDays: null, defaultDays: null }

/** The bounds of every target the platform bounded, by target name. */
export async function retentionBounds(tx: Tx): Promise<Map<string, RetentionBounds>> {
  const rows = await tx.sql<{
    target: string
    min_days: number | null
    max_days: number | null
    default_days: number | null
  }>('select target, min_days, max_days, default_days from retention_floors')
  return new Map(rows.map((r) => [r.target, { minDays: r.min_days, maxDays: r.max_days, defaultDays: r.default_days }]))
}

function boundsOf(all: Map<string, RetentionBounds>, t: RetentionTarget): RetentionBounds {
  return all.get(targetName(t)) ?? (t.kind === 'collection' ? all.get(ALL_COLLECTIONS) : undefined) ?? NONE
}

/** The days the job applies: the tenant's, else the default, else the maximum — within the bounds. */
export function effectiveDays(b: RetentionBounds, days: number | null): number | null {
  const chosen = days ?? b.defaultDays ?? b.maxDays
  if (chosen === null) return null
  return Math.min(Math.max(chosen, b.minDays ?? 1, 1), b.maxDays ?? Number.MAX_SAFE_INTEGER)
}

/** The retention of every target of the tenant whose transaction this is. */
export async function tenantRetention(tx: Tx): Promise<Array<TargetRetention & { ref: RetentionTarget }>> {
  const [targets, bounds, own] = [
    await tenantTargets(tx),
    await retentionBounds(tx),
    await tx.sql<{ target: string; days: number }>('select target, days from retention_policies'),
  ]
  const chosen = new Map(own.map((r) => [r.target, r.days]))
  return targets.map((ref) => {
    const target = targetName(ref)
    const b = boundsOf(bounds, ref)
    const days = chosen.get(target) ?? null
    return { ref, target, ...b, days, effectiveDays: effectiveDays(b, days) }
  })
}

/**
 * Sets (or with null clears) the tenant's days for `target`. `GOV_ERR_RETENTION_TARGET_UNKNOWN`
 * for a target the tenant does not have; `GOV_ERR_RETENTION_OUT_OF_BOUNDS` outside the bounds.
 */
export async function setTenantRetention(
  tx: Tx,
  target: string,
  days: number | null,
  actor: string,
): Promise<TargetRetention> {
  const all = await tenantRetention(tx)
  const found = all.find((r) => r.target === target)
  if (!found) throw GOV.RETENTION_TARGET_UNKNOWN({ target })
  if (
    days !== null &&
    ((found.minDays !== null && days < found.minDays) || (found.maxDays !== null && days > found.maxDays))
  )
    throw GOV.RETENTION_OUT_OF_BOUNDS({ target, days, minDays: found.minDays, maxDays: found.maxDays })
  if (days === null) await tx.sql('delete from retention_policies where target = ?', [target])
  else
    await tx.sql(
      `insert into retention_policies (target, days, updated_by) values (?, ?, ?)
       on conflict (tenant_id, target) do update set days = excluded.days, updated_by = excluded.updated_by, updated_at = now()`,
      [target, days, actor],
    )
  const { ref: _ref, ...view } = found
  return { ...view, days, effectiveDays: effectiveDays(found, days) }
}

const COLLECTION_TARGET = /^(@[a-z0-9][a-z0-9._-]*\/)?[a-z0-9][a-z0-9._-]*\/[A-Za-z][A-Za-z0-9_]*$/

/**
 * Sets the platform's bounds of `target` (a kernel record kind, `collections` for every plugin
 * collection, or `<plugin>/<collection>`); all three null removes them. Runs in the platform
 * organisation's transaction (row-level security refuses any other).
 */
export async function setRetentionBounds(
  tx: Tx,
  target: string,
  b: RetentionBounds,
  actor: string,
): Promise<RetentionBounds & { target: string }> {
  if (!isKernelTarget(target) && target !== ALL_COLLECTIONS && !COLLECTION_TARGET.test(target))
    throw GOV.RETENTION_TARGET_UNKNOWN({ target })
  const { minDays, maxDays, defaultDays } = b
  if (minDays !== null && maxDays !== null && maxDays < minDays)
    throw GOV.RETENTION_BOUNDS_INVALID({ reason: `maxDays (${maxDays}) is below minDays (${minDays})` })
  if (
    defaultDays !== null &&
    ((minDays !== null && defaultDays < minDays) || (maxDays !== null && defaultDays > maxDays))
  )
    throw GOV.RETENTION_BOUNDS_INVALID({ reason: `defaultDays (${defaultDays}) is outside minDays–maxDays` })
  if (minDays === null && maxDays === null && defaultDays === null)
    await tx.sql('delete from retention_floors where target = ?', [target])
  else
    await tx.sql(
      `insert into retention_floors (target, min_days, max_days, default_days, updated_by) values (?, ?, ?, ?, ?)
       on conflict (target) do update set min_days = excluded.min_days, max_days = excluded.max_days,
         default_days = excluded.default_days, updated_by = excluded.updated_by, updated_at = now()`,
      [target, minDays, maxDays, defaultDays, actor],
    )
  return { target, minDays, maxDays, defaultDays }
}
