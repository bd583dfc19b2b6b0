// How replenishment sizes a suggestion and reads a forecast, by hand: reorder point, EOQ,
// supplier minimum, the lead-time demand a forecast spreads over its periods' days.
import t from 'tap'
import { leadTimeDemand, suggest } from '../src/index.js'

const low = { sku: 'A', warehouse: 'MAIN', available: 15, reorderPoint: 20 }

t.test('reorder point: back above it, plus one lot', async (t) => {
  const s = suggest(low, { supplier: 'EXO', sku: 'A', cost: '4.50' }, 5, null, {})
  t.equal(s.quantity, 25, '20 − 15 + 20')
  t.equal(s.basis.rule, 'reorder point')
})

t.test('the economic order quantity when usage and costs are known', async (t) => {
  // √(2 · 1200 · 50 / (4.50 · 0.25)) = √(120000 / 1.125) = √106666.7 = 326.6 → 327.
  const s = suggest(low, { supplier: 'EXO', sku: 'A', cost: '4.50', annualUsage: 1200 }, 5, null, {
    orderCost: 50,
    holdingRate: 0.25,
  })
  t.equal(s.quantity, 327)
  t.match(s.basis, { rule: 'eoq', eoq: 327, annualUsage: 1200 })
  const noCosts = suggest(low, { supplier: 'EXO', sku: 'A', cost: '4.50', annualUsage: 1200 }, 5, null, {})
  t.equal(noCosts.quantity, 25, 'no ordering or holding cost: no EOQ')
})

t.test("never under the supplier's minimum", async (t) => {
  t.equal(suggest(low, { supplier: 'EXO', sku: 'A', cost: '4.50', minQuantity: 48 }, 5, null, {}).quantity, 48)
})

t.test('a forecast adds the lead-time demand, and gives the annual usage for the EOQ', async (t) => {
  const s = suggest(low, { supplier: 'EXO', sku: 'A', cost: '4.50' }, 10, { quantity: 20 }, {})
  t.equal(s.quantity, 45, '20 + 20 − 15 + 20')
  t.equal(s.basis.rule, 'reorder point + lead-time forecast')
  // 20 over 10 days = 730 a year: √(2 · 730 · 50 / (4.50 · 0.25)) = √64888.9 = 254.7 → 255.
  const eoq = suggest(
    low,
    { supplier: 'EXO', sku: 'A', cost: '4.50' },
    10,
    { quantity: 20 },
    {
      orderCost: 50,
      holdingRate: 0.25,
    },
  )
  t.match(eoq, { quantity: 255, basis: { rule: 'eoq', annualUsage: 730 } })
})

t.test("lead-time demand spreads each period's forecast over its days", async (t) => {
  const weeks = {
    grain: 'week' as const,
    periods: [
      { period: '2026-11-30', value: 14 },
      { period: '2026-12-07', value: 28 },
    ],
  }
  t.equal(leadTimeDemand(weeks, '2026-12-04', 3), 6, 'Fri–Sun of the first week: 3 × 2')
  t.equal(leadTimeDemand(weeks, '2026-12-04', 10), 6 + 7 * 4, 'then 7 days at 4')
  t.equal(leadTimeDemand(weeks, '2026-12-04', 17), 6 + 7 * 4 + 7 * 4, 'past the horizon: the last rate')
  t.equal(leadTimeDemand(weeks, '2026-11-20', 2), 4, 'before the first period: its rate')
  const months = { grain: 'month' as const, periods: [{ period: '2026-02-01', value: 28 }] }
  t.equal(leadTimeDemand(months, '2026-02-10', 5), 5, 'February: 1 a day')
  t.equal(
    leadTimeDemand({ grain: 'day', periods: [{ period: '2026-01-01', value: 0.1 }] }, '2026-01-01', 1),
    1,
    'rounded up',
  )
  t.equal(leadTimeDemand({ grain: 'day', periods: [] }, '2026-01-01', 5), 0)
})
