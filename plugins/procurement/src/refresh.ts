// Forecasts refreshed by procurement itself: for every SKU on a price list (or the one whose stock
// fell low), the kernel's forecast of @trellis/insights' `units_sold` is read through ctx.metrics
// and recorded exactly as a posted one, suggesting when projected stock falls to the reorder point
// within the lead time. Without insights installed the metric is unknown (`MET_ERR_NOT_FOUND`):
// nothing is suggested from forecasts and reorder points keep working.
import type { MetricForecast } from '@trellis/plugin-sdk'
import type { Ctx } from './types.js'
import { pricesOf, setting } from './store.js'
import { recordForecast } from './forecasts.js'

/** The demand metric procurement forecasts. */
export const DEMAND_METRIC = 'insights.units_sold'

const code = (err: unknown) => (err as { code?: string }).code

/** What a refresh did, per SKU. */
export interface RefreshSummary {
  /** False when the demand metric is not available (insights not installed). */
  insights: boolean
  recorded: Array<{ sku: string; suggestion: { po: string; quantity: number } | null }>
  skipped: Array<{ sku: string; reason: string }>
}

/**
 * A weekly forecast of the SKU's demand: a yearly cycle when the history holds two, else a short
 * one (two weeks) so that a few months of history already give a trend and level.
 */
async function weeklyForecast(ctx: Ctx, sku: string): Promise<MetricForecast | string> {
  const horizon = Number(setting(ctx, 'forecastHorizonWeeks', 8))
  for (const season of [52, 2]) {
    try {
      return await ctx.metrics.forecast(DEMAND_METRIC, { grain: 'week', season, horizon, filter: { product: sku } })
    } catch (err) {
      if (code(err) !== 'MET_ERR_SERIES_TOO_SHORT') throw err
    }
  }
  return 'too little sales history to forecast'
}

/** Refreshes the forecasts of `skus` (default: every SKU on a price list). */
export async function refreshForecasts(ctx: Ctx, skus?: string[]): Promise<RefreshSummary> {
  const all = skus ?? [...new Set((await pricesOf(ctx, {})).map((p) => p.sku))].sort()
  const out: RefreshSummary = { insights: true, recorded: [], skipped: [] }
  for (const sku of all) {
    let forecast: MetricForecast | string
    try {
      forecast = await weeklyForecast(ctx, sku)
    } catch (err) {
      if (code(err) !== 'MET_ERR_NOT_FOUND') throw err
      return {
        insights: false,
        recorded: [],
        skipped: all.map((s) => ({ sku: s, reason: `${DEMAND_METRIC} is not available` })),
      }
    }
    if (typeof forecast === 'string') {
      out.skipped.push({ sku, reason: forecast })
      continue
    }
    const res = await recordForecast(ctx, { sku, source: forecast.metric, forecast })
    const body = res.body as { suggestion?: { po: string; quantity: number } | null; detail?: string }
    if (res.status === 201) out.recorded.push({ sku, suggestion: body.suggestion ?? null })
    else out.skipped.push({ sku, reason: body.detail ?? `status ${res.status}` })
  }
  return out
}
