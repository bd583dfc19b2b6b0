/**
 * A metric across organisations, as aggregates only: a partner's tenants (each tenant's answer
 * computed in that tenant's own transaction under row-level security, then combined), and the
 * platform's partners compared with their peers. No record and no single tenant's figure leaves
 * this module: a partner sees totals and the distribution across its tenants (ADR 0069).
 */
import { median, medianAbsoluteDeviation, quantileSorted } from 'simple-statistics'
import type { OrgTx } from '../http/route-deps.js'
import { answerMetric, type MetricAnswer } from '../metrics/answer.js'
import { availableMetrics, type AvailableMetric, type InstalledSource } from '../metrics/catalog.js'
import { MET } from '../metrics/errors.js'
import { parseMetricQuery } from '../metrics/query.js'
import { isCount } from '../metrics/sql-fragments.js'
import type { MetricMeasure } from '../metrics/types.js'
import { MAD_SCALE } from './anomaly.js'

export interface AggregateDeps {
  orgTx: OrgTx
  plugins: InstalledSource
  today: () => string
}

/** Sums and counts add up across tenants; averages, extremes, ratios and distinct counts do not. */
export function isAdditive(m: MetricMeasure): boolean {
  return isCount(m) ? !('countDistinct' in m) : 'sum' in m
}

/** Each tenant's answer to `raw` (a metric query string) of the tenants that have the metric. */
export async function answersAcross(
  deps: AggregateDeps,
  tenantIds: string[],
  name: string,
  raw: Record<string, unknown>,
): Promise<{ metric: AvailableMetric; answers: MetricAnswer[] }> {
  let metric: AvailableMetric | undefined
  const answers: MetricAnswer[] = []
  for (const tenantId of tenantIds) {
    const m = (await availableMetrics(deps.plugins, tenantId)).get(name)
    if (!m) continue
    metric ??= m
    const query = { ...parseMetricQuery(raw, m.declaration), live: true }
    answers.push(await answerMetric(deps, tenantId, m, query))
  }
  if (!metric) throw MET.NOT_FOUND({ name })
  return { metric, answers }
}

/** The spread of values: count, min, quartiles, max. */
function spread(values: number[]) {
  const s = [...values].sort((a, b) => a - b)
  return {
    min: s[0]!,
    p25: quantileSorted(s, 0.25),
    median: quantileSorted(s, 0.5),
    p75: quantileSorted(s, 0.75),
    max: s[s.length - 1]!,
  }
}

/** One row per period and dimension values: how many tenants, the total (additive measures), the spread. */
export function combineAnswers(answers: MetricAnswer[], additive: boolean) {
  const groups = new Map<
    string,
    { period?: string; complete?: boolean; dims: Record<string, string | null>; values: number[] }
  >()
  for (const a of answers)
    for (const r of a.rows) {
      if (r.value === null) continue
      const key = JSON.stringify([r.period ?? null, r.dims])
      const g = groups.get(key) ?? { period: r.period, complete: r.complete, dims: r.dims, values: [] }
      g.values.push(Number(r.value))
      groups.set(key, g)
    }
  return [...groups.values()]
    .sort(
      (x, y) =>
        (x.period ?? '').localeCompare(y.period ?? '') || JSON.stringify(x.dims).localeCompare(JSON.stringify(y.dims)),
    )
    .map((g) => ({
      ...(g.period ? { period: g.period, complete: g.complete } : {}),
      dims: g.dims,
      tenants: g.values.length,
      total: additive ? g.values.reduce((s, v) => s + v, 0) : null,
      mean: g.values.reduce((s, v) => s + v, 0) / g.values.length,
      ...spread(g.values),
    }))
}

/** Where `value` stands among `peers` (the others' values): share below, and a robust score. */
export function againstPeers(value: number, peers: number[]) {
  if (!peers.length) return { peers: 0, percentile: null, score: null, distribution: null }
  const below = peers.filter((p) => p < value).length + peers.filter((p) => p === value).length / 2
  const centre = median(peers)
  const mad = peers.length > 1 ? MAD_SCALE * medianAbsoluteDeviation(peers) : 0
  return {
    peers: peers.length,
    percentile: below / peers.length,
    score: mad > 0 ? (value - centre) / mad : null,
    distribution: spread(peers),
  }
}
