/**
 * A forecast of a metric's series (Holt-Winters, or Croston/SBA when intermittent) with its
 * rolling-origin backtest: what `GET /v1/metrics/:name/forecast` and the `metrics.forecast`
 * host operation answer.
 */
import type { OrgTx } from '../http/route-deps.js'
import { MET } from '../metrics/errors.js'
import type { AvailableMetric } from '../metrics/catalog.js'
import { answerMetric } from '../metrics/answer.js'
import { nextPeriod } from '../metrics/periods.js'
import type { Grain, MetricQuery } from '../metrics/types.js'
import { croston, isIntermittent } from './croston.js'
import { fitHoltWinters, forecastHoltWinters } from './holt-winters.js'
import { rollingOrigin } from './accuracy.js'
import { seriesOf } from './series.js'

/** Periods per cycle, by grain. */
export const SEASON: Record<Grain, number> = { day: 7, week: 52, month: 12, quarter: 4, year: 0 }

/** A numeric query-string parameter within bounds, or its default. */
export function numberParam(
  raw: Record<string, unknown>,
  field: string,
  min: number,
  max: number,
  dflt: number,
): number {
  const v = raw[field]
  if (v === undefined) return dflt
  const n = Number(v)
  if (typeof v !== 'string' || !/^\d+(\.\d+)?$/.test(v) || n < min || n > max)
    throw MET.QUERY_INVALID({ field, reason: `must be a number from ${min} to ${max}` })
  return n
}

/** The forecast answer. */
export interface MetricForecast {
  metric: string
  grain: Grain
  method: string
  parameters: Record<string, number>
  forecast: Array<{ period: string; value: number }>
  backtest: ReturnType<typeof rollingOrigin>
  history: number
}

/** Forecasts `m` under `query` (grain required) in `tenantId`; `rest` holds `season` and `horizon` as given. */
export async function forecastMetric(
  deps: { orgTx: OrgTx; today: () => string },
  tenantId: string,
  m: AvailableMetric,
  query: MetricQuery & { grain: Grain },
  rest: Record<string, unknown>,
): Promise<MetricForecast> {
  const grain = query.grain
  const season = numberParam(rest, 'season', 0, 366, SEASON[grain])
  const horizon = numberParam(rest, 'horizon', 1, 36, 6)
  const answer = await answerMetric(deps, tenantId, m, query)
  const series = seriesOf(answer, grain)
    .get('')!
    .filter((x) => x.complete !== false)
  const y = series.map((x) => x.value)
  const intermittent = isIntermittent(y)
  let method: string
  let parameters: Record<string, number>
  let predict: (train: number[], h: number) => number[]
  if (intermittent) {
    if (y.length < 4) throw MET.SERIES_TOO_SHORT({ need: 4, have: y.length, method: 'Croston/SBA' })
    const fit = croston(y, { sba: true })
    method = 'sba'
    parameters = { alpha: fit.alpha, size: fit.size, interval: fit.interval }
    predict = (train, h) => Array(h).fill(croston(train, { sba: true }).forecast)
  } else {
    if (season < 2 || y.length < 2 * season + 2)
      throw MET.SERIES_TOO_SHORT({ need: 2 * Math.max(season, 2) + 2, have: y.length, method: 'Holt-Winters' })
    const fit = fitHoltWinters(y, season)
    method = 'holt-winters-additive'
    parameters = { alpha: fit.alpha, beta: fit.beta, gamma: fit.gamma, season }
    predict = (train, h) => forecastHoltWinters(fitHoltWinters(train, season), h)
  }
  const values = predict(y, horizon)
  const minTrain = intermittent ? Math.max(4, y.length - 12 - horizon) : Math.max(2 * season, y.length - 12 - horizon)
  // Holt-Winters fits no fewer than two cycles (and four values): a history too short to hold
  // out a horizon after that has no backtest (origins 0) rather than a failed fit.
  const fitMin = intermittent ? 0 : Math.max(4, 2 * season)
  const start = Math.max(fitMin, Math.min(minTrain, y.length - horizon))
  const backtest = rollingOrigin(y, horizon, start, predict, intermittent ? 1 : season)
  let period = series.length ? series[series.length - 1]!.period : (query.from ?? deps.today())
  const forecast = values.map((value) => {
    period = nextPeriod(period, grain)
    return { period, value }
  })
  return { metric: m.name, grain, method, parameters, forecast, backtest, history: series.length }
}
