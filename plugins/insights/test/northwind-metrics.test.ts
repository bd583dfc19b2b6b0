// The metrics of the orders, inventory and insights plugins reproduce Northwind's figures to the
// cent, against sums computed here from the vendored CSV files.
//
// The data goes straight into the tenant's plugin records, in the shape the plugins store it
// (orders with their priced lines, customers, products, stock rows): importing all 830 orders
// through the plugins' routes takes minutes (plugins/northwind/test/northwind.test.ts does that
// and checks the same CSV totals against the orders plugin's own report). What is under test
// here is the kernel's metric compiler over those records, on both databases.
import t from 'tap'
import { join } from 'node:path'
import { cumulativeStdNormalProbability, mean, sampleStandardDeviation } from 'simple-statistics'
import {
  DB_KINDS,
  addUser,
  createTenantWithAdmin,
  startTestKernel,
  type TestKernel,
} from '../../../core/test/helpers/test-kernel.js'
import { readNorthwind, skuOf, type NorthwindData } from '../../northwind/import.js'
import { installInsights } from './install-insights.js'

const DATA = process.env.NORTHWIND_DIR ?? join(import.meta.dirname, '..', '..', 'northwind', 'data')
const SUBSET = 40
const full = await readNorthwind(DATA)
const subset = await readNorthwind(DATA, SUBSET)

// ---- expected figures, from the CSV rows (exact: 10^-6 units; a line is price × qty × (1 − d)) ----
const micros = (s: string) => {
  const [i, f = ''] = s.split('.')
  return BigInt(i!) * 1_000_000n + BigInt(f.padEnd(6, '0'))
}
const cents = (u: bigint) => {
  const c = (u + 5_000n) / 10_000n
  const s = c.toString().padStart(3, '0')
  return `${s.slice(0, -2)}.${s.slice(-2)}`
}
function expected(
  data: NorthwindData,
  key: (o: Record<string, string>, d: Record<string, string>) => string,
  discount = false,
) {
  const orders = new Map(data.orders.map((o) => [o.order_id!, o]))
  const sums = new Map<string, bigint>()
  for (const d of data.details) {
    const gross = micros(d.unit_price!) * BigInt(d.quantity!)
    const amount = discount
      ? (gross * micros(d.discount!)) / 1_000_000n
      : (gross * (1_000_000n - micros(d.discount!))) / 1_000_000n
    const k = key(orders.get(d.order_id!)!, d)
    sums.set(k, (sums.get(k) ?? 0n) + amount)
  }
  return Object.fromEntries([...sums].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, cents(v)]))
}
const countryOf = new Map(full.customers.map((c) => [c.customer_id!, c.country!]))
const categoryOf = new Map(full.products.map((p) => [p.product_id!, p.category_id!]))

/**
 * Stock-out risk per product from the CSVs: units sold per month from the first month with an
 * order to the last (0 where none), their mean and sample standard deviation, units in stock,
 * and P(demand over `lead` months > stock) under N(mean × lead, sd × √lead).
 */
function expectedStockOut(data: NorthwindData, lead: number) {
  const monthOf = new Map(data.orders.map((o) => [o.order_id!, o.order_date!.slice(0, 7)]))
  const months = [...new Set(monthOf.values())].sort()
  const span: string[] = []
  for (let m = months[0]!; m <= months[months.length - 1]!; ) {
    span.push(m)
    const [y, mo] = m.split('-').map(Number) as [number, number]
    m = mo === 12 ? `${y + 1}-01` : `${y}-${String(mo + 1).padStart(2, '0')}`
  }
  const sold = new Map<string, Map<string, number>>()
  for (const d of data.details) {
    const byMonth = sold.get(d.product_id!) ?? new Map<string, number>()
    const m = monthOf.get(d.order_id!)!
    byMonth.set(m, (byMonth.get(m) ?? 0) + Number(d.quantity))
    sold.set(d.product_id!, byMonth)
  }
  const stock = new Map(data.products.map((p) => [p.product_id!, Number(p.units_in_stock)]))
  return Object.fromEntries(
    [...sold].map(([id, byMonth]) => {
      const series = span.map((m) => byMonth.get(m) ?? 0)
      const mu = mean(series)
      const sd = sampleStandardDeviation(series)
      const available = stock.get(id)!
      const z = (available - mu * lead) / (sd * Math.sqrt(lead))
      return [skuOf(id), { available, mean: mu, sd, probability: 1 - cumulativeStdNormalProbability(z) }]
    }),
  )
}

