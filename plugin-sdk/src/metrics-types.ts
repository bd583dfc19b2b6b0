/**
 * What `ctx.metrics` asks and answers: the kernel's metric query and forecast, the same as
 * `GET /v1/metrics/:name` and `GET /v1/metrics/:name/forecast` answer. A plugin reads metrics
 * through the kernel (in the invocation's tenant, under row-level security), never aggregating
 * records in the sandbox.
 */

/** A time grain of a metric series. */
export type MetricGrain = 'day' | 'week' | 'month' | 'quarter' | 'year'

/** Dimension → value or values a metric is restricted to. */
export type MetricFilter = Record<string, string | number | boolean | Array<string | number | boolean>>

/** Options of `ctx.metrics.query`: a series (`grain`) or a table (`groupBy`) over a date window. */
export interface MetricQueryOptions {
  grain?: MetricGrain
  /** Dimension names to group by (at most 4). */
  groupBy?: string[]
  filter?: MetricFilter
  /** Inclusive start date (`YYYY-MM-DD`). */
  from?: string
  /** Exclusive end date (`YYYY-MM-DD`). */
  to?: string
  /** Most rows (1 to 10000). */
  limit?: number
}

/** Options of `ctx.metrics.forecast`. */
export interface MetricForecastOptions {
  grain: MetricGrain
  /** Periods to forecast (1 to 36, default 6). */
  horizon?: number
  /** Periods per cycle (default: 7 days, 52 weeks, 12 months, 4 quarters). */
  season?: number
  filter?: MetricFilter
  from?: string
  to?: string
}

/** Arguments of the `metrics.query` host operation. */
export interface MetricQueryArgs extends MetricQueryOptions {
  /** `<mount>.<metric>`, e.g. `insights.units_sold`. */
  metric: string
}

/** Arguments of the `metrics.forecast` host operation. */
export interface MetricForecastArgs extends MetricForecastOptions {
  metric: string
}

/** A metric's answer: rows in period, then dimension order. */
export interface MetricAnswer {
  metric: string
  title: string
  unit: string | null
  grain: string | null
  from: string | null
  to: string | null
  groupBy: string[]
  rows: Array<{
    period?: string
    dims: Record<string, string | null>
    value: number | string | null
    /** False for a period not yet over (or cut by the window). */
    complete?: boolean
  }>
  /** More rows matched than the limit; the answer holds the first ones. */
  truncated: boolean
  /** `rollup`: read from a materialised series as of `refreshedAt`; `query`: computed from the records now. */
  source?: 'rollup' | 'query'
  /** When the rollup that answered was last brought up to date. */
  refreshedAt?: string
}

/** A metric's forecast, with the method chosen and its rolling-origin backtest. */
export interface MetricForecast {
  metric: string
  grain: MetricGrain
  /** `holt-winters-additive`, or `sba` (Croston/SBA) for intermittent demand. */
  method: string
  parameters: Record<string, number>
  /** One value per future period, oldest first. */
  forecast: Array<{ period: string; value: number }>
  backtest: { origins: number; horizon: number; mase: number | null; smape: number | null }
  /** Complete periods the forecast was fitted on. */
  history: number
}
