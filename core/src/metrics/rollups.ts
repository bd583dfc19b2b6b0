/**
 * Rollups: a metric's series (grain × groupBy) materialised in `metric_rollup_rows`, refreshed
 * incrementally. Each refresh takes a signature per period of the source records (how many, and
 * a checksum of their ids and versions) and of each joined collection; only periods whose
 * signature changed are recomputed — with the very statement a live query runs, narrowed to
 * those periods — so a refreshed rollup answers exactly what the live query answers (ADR 0070).
 */
import { v7 as uuidv7 } from 'uuid'
import { sqlArray, type Tx } from '../db/database.js'
import { SqlParams } from '../plugins/data/sql-params.js'
import type { AvailableMetric } from './catalog.js'
import { compileMetric, MAX_ROWS, periodSql, timeSql, type CollectionName } from './compiler.js'
import { MET } from './errors.js'
import { KERNEL_SOURCE } from './kernel-metrics.js'
import { periodOf } from './periods.js'
import type { Grain, MetricQuery } from './types.js'

/** A rollup as stored. */
export interface RollupRecord {
  id: string
  metric: string
  grain: Grain
  group_by: string[]
  created_by: string | null
  created_at: Date
  refreshed_at: Date | null
  last_error: string | null
}

/** What one refresh did. */
export interface RollupRefresh {
  /** Periods recomputed (changed or new), oldest first. */
  recomputed: string[]
  /** Periods whose records are all gone. */
  removed: string[]
  /** Every period was recomputed (first refresh, or a joined collection changed). */
  full: boolean
  refreshedAt: string
}

/** The stored view of a rollup. */
export function rollupView(r: RollupRecord) {
  return {
    id: r.id,
    metric: r.metric,
    grain: r.grain,
    groupBy: r.group_by,
    refreshedAt: r.refreshed_at ? new Date(r.refreshed_at).toISOString() : null,
    lastError: r.last_error,
    createdAt: new Date(r.created_at).toISOString(),
  }
}

/** Refuses metrics a per-period signature cannot follow. */
export function checkRollable(m: AvailableMetric): void {
  if (m.source.plugin === KERNEL_SOURCE)
    throw MET.ROLLUP_UNSUPPORTED({ name: m.name, reason: 'kernel telemetry is read live' })
  const d = m.declaration
  if (d.unnest && d.time.startsWith(`${d.unnest.as}.`))
    throw MET.ROLLUP_UNSUPPORTED({ name: m.name, reason: 'its time field is a field of the unnested element' })
}

export async function createRollup(
  tx: Tx,
  m: AvailableMetric,
  grain: Grain,
  groupBy: string[],
  createdBy: string | null,
): Promise<RollupRecord> {
  checkRollable(m)
  const [row] = await tx.sql<RollupRecord>(
    `insert into metric_rollups (id, metric, grain, group_by, created_by) values (?::uuid, ?, ?, ?::text[], ?::uuid)
     on conflict (tenant_id, metric, grain, group_by) do nothing returning *`,
    [uuidv7(), m.name, grain, sqlArray(groupBy), createdBy],
  )
  if (!row) {
    const [existing] = await tx.sql<{ id: string }>(
      'select id from metric_rollups where metric = ? and grain = ? and group_by = ?::text[]',
      [m.name, grain, sqlArray(groupBy)],
    )
    throw MET.ROLLUP_EXISTS({ id: existing?.id ?? '' })
  }
  return row
}

/** Records and checksum of every period of the source collection, by the metric's time field. */
function periodSignatureSql(m: AvailableMetric, grain: Grain): { sql: string; params: unknown[] } {
  const p = new SqlParams()
  const g = p.text(grain)
  const t = () => timeSql(m.declaration.time, {}, p)
  const sql = `select ${periodSql(g, t())} as period, count(*)::text as records,
    coalesce(sum(hashtext(r.id::text || ':' || r.version)), 0)::text as checksum
    from plugin_records r where r.plugin = ${p.add(m.source.plugin)} and r.collection = ${p.add(m.source.collection)} and ${t()} is not null group by 1`
  return { sql, params: p.values }
}

/** One text naming the state of every collection a dimension joins (empty without joins). */
async function joinsSignature(tx: Tx, joins: Map<string, CollectionName>): Promise<string> {
  const parts: string[] = []
  for (const key of [...joins.keys()].sort()) {
    const c = joins.get(key)!
    const [s] = await tx.sql<{ sig: string }>(
      `select count(*)::text || ':' || coalesce(sum(hashtext(id::text || ':' || version)), 0)::text as sig from plugin_records where plugin = ? and collection = ?`,
      [c.plugin, c.collection],
    )
    parts.push(`${c.plugin}:${c.collection}=${s!.sig}`)
  }
  return parts.join(';')
}