// ---- the records, in the plugins' stored shape ----
function records(data: NorthwindData) {
  const linesOf = new Map<string, Array<Record<string, string>>>()
  for (const d of data.details) linesOf.set(d.order_id!, [...(linesOf.get(d.order_id!) ?? []), d])
  const names = new Map(data.products.map((p) => [p.product_id!, p.product_name!]))
  const open = new Map<string, number>()
  const orders = data.orders.map((o) => {
    const shipped = !!o.shipped_date
    const lines = (linesOf.get(o.order_id!) ?? []).map((d, i) => {
      if (!shipped) open.set(d.product_id!, (open.get(d.product_id!) ?? 0) + Number(d.quantity))
      return {
        line: i + 1,
        sku: skuOf(d.product_id!),
        name: names.get(d.product_id!),
        quantity: Number(d.quantity),
        listPrice: Number(d.unit_price).toFixed(2),
        unitPrice: Number(d.unit_price).toFixed(2),
        discount: Number(d.discount).toFixed(4),
      }
    })
    return {
      number: o.order_id,
      customer: o.customer_id,
      ...(o.employee_id ? { employeeId: o.employee_id } : {}),
      status: shipped ? 'invoiced' : 'confirmed',
      orderDate: o.order_date,
      ...(o.required_date ? { requiredDate: o.required_date } : {}),
      ...(shipped ? { shippedDate: o.shipped_date, invoicedDate: o.shipped_date } : {}),
      lines,
      // As the import leaves them: a discount over the 10 % approval threshold was approved.
      exceptions: lines.some((l) => Number(l.discount) > 0.1)
        ? [
            {
              kind: 'price_approval',
              reason: 'discount over the approval threshold',
              status: 'resolved',
              decision: 'approved',
            },
          ]
        : [],
      history: [],
    }
  })
  return {
    '@trellis/orders': {
      orders,
      customers: data.customers.map((c) => ({
        code: c.customer_id,
        name: c.company_name,
        country: c.country,
        creditHold: false,
      })),
    },
    '@trellis/catalog': {
      categories: data.categories.map((c) => ({ code: c.category_id, name: c.category_name })),
      products: data.products.map((p) => ({
        sku: skuOf(p.product_id!),
        name: p.product_name,
        category: p.category_id,
        supplier: p.supplier_id,
        unit: 'each',
        packSize: 1,
        discontinued: p.discontinued === '1',
      })),
    },
    '@trellis/inventory': {
      stock: data.products.map((p) => ({
        sku: skuOf(p.product_id!),
        warehouse: 'MAIN',
        onHand: Number(p.units_in_stock) + (open.get(p.product_id!) ?? 0),
        reserved: open.get(p.product_id!) ?? 0,
        reorderPoint: Number(p.reorder_level),
      })),
    },
  } as Record<string, Record<string, unknown[]>>
}

async function load(k: TestKernel, tenantId: string, data: NorthwindData) {
  for (const [plugin, collections] of Object.entries(records(data)))
    for (const [collection, rows] of Object.entries(collections))
      await k.ownerSql(
        `insert into plugin_records (tenant_id, plugin, collection, id, data)
         select ?::uuid, ?, ?, gen_random_uuid(), x from jsonb_array_elements(?::jsonb) x`,
        [tenantId, plugin, collection, JSON.stringify(rows)],
      )
}

