/** Answers a metric query in the caller's tenant: the compiled statement, its rows shaped. */
import type { OrgTx } from '../http/route-deps.js'
import type { AvailableMetric } from './catalog.js'
import { compileMetric, MAX_ROWS } from './compiler.js'
import { isCount } from './sql-fragments.js'
import { isComplete } from './periods.js'
import type { MetricQuery, MetricRow } from './types.js'
import { rowsFromRollup } from './rollups.js'

/** The answer: rows in period, then dimension order. */
export interface MetricAnswer {
  metric: string
  title: string
  unit: string | null
  grain: string | null
  from: string | null
  to: string | null
  groupBy: string[]
  rows: Array<MetricRow & { complete?: boolean }>
  /** More rows matched than the limit; the answer holds the first ones. */
  truncated: boolean
  /** `rollup`: read from a materialised series as of `refreshedAt`; `query`: computed from the records now. */
  source: 'rollup' | 'query'
  refreshedAt?: string
}

/** Runs `query` over `m` in `tenantId` (row-level security confines it to the tenant). */
export async function answerMetric(
  deps: { orgTx: OrgTx; today: () => string },
  tenantId: string,
  m: AvailableMetric,
  query: MetricQuery,
): Promise<MetricAnswer> {
  const compiled = compileMetric(m.declaration, m.source, query, (c) => m.joins.get(c)!)
  const { raw, refreshedAt } = await deps.orgTx(tenantId, async (tx) => {
    const rolled = await rowsFromRollup(tx, m.name, query)
    if (rolled) return { raw: rolled.rows, refreshedAt: rolled.refreshedAt }
    return {
      raw: await tx.sqlOnce<Record<string, string | null>>(compiled.sql, compiled.params),
      refreshedAt: undefined,
    }
  })
  const limit = Math.min(query.limit ?? MAX_ROWS, MAX_ROWS)
  const today = deps.today()
  const count = isCount(m.declaration.measure)
  const rows = raw.slice(0, limit).map((r) => {
    const row: MetricRow & { complete?: boolean } = {
      dims: Object.fromEntries(compiled.dims.map((d, i) => [d, r[`d${i}`] ?? null])),
      value: r.value === null || r.value === undefined ? null : count ? Number(r.value) : String(r.value),
    }
    if (compiled.hasPeriod && query.grain) {
      row.period = String(r.period)
      row.complete = isComplete(row.period, query.grain, today, query.from, query.to)
    }
    return row
  })
  return {
    metric: m.name,
    title: m.declaration.title,
    unit: m.declaration.unit ?? null,
    grain: query.grain ?? null,
    from: query.from ?? null,
    to: query.to ?? null,
    groupBy: compiled.dims,
    rows,
    truncated: raw.length > limit,
    source: refreshedAt ? 'rollup' : 'query',
    ...(refreshedAt ? { refreshedAt } : {}),
  }
}
