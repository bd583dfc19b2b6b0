// Concurrent orders for the same stock on real PostgreSQL (where transactions really overlap; the
// embedded database runs them one after another): none fails, none over-reserves.
import t from 'tap'
import { DB_KINDS, startTestKernel, createTenantWithAdmin } from '../../../core/test/helpers/test-kernel.js'
import { registerVersion } from '../../../core/test/helpers/plugin-versions.js'
import { ERP_PLUGINS, bundleOf } from '../../support/kernel.js'

if (!DB_KINDS.includes('postgres')) {
  t.plan(0, 'PostgreSQL is not among TRELLIS_TEST_DBS')
} else {
  const k = await startTestKernel(t, 'postgres', { plugins: { sandboxWorkers: 2 } })
  for (const id of ERP_PLUGINS) {
    const b = await bundleOf(id)
    await registerVersion(k, { manifest: b.manifest as any, code: b.code, sourceMap: b.sourceMap })
  }
  const a = await createTenantWithAdmin(k, 'concurrent')
  for (const id of ERP_PLUGINS) {
    const { manifest } = await bundleOf(id)
    const res = await k.req('POST', '/v1/installations', {
      token: a.token,
      body: { plugin: manifest.name, version: manifest.version, capabilities: manifest.capabilities },
    })
    if (res.status !== 201) throw new Error(`install ${id}: ${res.status} ${JSON.stringify(res.body)}`)
  }
  const r = (method: string, path: string, body?: unknown) =>
    k.req(method, path, { token: a.token, ...(body === undefined ? {} : { body }) })
  await r('POST', '/v1/x/catalog/import/categories', { csv: 'code,name\n1,Beverages\n' })
  await r('POST', '/v1/x/catalog/import/suppliers', { csv: 'code,name\n1,Exotic Liquids\n' })
  await r('POST', '/v1/x/catalog/import/products', { csv: 'sku,name,category,supplier\nA,Tea,1,1\nB,Ale,1,1\n' })
  await r('POST', '/v1/x/pricing/prices/import', {
    rules: [
      { kind: 'list', sku: 'A', price: '1.00' },
      { kind: 'list', sku: 'B', price: '2.00' },
    ],
  })
  await r('POST', '/v1/x/inventory/stock/import', {
    rows: [
      { sku: 'A', onHand: 100 },
      { sku: 'B', onHand: 9 },
    ],
  })
  await r('POST', '/v1/x/orders/customers', { code: 'C', name: 'Customer' })

  t.test('twelve orders at once for nine in stock: all placed, nine reserved, three short', async (t) => {
    const res = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        r('POST', '/v1/x/orders/orders', {
          number: `P-${i}`,
          customer: 'C',
          lines: [
            { sku: 'A', quantity: 1 },
            { sku: 'B', quantity: 1 },
          ],
        }),
      ),
    )
    t.same(
      res.map((x) => x.status),
      Array(12).fill(201),
      'no order fails on a version conflict',
    )
    const reserved = res.filter((x) => x.body.stock === 'reserved').length
    t.equal(reserved, 9)
    t.equal(res.filter((x) => x.body.exceptions.some((e: any) => e.kind === 'stock_short')).length, 3)
    t.match((await r('GET', '/v1/x/inventory/stock/B')).body, { onHand: 9, reserved: 9 })
    t.match(
      (await r('GET', '/v1/x/inventory/stock/A')).body,
      { onHand: 100, reserved: 9 },
      'a short order keeps none of its other lines',
    )
  })

  t.test('orders of the same two products with their lines in opposite orders, at once: none deadlocks', async (t) => {
    // Each order locks both stock records until it commits; were they locked in line order, an
    // order of (C, D) and one of (D, C) could each hold the record the other waits for, and
    // PostgreSQL would end one of them with a deadlock error (an HTTP 500) after a second.
    await r('POST', '/v1/x/catalog/import/products', { csv: 'sku,name,category,supplier\nC,Coffee,1,1\nD,Dates,1,1\n' })
    await r('POST', '/v1/x/pricing/prices/import', {
      rules: [
        { kind: 'list', sku: 'C', price: '3.00' },
        { kind: 'list', sku: 'D', price: '4.00' },
      ],
    })
    await r('POST', '/v1/x/inventory/stock/import', {
      rows: [
        { sku: 'C', onHand: 1000 },
        { sku: 'D', onHand: 1000 },
      ],
    })
    const res = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        r('POST', '/v1/x/orders/orders', {
          number: `X-${i}`,
          customer: 'C',
          lines:
            i % 2 === 0
              ? [
                  { sku: 'C', quantity: 1 },
                  { sku: 'D', quantity: 2 },
                ]
              : [
                  { sku: 'D', quantity: 2 },
                  { sku: 'C', quantity: 1 },
                ],
        }),
      ),
    )
    t.same(
      res.map((x) => x.status),
      Array(16).fill(201),
      'every order is placed',
    )
    t.same(
      res.map((x) => x.body.stock),
      Array(16).fill('reserved'),
    )
    t.match((await r('GET', '/v1/x/inventory/stock/C')).body, { onHand: 1000, reserved: 16 })
    t.match((await r('GET', '/v1/x/inventory/stock/D')).body, { onHand: 1000, reserved: 32 })
  })
}