for (const kind of DB_KINDS) {
  t.test(kind, async (t) => {
    const k = await startTestKernel(t, kind, { plugins: { sandboxWorkers: 1 } })
    const a = await createTenantWithAdmin(k, `nwm-a-${kind}`)
    const b = await createTenantWithAdmin(k, `nwm-b-${kind}`)
    await installInsights(k, [a.token, b.token])
    await load(k, a.orgId, full)
    await load(k, b.orgId, subset)
    const get = async (url: string, token = a.token) => {
      const r = await k.req('GET', url, { token })
      if (r.status !== 200) throw new Error(`${url}: ${r.status} ${JSON.stringify(r.body)}`)
      return r.body
    }
    const byKey = (body: any, key: (r: any) => string) =>
      Object.fromEntries(
        body.rows.map((r: any) => [key(r), r.value]).sort(([x]: string[], [y]: string[]) => x!.localeCompare(y!)),
      )

    t.test('revenue in total, by year and by month', async (t) => {
      const total = await get('/v1/metrics/orders.net_sales')
      t.equal(total.rows[0].value, '1265793.04', 'Σ unit_price × quantity × (1 − discount) over 2155 lines')
      const years = byKey(await get('/v1/metrics/orders.net_sales?grain=year'), (r) => r.period.slice(0, 4))
      t.same(
        years,
        expected(full, (o) => o.order_date!.slice(0, 4)),
      )
      t.same(
        years,
        { '1996': '208083.97', '1997': '617085.20', '1998': '440623.87' },
        "Northwind's published yearly sales",
      )
      const months = byKey(await get('/v1/metrics/orders.net_sales?grain=month'), (r) => r.period.slice(0, 7))
      t.same(
        months,
        expected(full, (o) => o.order_date!.slice(0, 7)),
      )
      t.equal(Object.keys(months).length, 23)
      const q = await get('/v1/metrics/orders.net_sales?grain=quarter&from=1997-01-01&to=1998-01-01')
      t.same(
        byKey(q, (r) => r.period),
        expected(
          {
            ...full,
            details: full.details.filter((d) =>
              full.orders.find((o) => o.order_id === d.order_id)!.order_date!.startsWith('1997'),
            ),
          },
          (o) => {
            const m = Number(o.order_date!.slice(5, 7))
            return `1997-${String(m - ((m - 1) % 3)).padStart(2, '0')}-01`
          },
        ),
      )
    })

    t.test('revenue by country, category, product, employee; discount given', async (t) => {
      const country = byKey(await get('/v1/metrics/orders.net_sales?groupBy=country'), (r) => r.dims.country)
      t.same(
        country,
        expected(full, (o) => countryOf.get(o.customer_id!)!),
      )
      t.equal(Object.keys(country).length, 21)
      const category = byKey(
        await get('/v1/metrics/insights.net_sales_by_category?groupBy=category'),
        (r) => r.dims.category,
      )
      t.same(
        category,
        expected(full, (_o, d) => categoryOf.get(d.product_id!)!),
      )
      const product = byKey(await get('/v1/metrics/orders.net_sales?groupBy=product'), (r) => r.dims.product)
      t.same(
        product,
        expected(full, (_o, d) => skuOf(d.product_id!)),
      )
      t.equal(Object.keys(product).length, 77)
      const customer = byKey(await get('/v1/metrics/orders.net_sales?groupBy=customer'), (r) => r.dims.customer)
      t.same(
        customer,
        expected(full, (o) => o.customer_id!),
      )
      const employee = byKey(await get('/v1/metrics/orders.net_sales?groupBy=employee'), (r) => r.dims.employee)
      t.same(
        employee,
        expected(full, (o) => o.employee_id!),
      )
      t.same(
        employee,
        {
          '1': '192107.60',
          '2': '166537.76',
          '3': '202812.84',
          '4': '232890.85',
          '5': '68792.28',
          '6': '73913.13',
          '7': '124568.24',
          '8': '126862.28',
          '9': '77308.07',
        },
        "Northwind's published sales by employee",
      )
      const employeeCategory = await get(
        `/v1/metrics/insights.net_sales_by_category?groupBy=employee,category&filter=${encodeURIComponent('{"employee":"4"}')}`,
      )
      t.same(
        byKey(employeeCategory, (r) => r.dims.category),
        expected(
          {
            ...full,
            details: full.details.filter(
              (d) => full.orders.find((o) => o.order_id === d.order_id)!.employee_id === '4',
            ),
          },
          (_o, d) => categoryOf.get(d.product_id!)!,
        ),
        "one employee's sales by category",
      )
      const discount = await get('/v1/metrics/orders.discount_given')
      t.same(discount.rows[0].value, expected(full, () => 'all', true).all)
      const byYear = byKey(await get('/v1/metrics/orders.discount_given?grain=year'), (r) => r.period.slice(0, 4))
      t.same(
        byYear,
        expected(full, (o) => o.order_date!.slice(0, 4), true),
      )
    })

    t.test('late and unshipped orders; products at or below their reorder level', async (t) => {
      const late = await get('/v1/metrics/orders.late_orders')
      t.equal(late.rows[0].value, full.orders.filter((o) => o.shipped_date && o.shipped_date > o.required_date!).length)
      t.equal(late.rows[0].value, 37)
      const unshipped = await get('/v1/metrics/orders.unshipped_orders')
      t.equal(unshipped.rows[0].value, full.orders.filter((o) => !o.shipped_date).length)
      t.equal(unshipped.rows[0].value, 21)
      const exceptions = await get('/v1/metrics/orders.order_exceptions?groupBy=kind,status')
      t.same(exceptions.rows, [
        {
          dims: { kind: 'price_approval', status: 'resolved' },
          value: new Set(full.details.filter((d) => Number(d.discount) > 0.1).map((d) => d.order_id)).size,
        },
      ])
      const reorder = await get('/v1/metrics/inventory.at_or_below_reorder')
      t.equal(
        reorder.rows[0].value,
        full.products.filter((p) => Number(p.units_in_stock) <= Number(p.reorder_level)).length,
      )
    })

    t.test("each tenant's metrics cover its own records only", async (t) => {
      const mine = await get('/v1/metrics/orders.net_sales?groupBy=product', b.token)
      t.same(
        byKey(mine, (r) => r.dims.product),
        expected(subset, (_o, d) => skuOf(d.product_id!)),
      )
      const count = await get('/v1/metrics/orders.orders', b.token)
      t.equal(count.rows[0].value, SUBSET)
    })

    t.test('anomalies and forecasts over a metric series, explained', async (t) => {
      const months = await get('/v1/metrics/orders.net_sales?grain=month')
      const values = months.rows.map((r: any) => Number(r.value))
      const found = await get('/v1/metrics/orders.net_sales/anomalies?grain=month&season=0&by=country')
      t.equal(found.points.length, 23)
      t.match(found.method, { season: 0, cycles: 8, threshold: 3.5 })
      const median = (xs: number[]) => {
        const s = [...xs].sort((a, b) => a - b)
        return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
      }
      found.points.forEach((p: any, i: number) => {
        if (i > 0) t.equal(p.baseline, median(values.slice(Math.max(0, i - 8), i)), `baseline of ${p.period}`)
      })
      for (const a of found.anomalies)
        t.ok(a.contributors.length > 0 && a.by === 'country', `contributors of ${a.period}`)
      const tooShort = await k.req('GET', '/v1/metrics/orders.net_sales/forecast?grain=month', { token: a.token })
      t.equal(tooShort.status, 422)
      t.equal(tooShort.body.code, 'MET_ERR_SERIES_TOO_SHORT')
      const hw = await get('/v1/metrics/orders.net_sales/forecast?grain=month&season=3&horizon=3')
      t.equal(hw.method, 'holt-winters-additive')
      t.same(Object.keys(hw.parameters).sort(), ['alpha', 'beta', 'gamma', 'season'])
      t.same(
        hw.forecast.map((f: any) => f.period),
        ['1998-06-01', '1998-07-01', '1998-08-01'],
      )
      t.ok(hw.backtest.origins > 0 && Number.isFinite(hw.backtest.mase) && Number.isFinite(hw.backtest.smape))
      const rare = await get(
        `/v1/metrics/orders.net_sales/forecast?grain=month&filter=${encodeURIComponent(JSON.stringify({ product: 'NW-9' }))}`,
      )
      t.equal(rare.method, 'sba', 'a product sold in few months is intermittent: Croston/SBA')
      t.ok(rare.forecast[0].value > 0)
    })

    t.test('stock-out risk per product over the supplier lead time', async (t) => {
      const q = 'grain=month&by=product&stock=inventory.stock_available&stockBy=sku'
      const risk = await get(`/v1/metrics/insights.units_sold/stock-out-risk?${q}&leadTime=1.5`)
      const want = expectedStockOut(full, 1.5)
      t.equal(risk.rows.length, Object.keys(want).length, 'every product sold')
      for (const r of risk.rows) {
        const w = want[r.value]
        t.equal(r.available, w.available, `${r.value}: units in stock`)
        t.ok(Math.abs(r.demand.mean - w.mean) < 1e-9 && Math.abs(r.demand.sd - w.sd) < 1e-9, `${r.value}: demand`)
        t.equal(r.demand.periods, 23)
        t.ok(Math.abs(r.probability - w.probability) < 1e-9, `${r.value}: ${r.probability} vs ${w.probability}`)
      }
      const p = risk.rows.map((r: any) => r.probability)
      t.same(
        p,
        [...p].sort((x, y) => y - x),
        'riskiest first',
      )
      const empty = risk.rows.filter((r: any) => r.available === 0)
      t.ok(empty.length > 0, 'Northwind has sold-out products')
      t.ok(
        empty.every((r: any) => r.probability > 0.5),
        'an empty shelf with demand more likely runs out than not',
      )
      const longer = await get(`/v1/metrics/insights.units_sold/stock-out-risk?${q}&leadTime=6`)
      const at = (body: any, sku: string) => body.rows.find((r: any) => r.value === sku).probability
      const mid = risk.rows.find((r: any) => r.probability > 0.05 && r.probability < 0.95)
      t.ok(mid, 'a product at some risk')
      t.ok(at(longer, mid.value) > mid.probability, 'a longer lead time, a higher risk')

      const bad = async (query: string, token = a.token) =>
        k.req('GET', `/v1/metrics/insights.units_sold/stock-out-risk?${query}`, { token })
      for (const [query, field] of [
        ['grain=month&by=product&stock=inventory.stock_available&stockBy=sku', 'leadTime'],
        [`${q}&leadTime=0`, 'leadTime'],
        ['grain=month&by=colour&stock=inventory.stock_available&stockBy=sku&leadTime=1', 'by'],
        ['grain=month&by=product&stock=inventory.stock_available&stockBy=colour&leadTime=1', 'stockBy'],
        ['by=product&stock=inventory.stock_available&stockBy=sku&leadTime=1', 'grain'],
      ] as const) {
        const r = await bad(query)
        t.equal(r.status, 400, field)
        t.equal(r.body.code, 'MET_ERR_QUERY_INVALID', field)
      }
      t.equal((await bad(`${q.replace('inventory.stock_available', 'inventory.nope')}&leadTime=1`)).status, 404)
      await k.req('POST', '/v1/roles', { token: a.token, body: { name: 'sales', permissions: ['orders.read'] } })
      const sales = await addUser(k, a.token, `sales@nwm-${kind}.test`, 'sales')
      const denied = await bad(`${q}&leadTime=1`, sales.token)
      t.equal(denied.status, 403, 'demand is readable, stock is not')
      t.equal(denied.body.code, 'AUTH_ERR_FORBIDDEN')
      const other = await get(`/v1/metrics/insights.units_sold/stock-out-risk?${q}&leadTime=1.5`, b.token)
      t.equal(other.rows.length, Object.keys(expectedStockOut(subset, 1.5)).length, "tenant B's own products")
    })

    t.test('the insights dashboards list their panels, as data', async (t) => {
      const boards = await get('/v1/dashboards')
      const sales = boards.items.find((d: any) => d.name === 'insights.sales')
      t.ok(sales)
      t.equal(sales.hiddenPanels, 0)
      t.match(sales.panels[0], { kind: 'number', metric: 'orders.net_sales', window: 'P12M', compare: 'year' })
      for (const panel of boards.items.flatMap((d: any) => d.panels)) {
        const query = new URLSearchParams({
          ...(panel.grain ? { grain: panel.grain } : {}),
          ...(panel.groupBy ? { groupBy: panel.groupBy.join(',') } : {}),
        })
        const answer = await get(`/v1/metrics/${panel.metric}?${query}`)
        t.ok(answer.rows.length > 0, `${panel.title} answers`)
      }
    })
  })
}
