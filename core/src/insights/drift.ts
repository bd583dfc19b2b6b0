/**
 * Drift: an exponentially weighted moving average (EWMA) control chart, for slow erosion a
 * single-period score misses (realised price to list price, fill rate). As in the NIST/SEMATECH
 * e-Handbook of Statistical Methods, 6.3.2.4: z_t = λ·x_t + (1 − λ)·z_{t−1}, z_0 = target, limits
 * target ± L·σ·√(λ/(2 − λ)·(1 − (1 − λ)^{2t})).
 */
import { mean, sampleStandardDeviation } from 'simple-statistics'

export interface EwmaOptions {
  /** Weight of the newest value, 0 < λ ≤ 1. Default 0.2. */
  lambda?: number
  /** Width of the limits in standard deviations. Default 3. */
  L?: number
  /** The in-control mean; default the mean of the first `baseline` values. */
  target?: number
  /** The in-control standard deviation; default that of the first `baseline` values. */
  sigma?: number
  /** Values that estimate target and sigma when not given. Default 8. */
  baseline?: number
  /** Exact limits for the first points (true, the default) or the asymptotic ones. */
  exact?: boolean
}

export interface EwmaPoint {
  value: number
  ewma: number
  lower: number
  upper: number
  /** Outside the limits, and which side. */
  signal: 'up' | 'down' | null
}

export function ewmaChart(
  values: number[],
  opts: EwmaOptions = {},
): { target: number; sigma: number; lambda: number; L: number; points: EwmaPoint[] } {
  const lambda = opts.lambda ?? 0.2
  const L = opts.L ?? 3
  if (!(lambda > 0 && lambda <= 1)) throw new RangeError('lambda must be in (0, 1]')
  const head = values.slice(0, opts.baseline ?? 8)
  const target = opts.target ?? mean(head)
  const sigma = opts.sigma ?? (head.length > 1 ? sampleStandardDeviation(head) : 0)
  let z = target
  const points = values.map((x, i) => {
    z = lambda * x + (1 - lambda) * z
    const t = i + 1
    const factor = opts.exact === false ? 1 : 1 - (1 - lambda) ** (2 * t)
    const half = L * sigma * Math.sqrt((lambda / (2 - lambda)) * factor)
    const lower = target - half
    const upper = target + half
    return {
      value: x,
      ewma: z,
      lower,
      upper,
      signal: z > upper ? ('up' as const) : z < lower ? ('down' as const) : null,
    }
  })
  return { target, sigma, lambda, L, points }
}
