/**
 * `GET /v1/metrics/:name/anomalies` and `GET /v1/metrics/:name/forecast`: the methods of
 * core/src/insights over a metric's series, with what a person needs to see why (baseline,
 * score, contributors; method, parameters, backtest error). Same visibility as the metric.
 */
import { Type } from '@sinclair/typebox'
import type { FastifyRequest } from 'fastify'
import type { Api } from '../http/types.js'
import { principalOf, requirePermission } from '../http/guards.js'
import { AUTH } from '../errors.js'
import { MET } from '../metrics/errors.js'
import { availableMetrics, mayRead } from '../metrics/catalog.js'
import { answerMetric } from '../metrics/answer.js'
import { parseMetricQuery } from '../metrics/query.js'
import type { MetricRouteDeps } from '../metrics/routes.js'
import { detectAnomalies } from './anomaly.js'
import { contributorsAt } from './contributors.js'
import { seriesOf } from './series.js'
import { forecastMetric, numberParam, SEASON } from './forecast.js'
import { stockOutRisks } from './stock-out.js'

const Query = Type.Object({
  from: Type.Optional(Type.String()),
  to: Type.Optional(Type.String()),
  grain: Type.Optional(Type.String()),
  filter: Type.Optional(Type.String()),
  season: Type.Optional(
    Type.String({ description: 'Periods per cycle (default: 7 days, 52 weeks, 12 months, 4 quarters).' }),
  ),
  threshold: Type.Optional(
    Type.String({ description: 'Robust score beyond which a period is anomalous (default 3.5).' }),
  ),
  minVolume: Type.Optional(Type.String({ description: 'Periods quieter than this are not judged (default 0).' })),
  by: Type.Optional(Type.String({ description: 'A dimension: the values contributing most to each anomaly.' })),
  horizon: Type.Optional(Type.String({ description: 'Periods to forecast (1 to 36, default 6).' })),
  stock: Type.Optional(Type.String({ description: 'Stock-out risk: the metric of stock available per item.' })),
  stockBy: Type.Optional(Type.String({ description: "Stock-out risk: the stock metric's item dimension." })),
  leadTime: Type.Optional(Type.String({ description: 'Stock-out risk: the supplier lead time, in periods.' })),
})

