/**
 * Stock-out risk per item: a demand metric's series per item (complete periods only) gives the
 * mean and spread of demand per period; a stock metric gives what is available per item; the
 * risk is the probability that demand over the lead time exceeds it (`stockOutRisk`).
 */
import { mean, sampleStandardDeviation } from 'simple-statistics'
import type { OrgTx } from '../http/route-deps.js'
import { answerMetric } from '../metrics/answer.js'
import type { AvailableMetric } from '../metrics/catalog.js'
import type { Grain, MetricQuery } from '../metrics/types.js'
import { stockOutRisk } from './risk.js'
import { seriesOf } from './series.js'

export interface StockOutRow {
  /** The item: the demand metric's `by` value, matched to the stock metric's `stockBy` value. */
  value: string
  available: number
  demand: { mean: number; sd: number; periods: number }
  /** Mean demand × lead time. */
  expected: number
  probability: number
}

export async function stockOutRisks(
  deps: { orgTx: OrgTx; today: () => string },
  tenantId: string,
  demand: { metric: AvailableMetric; query: MetricQuery & { grain: Grain }; by: string },
  stock: { metric: AvailableMetric; by: string },
  leadTime: number,
): Promise<StockOutRow[]> {
  const demandAnswer = await answerMetric(deps, tenantId, demand.metric, { ...demand.query, groupBy: [demand.by] })
  const stockAnswer = await answerMetric(deps, tenantId, stock.metric, { groupBy: [stock.by] })
  const available = new Map<string, number>()
  for (const r of stockAnswer.rows) {
    const key = String(r.dims[stock.by] ?? '')
    available.set(key, (available.get(key) ?? 0) + Number(r.value ?? 0))
  }
  const rows: StockOutRow[] = []
  for (const [value, series] of seriesOf(demandAnswer, demand.query.grain, demand.by)) {
    const past = series.filter((p) => p.complete).map((p) => p.value)
    if (!past.length) continue
    const m = mean(past)
    const sd = past.length > 1 ? sampleStandardDeviation(past) : 0
    const have = available.get(value) ?? 0
    rows.push({
      value,
      available: have,
      demand: { mean: m, sd, periods: past.length },
      expected: m * leadTime,
      probability: stockOutRisk(have, m, sd, leadTime),
    })
  }
  return rows.sort((a, b) => b.probability - a.probability || a.value.localeCompare(b.value))
}
