// The forecast refresh without the kernel, in the SDK's in-memory test host: without the insights
// layer the demand metric is unknown, and the refresh records and suggests nothing; a SKU whose
// history is too short is skipped after trying a yearly, then a two-week cycle.
import t from 'tap'
import { createTestHost, TrellisError } from '@trellis/plugin-sdk'
import { DEMAND_METRIC, procurementPlugin, type RefreshSummary } from '../src/index.js'

async function withPrices() {
  return async (options: Parameters<typeof createTestHost>[1] = {}) => {
    const host = createTestHost(procurementPlugin, options)
    for (const sku of ['A', 'B'])
      await host.call('data.insert', { collection: 'prices', record: { supplier: 'EXO', sku, cost: '1.00' } })
    return host
  }
}

t.test('without insights installed: nothing recorded, nothing suggested', async (t) => {
  const host = await (await withPrices())()
  const out = await host.step<{ $workflow: string; output: RefreshSummary }>('forecastRefresh.refresh', null)
  t.match(out, { $workflow: 'complete', output: { insights: false, recorded: [] } })
  t.same(
    out.output.skipped.map((s) => s.sku),
    ['A', 'B'],
  )
  t.equal(host.collections.get('forecasts')!.size, 0)
  t.equal(host.collections.get('purchaseOrders')!.size, 0)
  const asked = host.calls.filter((c) => c.op === 'metrics.forecast')
  t.equal(asked.length, 1, 'one refusal is enough to know insights is absent')
  t.match(asked[0]!.args, { metric: DEMAND_METRIC, grain: 'week', filter: { product: 'A' } })
})

t.test('too little history: skipped after a yearly and a two-week cycle', async (t) => {
  const seasons: number[] = []
  const host = await (await withPrices())({
    metrics: {
      forecast: (args) => {
        seasons.push(args.season!)
        throw new TrellisError('MET_ERR_SERIES_TOO_SHORT', 422, 'Series too short', 'needs more periods')
      },
    },
  })
  const out = await host.step<{ output: RefreshSummary }>('forecastRefresh.refresh', { sku: 'B' })
  t.same(out.output, {
    insights: true,
    recorded: [],
    skipped: [{ sku: 'B', reason: 'too little sales history to forecast' }],
  })
  t.same(seasons, [52, 2])
})