export function registerInsightRoutes(app: Api, deps: MetricRouteDeps & { today: () => string }): void {
  /** The metric, the caller's right to it, and its series query (grain required). */
  const prepare = async (request: FastifyRequest, extra: string[]) => {
    const p = principalOf(request)
    const { name } = request.params as { name: string }
    const all = p.orgKind === 'tenant' ? await availableMetrics(deps.plugins, p.orgId) : new Map()
    const m = all.get(name)
    if (!m) throw MET.NOT_FOUND({ name })
    if (!mayRead(p.permissions, m)) throw AUTH.FORBIDDEN({ permission: m.declaration.permission })
    const raw = { ...(request.query as Record<string, unknown>) }
    const rest: Record<string, unknown> = {}
    for (const k of extra) if (k in raw) (rest[k] = raw[k]), delete raw[k]
    const query = parseMetricQuery(raw, m.declaration)
    if (!query.grain) throw MET.QUERY_INVALID({ field: 'grain', reason: 'is required', allowed: Object.keys(SEASON) })
    return { p, m, query, rest, grain: query.grain }
  }

  app.get(
    '/metrics/:name/anomalies',
    {
      preHandler: requirePermission(),
      schema: {
        tags: ['metrics'],
        summary: "Anomalous periods of a metric's series: seasonal baseline, robust (MAD) score, top contributors",
        params: Type.Object({ name: Type.String({ maxLength: 200 }) }),
        querystring: Query,
      },
    },
    async (request) => {
      const { p, m, query, rest, grain } = await prepare(request, ['season', 'threshold', 'minVolume', 'by'])
      const season = numberParam(rest, 'season', 0, 366, SEASON[grain])
      const threshold = numberParam(rest, 'threshold', 0.5, 100, 3.5)
      const minVolume = numberParam(rest, 'minVolume', 0, 1e15, 0)
      const by = rest.by as string | undefined
      const dims = Object.keys(m.declaration.dimensions ?? {}).sort()
      if (by !== undefined && !dims.includes(by))
        throw MET.QUERY_INVALID({ field: 'by', reason: `"${by}" is not a dimension of this metric`, allowed: dims })
      const answer = await answerMetric({ orgTx: deps.orgTx, today: deps.today }, p.orgId, m, query)
      const series = seriesOf(answer, grain).get('')!
      const cycles = season > 1 ? 3 : 8
      const points = detectAnomalies(series, { season, cycles, threshold, minVolume })
      let split: ReturnType<typeof seriesOf> | undefined
      if (by) {
        const byAnswer = await answerMetric({ orgTx: deps.orgTx, today: deps.today }, p.orgId, m, {
          ...query,
          groupBy: [by],
        })
        split = seriesOf(byAnswer, grain, by)
      }
      const anomalies = points
        .map((pt, i) => ({ pt, i }))
        .filter(({ pt }) => pt.anomalous)
        .map(({ pt, i }) => {
          const contributors = split ? contributorsAt(split, pt.period, season, cycles) : undefined
          return {
            period: pt.period,
            value: pt.value,
            baseline: pt.baseline,
            score: pt.score,
            ...(contributors ? { by, contributors } : {}),
            index: i,
          }
        })
      return {
        metric: m.name,
        grain,
        method: {
          baseline: 'median of the same period in past cycles',
          season,
          cycles,
          score: 'robust z (MAD × 1.4826)',
          threshold,
          minVolume,
        },
        points,
        anomalies: anomalies.map(({ index: _i, ...a }) => a),
      }
    },
  )

  app.get(
    '/metrics/:name/forecast',
    {
      preHandler: requirePermission(),
      schema: {
        tags: ['metrics'],
        summary:
          "A forecast of a metric's series (Holt-Winters, or Croston/SBA when intermittent) with its rolling-origin backtest",
        params: Type.Object({ name: Type.String({ maxLength: 200 }) }),
        querystring: Query,
      },
    },
    async (request) => {
      const { p, m, query, rest, grain } = await prepare(request, ['season', 'horizon'])
      return forecastMetric({ orgTx: deps.orgTx, today: deps.today }, p.orgId, m, { ...query, grain }, rest)
    },
  )

  app.get(
    '/metrics/:name/stock-out-risk',
    {
      preHandler: requirePermission(),
      schema: {
        tags: ['metrics'],
        summary:
          'Per item, the probability that demand (this metric, by `by`) over the lead time exceeds the available stock (the `stock` metric, by `stockBy`)',
        params: Type.Object({ name: Type.String({ maxLength: 200 }) }),
        querystring: Query,
      },
    },
    async (request) => {
      const { p, m, query, rest, grain } = await prepare(request, ['by', 'stock', 'stockBy', 'leadTime'])
      const dimension = (field: string, value: unknown, of: typeof m) => {
        const dims = Object.keys(of.declaration.dimensions ?? {}).sort()
        if (typeof value !== 'string' || !dims.includes(value))
          throw MET.QUERY_INVALID({ field, reason: `must be a dimension of ${of.name}`, allowed: dims })
        return value
      }
      const by = dimension('by', rest.by, m)
      if (rest.leadTime === undefined) throw MET.QUERY_INVALID({ field: 'leadTime', reason: 'is required' })
      const leadTime = numberParam(rest, 'leadTime', 0.1, 366, 1)
      const stock = (await availableMetrics(deps.plugins, p.orgId)).get(String(rest.stock ?? ''))
      if (!stock) throw MET.NOT_FOUND({ name: String(rest.stock ?? '') })
      if (!mayRead(p.permissions, stock)) throw AUTH.FORBIDDEN({ permission: stock.declaration.permission })
      const stockBy = dimension('stockBy', rest.stockBy, stock)
      const rows = await stockOutRisks(
        { orgTx: deps.orgTx, today: deps.today },
        p.orgId,
        { metric: m, query: { ...query, grain }, by },
        { metric: stock, by: stockBy },
        leadTime,
      )
      return {
        metric: m.name,
        stock: stock.name,
        grain,
        leadTime,
        method: 'normal approximation: demand over the lead time ~ N(mean × L, sd × √L), from complete periods',
        rows,
      }
    },
  )
}
