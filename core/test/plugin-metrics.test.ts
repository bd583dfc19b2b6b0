// ctx.metrics from sandboxed plugin code: a plugin reads its own metric, another plugin's only
// with `metrics:read:<plugin>` (refused with the code otherwise), gets exactly what the HTTP
// routes answer, never another tenant's numbers, and a metric that is not installed is a code
// it can catch.
import t from 'tap'
import { DB_KINDS, createTenantWithAdmin, startTestKernel, type TestKernel } from './helpers/test-kernel.js'
import { builtFixture, registerVersion } from './helpers/plugin-versions.js'

const shop = await builtFixture('metrics-shop')
const reader = await builtFixture('metrics-reader')
const stranger = await builtFixture('metrics-stranger')

const order = (number: string, orderDate: string, sku: string, quantity: number) => ({
  number,
  customer: 'ALF',
  status: 'invoiced',
  orderDate,
  requiredDate: orderDate,
  shippedDate: orderDate,
  lines: [{ sku, quantity, unitPrice: '2.50', discount: '0' }],
})
const MONTHS = ['01', '02', '03', '04', '05', '06', '07', '08']
const ordersA = MONTHS.flatMap((m, i) => [
  order(`A${m}a`, `2025-${m}-03`, 'P-1', 4 + (i % 3)),
  order(`A${m}b`, `2025-${m}-17`, 'P-2', 2 + i),
])
const ordersB = [order('B1', '2025-02-10', 'P-9', 7)]

async function install(k: TestKernel, token: string, built: { manifest: { name: string; version: string } }) {
  const m = built.manifest as { name: string; version: string; capabilities: string[] }
  const r = await k.req('POST', '/v1/installations', {
    token,
    body: { plugin: m.name, version: m.version, capabilities: m.capabilities },
  })
  if (r.status !== 201) throw new Error(JSON.stringify(r.body))
}

for (const kind of DB_KINDS)
  t.test(`ctx.metrics on ${kind}`, async (t) => {
    const k = await startTestKernel(t, kind, { plugins: { sandboxWorkers: 1 } })
    for (const b of [shop, reader, stranger]) await registerVersion(k, b)
    const a = await createTenantWithAdmin(k, `pm-a-${kind}`)
    const b = await createTenantWithAdmin(k, `pm-b-${kind}`)
    for (const [tenant, orders, tally] of [
      [a, ordersA, [5, 7, 11]],
      [b, ordersB, [100]],
    ] as const) {
      for (const built of [shop, reader, stranger]) await install(k, tenant.token, built)
      const seeded = await k.req('POST', '/v1/x/metrics-shop/seed', { token: tenant.token, body: { orders } })
      t.equal(seeded.status, 201, JSON.stringify(seeded.body))
      const rows = tally.map((amount, i) => ({ day: `2025-03-0${i + 1}`, amount }))
      const own = await k.req('POST', '/v1/x/metrics-reader/seed', { token: tenant.token, body: { rows } })
      t.equal(own.status, 201, JSON.stringify(own.body))
    }
    const ask = (token: string, plugin: string, op: 'query' | 'forecast', metric: string, options?: unknown) =>
      k.req('POST', `/v1/x/${plugin}/${op}`, { token, body: { metric, ...(options ? { options } : {}) } })
    const http = (token: string, url: string) => k.req('GET', url, { token })

    t.test('a plugin reads its own metric, the same as the HTTP route answers', async (t) => {
      const r = await ask(a.token, 'metrics-reader', 'query', 'metrics-reader.total', { grain: 'month' })
      t.equal(r.status, 200, JSON.stringify(r.body))
      t.same(
        r.body.rows.map((x: { period: string; value: unknown }) => [x.period, Number(x.value)]),
        [['2025-03-01', 23]],
      )
      t.same(r.body, (await http(a.token, '/v1/metrics/metrics-reader.total?grain=month')).body)
    })

    t.test("another plugin's metric with metrics:read:<plugin>: the HTTP route's numbers", async (t) => {
      const options = { grain: 'month', groupBy: ['product'], from: '2025-01-01', to: '2025-09-01' }
      const r = await ask(a.token, 'metrics-reader', 'query', 'metrics-shop.net_sales', options)
      t.equal(r.status, 200, JSON.stringify(r.body))
      const viaHttp = await http(
        a.token,
        '/v1/metrics/metrics-shop.net_sales?grain=month&groupBy=product&from=2025-01-01&to=2025-09-01',
      )
      t.equal(viaHttp.status, 200)
      t.same(r.body, viaHttp.body)
      t.equal(r.body.rows.length, 16, 'two products in eight months')
      const filtered = await ask(a.token, 'metrics-reader', 'query', 'metrics-shop.net_sales', {
        filter: { product: 'P-2' },
      })
      t.same(filtered.body.rows[0].value, '110.00', 'Σ 2.50 × (2 + … + 9) of P-2')

      const forecast = { grain: 'month', season: 2, horizon: 2, from: '2025-01-01', to: '2025-09-01' }
      const f = await ask(a.token, 'metrics-reader', 'forecast', 'metrics-shop.orders', forecast)
      const fHttp = await http(
        a.token,
        '/v1/metrics/metrics-shop.orders/forecast?grain=month&season=2&horizon=2&from=2025-01-01&to=2025-09-01',
      )
      t.equal(fHttp.status, 200, JSON.stringify(fHttp.body))
      t.equal(f.status, 200, JSON.stringify(f.body))
      t.same(f.body, fHttp.body)
      t.equal(f.body.forecast.length, 2)
    })

    t.test("without the capability, another plugin's metric is refused with the code", async (t) => {
      const r = await ask(a.token, 'metrics-stranger', 'query', 'metrics-shop.net_sales', { grain: 'month' })
      t.same(r.body, { code: 'KRN_ERR_CAPABILITY_DENIED' })
      const f = await ask(a.token, 'metrics-stranger', 'forecast', 'metrics-shop.orders', { grain: 'month' })
      t.same(f.body, { code: 'KRN_ERR_CAPABILITY_DENIED' })
      const own = await ask(a.token, 'metrics-stranger', 'query', 'metrics-reader.total')
      t.same(own.body, { code: 'KRN_ERR_CAPABILITY_DENIED' }, "nor a third plugin's")
    })

    t.test('a metric that is not installed, or a bad query, is a code the plugin catches', async (t) => {
      const r = await ask(a.token, 'metrics-reader', 'forecast', 'insights.units_sold', { grain: 'week' })
      t.same(r.body, { code: 'MET_ERR_NOT_FOUND' })
      const bad = await ask(a.token, 'metrics-reader', 'query', 'metrics-shop.net_sales', { groupBy: ['colour'] })
      t.same(bad.body, { code: 'MET_ERR_QUERY_INVALID' })
      const short = await ask(a.token, 'metrics-reader', 'forecast', 'metrics-reader.total', { grain: 'month' })
      t.same(short.body, { code: 'MET_ERR_SERIES_TOO_SHORT' })
    })

    t.test("tenant B's plugin never sees tenant A's numbers", async (t) => {
      const r = await ask(b.token, 'metrics-reader', 'query', 'metrics-shop.net_sales', { groupBy: ['product'] })
      t.equal(r.status, 200, JSON.stringify(r.body))
      t.same(r.body.rows, [{ dims: { product: 'P-9' }, value: '17.50' }])
      const own = await ask(b.token, 'metrics-reader', 'query', 'metrics-reader.total')
      t.same(
        own.body.rows.map((x: { value: unknown }) => Number(x.value)),
        [100],
      )
    })
  })
