// Demand over a lead time from a recorded forecast: each day takes its period's value spread
// evenly over the period's days.
import type { Ctx, DemandForecast, ForecastGrain, Stored } from './types.js'

export const GRAINS: ForecastGrain[] = ['day', 'week', 'month', 'quarter', 'year']
const DAY = 86_400_000

/** The first day after a period that starts on `start` (UTC dates). */
export function periodEnd(start: string, grain: ForecastGrain): number {
  const d = new Date(`${start}T00:00:00Z`)
  if (grain === 'day') return d.getTime() + DAY
  if (grain === 'week') return d.getTime() + 7 * DAY
  const months = grain === 'month' ? 1 : grain === 'quarter' ? 3 : 12
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + months, d.getUTCDate())
}

/**
 * Units the forecast expects over `days` days from `from` (a YYYY-MM-DD date): each day takes its
 * period's value spread evenly over the period's days; days before the first forecast period take
 * the first period's rate, days after the last the last period's. Rounded up: a planner would
 * rather have the unit than miss it.
 */
export function leadTimeDemand(f: Pick<DemandForecast, 'grain' | 'periods'>, from: string, days: number): number {
  const periods = [...f.periods]
    .sort((a, b) => a.period.localeCompare(b.period))
    .map((p) => {
      const start = Date.parse(`${p.period}T00:00:00Z`)
      const end = periodEnd(p.period, f.grain)
      return { start, end, rate: Math.max(0, p.value) / ((end - start) / DAY) }
    })
  if (!periods.length) return 0
  const first = Date.parse(`${from}T00:00:00Z`)
  let sum = 0
  for (let i = 0; i < days; i++) {
    const day = first + i * DAY
    const p =
      periods.find((x) => day >= x.start && day < x.end) ??
      (day < periods[0]!.start ? periods[0]! : periods[periods.length - 1]!)
    sum += p.rate
  }
  // Rounded to 10^-6 first, so that floating-point dust does not cost a unit.
  return Math.ceil(Math.round(sum * 1e6) / 1e6)
}

/** The forecast recorded for a SKU (all warehouses), if any. */
export async function forecastOf(ctx: Ctx, sku: string): Promise<Stored<DemandForecast> | null> {
  return ((await ctx.data.forecasts.find({ where: { sku }, limit: 1 })).items[0] as Stored<DemandForecast>) ?? null
}

/** A forecast still speaks for today when its last period has not ended. */
export const current = (f: DemandForecast, today: string) =>
  f.periods.some((p) => periodEnd(p.period, f.grain) > Date.parse(`${today}T00:00:00Z`))
