/**
 * Anomalies in a metric series: a seasonal baseline (the median of the same period in past
 * cycles, or of the recent periods when the series has no season) and a robust score of the
 * residual (its distance from the past residuals' median in units of their scaled median
 * absolute deviation). Quiet periods (under a minimum volume) and incomplete periods are never
 * flagged; an incomplete period is not even scored.
 */
import { median, medianAbsoluteDeviation } from 'simple-statistics'

/** One period of a series. */
export interface SeriesPoint {
  period: string
  value: number
  /** False for a period still running (or cut by the window): never compared as complete. */
  complete?: boolean
}

export interface AnomalyOptions {
  /** Periods per cycle (12 for months in a year, 7 for days in a week); 0 or 1: no season. */
  season: number
  /** Past cycles (or, without a season, past periods) the baseline takes the median of. Default 3 (8 without a season). */
  cycles?: number
  /** Robust score beyond which a period is anomalous. Default 3.5 (Iglewicz and Hoaglin). */
  threshold?: number
  /** Neither the value nor the baseline reaches this: the period is too quiet to judge. Default 0. */
  minVolume?: number
  /** Past residuals the score compares with. Default 24. */
  window?: number
  /** Fewest past residuals before any period is scored. Default the season (at least 6). */
  minHistory?: number
}

/** A scored period. */
export interface ScoredPoint extends SeriesPoint {
  baseline: number | null
  residual: number | null
  /** Robust z-score: (residual − median of past residuals) / (1.4826 × their MAD). */
  score: number | null
  anomalous: boolean
  /** Why the period was not judged, when it was not. */
  skipped?: 'incomplete' | 'history' | 'volume'
}

/** 1.4826 × MAD estimates the standard deviation of normal data. */
export const MAD_SCALE = 1.4826

/** The baseline of point `i`: the median of the same period in past cycles, or of the past periods. */
export function seasonalBaseline(values: number[], i: number, season: number, cycles: number): number | null {
  const past: number[] = []
  if (season > 1) for (let c = 1; c <= cycles && i - c * season >= 0; c++) past.push(values[i - c * season]!)
  else for (let j = i - 1; j >= 0 && past.length < cycles; j--) past.push(values[j]!)
  return past.length ? median(past) : null
}

/** Scores every period of `series` (oldest first). */
export function detectAnomalies(series: SeriesPoint[], opts: AnomalyOptions): ScoredPoint[] {
  const season = opts.season > 1 ? opts.season : 0
  const cycles = opts.cycles ?? (season ? 3 : 8)
  const threshold = opts.threshold ?? 3.5
  const minVolume = opts.minVolume ?? 0
  const window = opts.window ?? 24
  const minHistory = opts.minHistory ?? Math.max(6, season)
  const complete = series.filter((p) => p.complete !== false)
  const values = complete.map((p) => p.value)
  const residuals: number[] = []
  const scored = new Map<string, ScoredPoint>()
  complete.forEach((p, i) => {
    const baseline = seasonalBaseline(values, i, season, cycles)
    const residual = baseline === null ? null : p.value - baseline
    const past = residuals.slice(-window)
    let score: number | null = null
    let skipped: ScoredPoint['skipped']
    if (residual === null || past.length < minHistory) skipped = 'history'
    else {
      const spread = MAD_SCALE * medianAbsoluteDeviation(past)
      const centre = median(past)
      // A perfectly regular past (MAD 0): any change at all is infinitely surprising.
      score =
        spread > 0 ? (residual - centre) / spread : residual === centre ? 0 : Math.sign(residual - centre) * Infinity
      if (Math.max(Math.abs(p.value), Math.abs(baseline ?? 0)) < minVolume) skipped = 'volume'
    }
    if (residual !== null) residuals.push(residual)
    scored.set(p.period, {
      ...p,
      baseline,
      residual,
      score,
      anomalous: !skipped && score !== null && Math.abs(score) > threshold,
      ...(skipped ? { skipped } : {}),
    })
  })
  return series.map(
    (p) =>
      scored.get(p.period) ?? {
        ...p,
        baseline: null,
        residual: null,
        score: null,
        anomalous: false,
        skipped: 'incomplete',
      },
  )
}

/**
 * The dimension values that contribute most to a change: each value's change against its own
 * baseline, largest absolute change first.
 */
export function topContributors(
  current: Record<string, number>,
  baseline: Record<string, number>,
  n = 3,
): Array<{ value: string; current: number; baseline: number; change: number; share: number }> {
  const keys = new Set([...Object.keys(current), ...Object.keys(baseline)])
  const rows = [...keys].map((k) => {
    const c = current[k] ?? 0
    const b = baseline[k] ?? 0
    return { value: k, current: c, baseline: b, change: c - b }
  })
  const total = rows.reduce((s, r) => s + r.change, 0)
  return rows
    .sort((x, y) => Math.abs(y.change) - Math.abs(x.change) || x.value.localeCompare(y.value))
    .slice(0, n)
    .map((r) => ({ ...r, share: total === 0 ? 0 : r.change / total }))
}
