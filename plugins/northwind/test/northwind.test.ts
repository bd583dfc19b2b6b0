// The whole Northwind data set imported into one tenant through the plugins' routes, a subset into
// a second tenant alongside; sales totals from the plugins equal the CSV's to the cent, and
// neither tenant sees the other's data. One kernel, as in production: versions registered by the
// platform, installed by each tenant's admin with consent.
import t from 'tap'
import { join } from 'node:path'
import { startTestKernel, createTenantWithAdmin } from '../../../core/test/helpers/test-kernel.js'
import { registerVersion } from '../../../core/test/helpers/plugin-versions.js'
import { ERP_PLUGINS, bundleOf } from '../../support/kernel.js'
import { csvTotals, importNorthwind, parseCsv, pluginTotals, readNorthwind, type RequestFn } from '../import.js'
import { readFile } from 'node:fs/promises'

const DATA = process.env.NORTHWIND_DIR ?? join(import.meta.dirname, '..', 'data')
const SUBSET = 40

// PostgreSQL: its statements run beside the kernel's JavaScript rather than on its thread (PGlite's),
// which takes this file from 175 s to 135 s here; the embedded database loads the Northwind data
// through the same loader in the demo (test/readme-tour.test.ts).
const k = await startTestKernel(t, 'postgres', { plugins: { sandboxWorkers: 1 } })
for (const id of ERP_PLUGINS) {
  const b = await bundleOf(id)
  await registerVersion(k, { manifest: b.manifest as any, code: b.code, sourceMap: b.sourceMap })
}
const a = await createTenantWithAdmin(k, 'northwind-a')
const b = await createTenantWithAdmin(k, 'northwind-b')
for (const tenant of [a, b]) {
  for (const id of ERP_PLUGINS) {
    const { manifest } = await bundleOf(id)
    const res = await k.req('POST', '/v1/installations', {
      token: tenant.token,
      body: { plugin: manifest.name, version: manifest.version, capabilities: manifest.capabilities },
    })
    if (res.status !== 201) throw new Error(`install ${id}: ${res.status} ${JSON.stringify(res.body)}`)
  }
}
const requester =
  (token: string): RequestFn =>
  (method, path, body) =>
    k.req(method, path, { token, ...(body === undefined ? {} : { body }) })
const reqA = requester(a.token)
const reqB = requester(b.token)

const startedA = Date.now()
const resultA = await importNorthwind({ request: reqA, dataDir: DATA, log: (l) => t.comment(`A ${l}`) })
t.comment(`tenant A: full import in ${((Date.now() - startedA) / 1000).toFixed(1)} s, ${resultA.requests} requests`)
const resultB = await importNorthwind({ request: reqB, dataDir: DATA, orders: SUBSET })
t.comment(`tenant B: ${SUBSET} orders in ${(resultB.ms / 1000).toFixed(1)} s`)

const full = await readNorthwind(DATA)
const subset = await readNorthwind(DATA, SUBSET)

t.test('everything in the files is in tenant A, each order in its historical state', async (t) => {
  t.match(resultA, {
    categories: 8,
    suppliers: 29,
    products: 77,
    customers: 91,
    orders: 830,
    shipped: 809,
    invoiced: 809,
    confirmedOpen: 21,
    stockShort: 0,
    discontinued: 10,
  })
  const overThreshold = new Set(full.details.filter((d) => Number(d.discount) > 0.1).map((d) => d.order_id)).size
  t.equal(resultA.priceApprovals, overThreshold, 'every order with a discount over 10 % went through a price approval')
  const counts = await k.appSql(
    a.orgId,
    `select data->>'status' as status, count(*)::int as n from plugin_records where plugin = '@trellis/orders' and collection = 'orders' group by 1 order by 1`,
  )
  t.same(counts, [
    { status: 'confirmed', n: 21 },
    { status: 'invoiced', n: 809 },
  ])
  const order = (await reqA('GET', '/v1/x/orders/orders/10248')).body
  const csvOrder = full.orders.find((o) => o.order_id === '10248')!
  t.match(order, {
    customer: 'VINET',
    orderDate: csvOrder.order_date,
    shippedDate: csvOrder.shipped_date,
    invoiceNumber: 'NW-INV-10248',
    status: 'invoiced',
  })
  t.same(
    order.lines.map((l: any) => [l.sku, l.unitPrice, l.quantity]),
    [
      ['NW-11', '14.00', 12],
      ['NW-42', '9.80', 10],
      ['NW-72', '34.80', 5],
    ],
    'the 1996 prices, from the price history',
  )
  const approvals = await k.appSql(
    a.orgId,
    `select count(*)::int as n from events where type = 'orders.exception.resolved'`,
  )
  t.equal(approvals[0].n, overThreshold)
  const invoicedEvents = await k.appSql(
    a.orgId,
    `select count(*)::int as n from events where type = 'orders.order.invoiced'`,
  )
  t.equal(invoicedEvents[0].n, 809, 'one event per transition')
})

