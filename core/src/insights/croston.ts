/**
 * Intermittent demand (many zero periods): Croston's method and the Syntetos-Boylan
 * approximation (SBA). Demand sizes z and intervals p between demands are smoothed separately
 * (updated only in periods with demand); the per-period forecast is z/p, and SBA multiplies it by
 * (1 − α/2) to remove Croston's known upward bias (Syntetos and Boylan, 2005).
 */

export interface CrostonFit {
  method: 'croston' | 'sba'
  alpha: number
  /** Smoothed demand size. */
  size: number
  /** Smoothed interval between demands (periods). */
  interval: number
  /** Demand per period. */
  forecast: number
}

/** Fits Croston (or SBA) to `y`; the first demand initialises size and interval. */
export function croston(y: number[], opts: { alpha?: number; sba?: boolean } = {}): CrostonFit {
  const alpha = opts.alpha ?? 0.1
  let size: number | undefined
  let interval: number | undefined
  let since = 0
  for (const x of y) {
    since++
    if (x <= 0) continue
    if (size === undefined || interval === undefined) {
      size = x
      interval = since
    } else {
      size = alpha * x + (1 - alpha) * size
      interval = alpha * since + (1 - alpha) * interval
    }
    since = 0
  }
  if (size === undefined || interval === undefined)
    return { method: opts.sba ? 'sba' : 'croston', alpha, size: 0, interval: Number.POSITIVE_INFINITY, forecast: 0 }
  const ratio = size / interval
  return {
    method: opts.sba ? 'sba' : 'croston',
    alpha,
    size,
    interval,
    forecast: opts.sba ? (1 - alpha / 2) * ratio : ratio,
  }
}

/** True when a series is intermittent: the average interval between demands is over 1.32 (Syntetos et al.). */
export function isIntermittent(y: number[]): boolean {
  const demands = y.filter((x) => x > 0).length
  if (!demands) return true
  return y.length / demands > 1.32
}
