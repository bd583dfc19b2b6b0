// Forecast-driven replenishment. A demand forecast — the answer of the kernel's
// `GET /v1/metrics/:name/forecast`, over @trellis/insights' `units_sold` when it is installed, or
// any planner's forecast in the same shape — is recorded per SKU. When the stock available now,
// less the demand it forecasts over the supplier's lead time, falls to the reorder point, the SKU
// gets a suggested line on its supplier's draft purchase order before stock actually runs low;
// and a later `inventory.stock.low` sizes its suggestion with the same forecast.
import { problem, type RouteRequest, type RouteResponse } from '@trellis/plugin-sdk'
import { PUR } from './errors.js'
import type { Ctx, DemandForecast, ForecastGrain, Stored } from './types.js'
import { now, who } from './store.js'
import { leadTimeOf, placeSuggestion, supplierPriceOf } from './replenish.js'
import { forecastOf, GRAINS, leadTimeDemand } from './demand.js'

/** A forecast to record: the SKU and the kernel's forecast answer. */
export interface ForecastBody {
  sku: string
  /** Where the forecast comes from, e.g. the metric's name (`insights.units_sold`). */
  source?: string
  /** The forecast answer, as `GET /v1/metrics/:name/forecast` gives it (other fields are kept out). */
  forecast: { metric?: string; grain: string; method?: string; forecast: Array<{ period: string; value: number }> }
}

function invalid(b: ForecastBody): string[] {
  const out: string[] = []
  if (!GRAINS.includes(b.forecast.grain as ForecastGrain))
    out.push(`grain ${b.forecast.grain} is not one of ${GRAINS.join(', ')}`)
  b.forecast.forecast.forEach((p, i) => {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(p.period) || Number.isNaN(Date.parse(`${p.period}T00:00:00Z`)))
      out.push(`forecast[${i}].period ${p.period} is not a date (YYYY-MM-DD)`)
    if (!Number.isFinite(p.value) || p.value < 0) out.push(`forecast[${i}].value ${p.value} is not a quantity ≥ 0`)
  })
  return out
}

/** Records a SKU's forecast and suggests from it: the POST route's logic, also the scheduled refresh's. */
export async function recordForecast(ctx: Ctx, b: ForecastBody): Promise<RouteResponse> {
  const bad = invalid(b)
  if (bad.length) return problem(PUR.INVALID_FORECAST, bad.join('; '))
  const { levels } = await ctx.plugins.call<{
    levels: Array<{ sku: string; warehouse: string; available: number; reorderPoint: number }>
  }>('@trellis/inventory', 'levels', { skus: [b.sku] })
  if (!levels.length) return problem(PUR.INVALID_FORECAST, `inventory holds no stock record for ${b.sku}`)
  const today = now().slice(0, 10)
  const fields: DemandForecast = {
    sku: b.sku,
    source: b.source ?? b.forecast.metric ?? 'manual',
    grain: b.forecast.grain as ForecastGrain,
    ...(b.forecast.method ? { method: b.forecast.method } : {}),
    periods: b.forecast.forecast.map((p) => ({ period: p.period, value: p.value })),
    recordedAt: now(),
    recordedBy: who(ctx),
  }
  const prior = await forecastOf(ctx, b.sku)
  const stored = prior
    ? ((await ctx.data.forecasts.update(prior.id, fields, prior.version)) as Stored<DemandForecast>)
    : ((await ctx.data.forecasts.insert(fields)) as Stored<DemandForecast>)

  const available = levels.reduce((a, l) => a + l.available, 0)
  const reorderPoint = levels.reduce((a, l) => a + l.reorderPoint, 0)
  const price = await supplierPriceOf(ctx, b.sku)
  const leadTimeDays = price ? await leadTimeOf(ctx, price) : null
  const demand = leadTimeDays === null ? null : leadTimeDemand(stored, today, leadTimeDays)
  const projection = {
    available,
    reorderPoint,
    leadTimeDays,
    leadTimeDemand: demand,
    projected: demand === null ? null : available - demand,
    fallsToReorderPoint: demand !== null && available - demand <= reorderPoint,
  }
  await ctx.events.emit(
    'procurement.forecast.recorded',
    { sku: b.sku, source: stored.source, grain: stored.grain, ...projection },
    { subject: b.sku },
  )
  let suggestion: { po: string; quantity: number } | null = null
  if (price && demand !== null && projection.fallsToReorderPoint)
    suggestion = await placeSuggestion(
      ctx,
      { sku: b.sku, warehouse: levels.length === 1 ? levels[0]!.warehouse : 'all', available, reorderPoint },
      price,
      { quantity: demand, method: stored.method ?? stored.source },
      `forecast ${stored.source}: ${available} available, ${demand} expected over ${leadTimeDays} days`,
      `forecast:${stored.id}:${stored.version}`,
    )
  return {
    status: 201,
    body: {
      forecast: stored,
      projection,
      suggestion,
      ...(price ? {} : { note: `no supplier sells ${b.sku}: nothing to suggest` }),
    },
  }
}

export const forecastRoutes = {
  'POST /forecasts': (req: RouteRequest<ForecastBody>, ctx: Ctx) => recordForecast(ctx, req.body),
  'GET /forecasts/:sku': async (req: RouteRequest<null, { sku: string }>, ctx: Ctx): Promise<RouteResponse> => {
    const f = await forecastOf(ctx, req.params.sku)
    return f ? { status: 200, body: f } : problem(PUR.FORECAST_NOT_FOUND, `no forecast recorded for ${req.params.sku}`)
  },
}