t.test('sales totals from the plugins equal the CSV computation to the cent', async (t) => {
  const want = csvTotals(full)
  const got = await pluginTotals(reqA)
  t.equal(want.total, '1265793.04', 'Σ unit_price × quantity × (1 − discount) over 2155 lines')
  t.equal(got.total, want.total)
  t.equal(got.orders, 830)
  t.equal(got.lines, 2155)
  t.equal(Object.keys(got.byCustomer).length, 89)
  t.same(got.byCustomer, want.byCustomer, 'per customer')
  t.equal(Object.keys(got.byProduct).length, 77)
  t.same(got.byProduct, want.byProduct, 'per product')

  // And from the orders themselves, page by page, as any client of GET /orders would.
  let cursor: string | undefined
  let micros = 0n
  let n = 0
  do {
    const page = (
      await reqA('GET', `/v1/x/orders/orders?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`)
    ).body
    for (const o of page.items) {
      n++
      for (const l of o.lines) {
        const [int, dec = ''] = (l.net as string).split('.')
        micros += BigInt(int!) * 1_000_000n + BigInt(dec.padEnd(6, '0'))
      }
    }
    cursor = page.nextCursor ?? undefined
  } while (cursor)
  t.equal(n, 830)
  const cents = ((micros + 5000n) / 10000n).toString()
  t.equal(`${cents.slice(0, -2)}.${cents.slice(-2)}`, want.total)
})

t.test('revenue by employee from the net sales metric equals SQL over the CSV rows to the cent', async (t) => {
  // The CSV rows as JSON, summed by PostgreSQL: exact numerics, rounded once per employee.
  const want = await k.ownerSql<{ employee: string; total: string }>(
    `select o ->> 'employee_id' as employee,
            round(sum((d ->> 'unit_price')::numeric * (d ->> 'quantity')::int * (1 - (d ->> 'discount')::numeric)), 2)::text as total
       from jsonb_array_elements(?::jsonb) d
       join jsonb_array_elements(?::jsonb) o on o ->> 'order_id' = d ->> 'order_id'
      group by 1 order by 1`,
    [JSON.stringify(full.details), JSON.stringify(full.orders)],
  )
  t.equal(want.length, 9)
  const got = await reqA('GET', '/v1/metrics/orders.net_sales?groupBy=employee')
  t.equal(got.status, 200, JSON.stringify(got.body))
  t.same(
    Object.fromEntries(got.body.rows.map((r: any) => [r.dims.employee, r.value])),
    Object.fromEntries(want.map((r) => [r.employee, r.total])),
  )
})

t.test('stock after the history: free stock is what Northwind lists in stock, open orders hold theirs', async (t) => {
  const products = parseCsv(await readFile(join(DATA, 'products.csv'), 'utf8'))
  const stock = (await reqA('GET', '/v1/x/inventory/stock')).body.items as Array<{
    sku: string
    onHand: number
    reserved: number
  }>
  t.equal(stock.length, 77)
  const open = new Set(full.orders.filter((o) => !o.shipped_date).map((o) => o.order_id))
  for (const p of products) {
    const s = stock.find((x) => x.sku === `NW-${p.product_id}`)!
    const reserved = full.details
      .filter((d) => d.product_id === p.product_id && open.has(d.order_id))
      .reduce((acc, d) => acc + Number(d.quantity), 0)
    if (s.onHand - s.reserved !== Number(p.units_in_stock) || s.reserved !== reserved)
      t.fail(`${s.sku}: ${JSON.stringify(s)} vs in stock ${p.units_in_stock}, open ${reserved}`)
  }
  t.pass('77 products checked')
  const discontinued = await reqA('POST', '/v1/x/orders/orders', {
    customer: 'ALFKI',
    lines: [{ sku: 'NW-1', quantity: 1 }],
  })
  t.equal(discontinued.status, 422, 'Chai is discontinued now')
  t.equal(discontinued.body.errors[0].code, 'discontinued')
})

t.test('tenant B, imported alongside, has only its own data', async (t) => {
  t.match(resultB, { orders: SUBSET, customers: 91, products: 77 })
  const want = csvTotals(subset)
  const got = await pluginTotals(reqB)
  t.same(got, { ...want, orders: SUBSET, lines: subset.details.length }, 'its totals are those of its 40 orders')
  const orders = (await reqB('GET', '/v1/x/orders/orders?limit=1000')).body.items as Array<{ number: string }>
  t.equal(orders.length, SUBSET)
  t.ok(orders.every((o) => Number(o.number) <= Number(subset.orders[SUBSET - 1]!.order_id)))
  t.equal((await reqB('GET', '/v1/x/orders/orders/11077')).status, 404, "A's last order does not exist for B")
  t.equal((await reqB('POST', '/v1/x/orders/orders/11077/cancel', { reason: 'probe' })).status, 404)
  const idsA = new Set(
    ((await reqA('GET', '/v1/x/orders/customers')).body.items as Array<{ id: string }>).map((c) => c.id),
  )
  const custB = (await reqB('GET', '/v1/x/orders/customers')).body.items as Array<{ id: string }>
  t.equal(custB.length, 91)
  t.notOk(
    custB.some((c) => idsA.has(c.id)),
    "B's customers are its own records",
  )
  // The catalog's import jobs keep their own bookkeeping (imports, importChunks) beside the data.
  const rows = await k.appSql(
    b.orgId,
    `select plugin, count(*)::int as n from plugin_records where collection not in ('imports', 'importChunks') group by 1 order by 1`,
  )
  t.same(
    rows.map((r: any) => [r.plugin, r.n]),
    [
      ['@trellis/catalog', 8 + 29 + 77],
      ['@trellis/inventory', 77 + SUBSET],
      ['@trellis/orders', 91 + SUBSET],
      ['@trellis/pricing', resultB.priceRules],
    ],
    'row-level security: B reads exactly its own records',
  )
  const eventsB = await k.appSql(b.orgId, `select count(*)::int as n from events where type = 'orders.order.placed'`)
  t.equal(eventsB[0].n, SUBSET)
  t.equal((await reqA('GET', '/v1/x/orders/reports/sales')).body.orders, 830, 'and A still has all of its own')
})
