/**
 * Additive Holt-Winters (triple exponential smoothing) for regular series with a trend and a
 * season, as in Hyndman and Athanasopoulos, Forecasting: Principles and Practice, 8.3:
 *   level_t  = α(y_t − s_{t−m}) + (1 − α)(level_{t−1} + trend_{t−1})
 *   trend_t  = β(level_t − level_{t−1}) + (1 − β)trend_{t−1}
 *   s_t      = γ(y_t − level_{t−1} − trend_{t−1}) + (1 − γ)s_{t−m}
 *   ŷ_{t+h}  = level_t + h·trend_t + s_{t+h−m(k+1)}
 * Initial state from the first two cycles. Parameters are chosen by a grid search minimising the
 * in-sample one-step squared error unless given.
 */

export interface HoltWintersParams {
  alpha: number
  beta: number
  gamma: number
}

export interface HoltWintersFit extends HoltWintersParams {
  season: number
  level: number
  trend: number
  /** The last `season` seasonal components, oldest first. */
  seasonal: number[]
  /** In-sample sum of squared one-step errors. */
  sse: number
}

function run(y: number[], m: number, p: HoltWintersParams): HoltWintersFit {
  const first = y.slice(0, m)
  const second = y.slice(m, 2 * m)
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length
  let level = mean(first)
  let trend = (mean(second) - mean(first)) / m
  const s = first.map((x) => x - level)
  let sse = 0
  for (let t = m; t < y.length; t++) {
    const season = s[t - m]!
    const forecast = level + trend + season
    sse += (y[t]! - forecast) ** 2
    const prevLevel = level
    const prevTrend = trend
    level = p.alpha * (y[t]! - season) + (1 - p.alpha) * (prevLevel + prevTrend)
    trend = p.beta * (level - prevLevel) + (1 - p.beta) * prevTrend
    s.push(p.gamma * (y[t]! - prevLevel - prevTrend) + (1 - p.gamma) * season)
  }
  return { ...p, season: m, level, trend, seasonal: s.slice(-m), sse }
}

/** Fits the model; `y` needs at least two full seasons. */
export function fitHoltWinters(y: number[], season: number, params?: Partial<HoltWintersParams>): HoltWintersFit {
  if (season < 2) throw new RangeError('Holt-Winters needs a season of at least 2 periods')
  if (y.length < 2 * season) throw new RangeError(`Holt-Winters needs at least ${2 * season} values`)
  const grid = [0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9]
  const pick = (k: keyof HoltWintersParams) => (params?.[k] !== undefined ? [params[k]!] : grid)
  let best: HoltWintersFit | undefined
  for (const alpha of pick('alpha'))
    for (const beta of pick('beta'))
      for (const gamma of pick('gamma')) {
        const fit = run(y, season, { alpha, beta, gamma })
        if (!best || fit.sse < best.sse) best = fit
      }
  return best!
}

/** The next `h` values after the fitted series. */
export function forecastHoltWinters(fit: HoltWintersFit, h: number): number[] {
  return Array.from({ length: h }, (_, i) => fit.level + (i + 1) * fit.trend + fit.seasonal[i % fit.season]!)
}
