/** A metric's answer as a gap-free numeric series (missing periods are 0), oldest first. */
import type { MetricAnswer } from '../metrics/answer.js'
import { nextPeriod } from '../metrics/periods.js'
import type { Grain } from '../metrics/types.js'
import type { SeriesPoint } from './anomaly.js'

/** One series per dimension value (key `''` without groupBy), over the same periods. */
export function seriesOf(answer: MetricAnswer, grain: Grain, by?: string): Map<string, SeriesPoint[]> {
  const periods = [...new Set(answer.rows.map((r) => r.period!))].sort()
  const complete = new Map(answer.rows.map((r) => [r.period!, r.complete !== false]))
  const all: string[] = []
  if (periods.length) for (let p = periods[0]!; p <= periods[periods.length - 1]!; p = nextPeriod(p, grain)) all.push(p)
  const values = new Map<string, Map<string, number>>()
  for (const r of answer.rows) {
    const key = by ? (r.dims[by] ?? '') : ''
    const m = values.get(key) ?? new Map<string, number>()
    m.set(r.period!, Number(r.value ?? 0))
    values.set(key, m)
  }
  if (!values.size) values.set('', new Map())
  const out = new Map<string, SeriesPoint[]>()
  for (const [key, m] of values)
    out.set(
      key,
      all.map((period) => ({ period, value: m.get(period) ?? 0, complete: complete.get(period) ?? true })),
    )
  return out
}