/** Brings the rollup up to date with the records, in the tenant's transaction; `now` stamps it. */
export async function refreshRollup(tx: Tx, m: AvailableMetric, rollupId: string, now: Date): Promise<RollupRefresh> {
  checkRollable(m)
  const [r] = await tx.sql<RollupRecord & { joins_signature: string | null }>(
    'select * from metric_rollups where id = ?::uuid for update',
    [rollupId],
  )
  if (!r) throw MET.ROLLUP_NOT_FOUND({ id: rollupId })
  const sig = periodSignatureSql(m, r.grain)
  const current = await tx.sqlOnce<{ period: string; records: string; checksum: string }>(sig.sql, sig.params)
  const stored = await tx.sql<{ period: string; records: string; checksum: string }>(
    `select to_char(period, 'YYYY-MM-DD') as period, records::text, checksum::text from metric_rollup_periods where rollup_id = ?::uuid`,
    [r.id],
  )
  const joins = await joinsSignature(tx, m.joins)
  const full = r.refreshed_at === null || r.joins_signature !== joins
  const before = new Map(stored.map((s) => [s.period, `${s.records}/${s.checksum}`]))
  const recomputed = current
    .filter((c) => full || before.get(c.period) !== `${c.records}/${c.checksum}`)
    .map((c) => c.period)
    .sort()
  const present = new Set(current.map((c) => c.period))
  const removed = stored
    .map((s) => s.period)
    .filter((p) => !present.has(p))
    .sort()
  const stale = full ? null : [...recomputed, ...removed]
  if (stale === null) {
    await tx.sql('delete from metric_rollup_rows where rollup_id = ?::uuid', [r.id])
    await tx.sql('delete from metric_rollup_periods where rollup_id = ?::uuid', [r.id])
  } else if (stale.length) {
    await tx.sql('delete from metric_rollup_rows where rollup_id = ?::uuid and period = any(?::date[])', [
      r.id,
      sqlArray(stale),
    ])
    await tx.sql('delete from metric_rollup_periods where rollup_id = ?::uuid and period = any(?::date[])', [
      r.id,
      sqlArray(stale),
    ])
  }
  if (recomputed.length) {
    const compiled = compileMetric(
      m.declaration,
      m.source,
      { grain: r.grain, groupBy: r.group_by },
      (c) => m.joins.get(c)!,
      { periods: recomputed, unlimited: true },
    )
    const dims = compiled.dims.map((_, i) => `d${i}`).join(', ')
    await tx.sqlOnce(
      `insert into metric_rollup_rows (rollup_id, period, dims, value)
       select ?::uuid, x.period::date, array[${dims}]::text[], x.value from (${compiled.sql}) x`,
      [r.id, ...compiled.params],
    )
    const changed = current.filter((c) => recomputed.includes(c.period))
    await tx.sql(
      `insert into metric_rollup_periods (rollup_id, period, records, checksum)
       select ?::uuid, p::date, n::bigint, c::bigint from unnest(?::text[], ?::text[], ?::text[]) as s(p, n, c)`,
      [
        r.id,
        sqlArray(changed.map((c) => c.period)),
        sqlArray(changed.map((c) => c.records)),
        sqlArray(changed.map((c) => c.checksum)),
      ],
    )
  }
  await tx.sql(
    'update metric_rollups set refreshed_at = ?::timestamptz, joins_signature = ?, last_error = null where id = ?::uuid',
    [now.toISOString(), joins, r.id],
  )
  return { recomputed, removed, full, refreshedAt: now.toISOString() }
}

/** Rows as the live statement names them (`period`, `d0`…, `value`). */
export type RawRow = Record<string, string | null>

/**
 * The rows of a refreshed rollup that answers `query` exactly, or undefined when none does: the
 * same grain and groupBy, a filter on grouped dimensions only, and a window on period bounds.
 */
export async function rowsFromRollup(
  tx: Tx,
  metric: string,
  query: MetricQuery,
): Promise<{ rows: RawRow[]; refreshedAt: string } | undefined> {
  const grain = query.grain
  if (!grain || query.live) return undefined
  const groupBy = query.groupBy ?? []
  const filter = Object.entries(query.filter ?? {})
  if (filter.some(([k]) => !groupBy.includes(k))) return undefined
  for (const bound of [query.from, query.to]) if (bound && periodOf(bound, grain) !== bound) return undefined
  const [r] = await tx.sql<{ id: string; refreshed_at: Date }>(
    'select id, refreshed_at from metric_rollups where metric = ? and grain = ? and group_by = ?::text[] and refreshed_at is not null',
    [metric, grain, sqlArray(groupBy)],
  )
  if (!r) return undefined
  const p = new SqlParams()
  const cols = groupBy.map((_, i) => `dims[${i + 1}] as d${i}`)
  let sql = `select to_char(period, 'YYYY-MM-DD') as period${cols.map((c) => `, ${c}`).join('')}, value from metric_rollup_rows where rollup_id = ${p.add(r.id)}::uuid`
  if (query.from) sql += ` and period >= ${p.add(query.from)}::date`
  if (query.to) sql += ` and period < ${p.add(query.to)}::date`
  for (const [k, v] of filter) {
    const values = (Array.isArray(v) ? v : [v]).map(String)
    sql += ` and dims[${groupBy.indexOf(k) + 1}] = any(${p.add(sqlArray(values))}::text[])`
  }
  const ordinals = Array.from({ length: groupBy.length + 1 }, (_, i) => i + 1).join(', ')
  sql += ` order by ${ordinals} limit ${p.add(Math.min(query.limit ?? MAX_ROWS, MAX_ROWS) + 1)}`
  const rows = await tx.sqlOnce<RawRow>(sql, p.values)
  return { rows, refreshedAt: new Date(r.refreshed_at).toISOString() }
}
