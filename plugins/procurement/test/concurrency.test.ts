// The supply side under concurrency on real PostgreSQL (where transactions really overlap; the
// embedded database runs them one after another), and between tenants: two receipts of the same
// purchase-order line never over-receive, two returns of the same order line never exceed what
// was shipped, and one tenant reaches nothing of another's.
import t from 'tap'
import { DB_KINDS, startTestKernel, createTenantWithAdmin } from '../../../core/test/helpers/test-kernel.js'
import { registerVersion } from '../../../core/test/helpers/plugin-versions.js'
import { SUPPLY_PLUGINS, bundleOf } from '../../support/kernel.js'

if (!DB_KINDS.includes('postgres')) {
  t.plan(0, 'PostgreSQL is not among TRELLIS_TEST_DBS')
} else {
  const k = await startTestKernel(t, 'postgres', { plugins: { sandboxWorkers: 2 } })
  for (const id of SUPPLY_PLUGINS) {
    const b = await bundleOf(id)
    await registerVersion(k, { manifest: b.manifest as any, code: b.code, sourceMap: b.sourceMap })
  }
  async function tenant(slug: string) {
    const a = await createTenantWithAdmin(k, slug)
    for (const id of SUPPLY_PLUGINS) {
      const { manifest } = await bundleOf(id)
      const res = await k.req('POST', '/v1/installations', {
        token: a.token,
        body: { plugin: manifest.name, version: manifest.version, capabilities: manifest.capabilities },
      })
      if (res.status !== 201) throw new Error(`install ${id}: ${res.status} ${JSON.stringify(res.body)}`)
    }
    const r = (method: string, path: string, body?: unknown) =>
      k.req(method, path, { token: a.token, ...(body === undefined ? {} : { body }) })
    const ok = async (method: string, path: string, body?: unknown) => {
      const res = await r(method, path, body)
      if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`)
      return res.body
    }
    return { r, ok }
  }
  const { r, ok } = await tenant('supply-a')
  await ok('POST', '/v1/x/catalog/import/categories', { csv: 'code,name\n1,Beverages\n' })
  await ok('POST', '/v1/x/catalog/import/suppliers', { csv: 'code,name\n1,Exotic Liquids\n' })
  await ok('POST', '/v1/x/catalog/import/products', { csv: 'sku,name,category,supplier\nA,Tea,1,1\n' })
  await ok('POST', '/v1/x/pricing/prices/import', { rules: [{ kind: 'list', sku: 'A', price: '3.00' }] })
  await ok('POST', '/v1/x/inventory/stock/import', { rows: [{ sku: 'A', onHand: 100 }] })
  await ok('POST', '/v1/x/procurement/suppliers/import', { rows: [{ code: 'EXO', name: 'Exotic Liquids' }] })
  await ok('POST', '/v1/x/procurement/prices/import', { rows: [{ supplier: 'EXO', sku: 'A', cost: '1.25' }] })
  await ok('POST', '/v1/x/orders/customers', { code: 'C', name: 'Customer' })

  t.test('two receipts of the same PO line at once never over-receive', async (t) => {
    const P = '/v1/x/procurement/purchase-orders'
    await ok('POST', P, { number: 'PO-1', supplier: 'EXO', lines: [{ sku: 'A', quantity: 10 }] })
    await ok('POST', `${P}/PO-1/submit`)
    await ok('POST', `${P}/PO-1/send`, {})
    const res = await Promise.all(
      [7, 7, 7].map((quantity) => r('POST', `${P}/PO-1/receipts`, { lines: [{ line: 1, quantity }] })),
    )
    t.same(
      res.map((x) => x.status).sort(),
      [201, 409, 409],
      'one delivery of 7 fits in 10; the others are over-deliveries',
    )
    t.ok(res.filter((x) => x.status === 409).every((x) => x.body.code === 'PUR_ERR_OVER_DELIVERY'))
    t.match((await ok('GET', `${P}/PO-1`)).lines[0], { quantity: 10, received: 7, over: 0 })
    t.equal((await ok('GET', '/v1/x/inventory/stock/A')).onHand, 107, 'stock up by exactly what was received')
  })

  t.test('two returns of the same order line at once never exceed what was shipped', async (t) => {
    const O = '/v1/x/orders/orders'
    await ok('POST', O, { number: 'SO-1', customer: 'C', lines: [{ sku: 'A', quantity: 5 }] })
    for (const step of ['confirm', 'ship', 'invoice']) await ok('POST', `${O}/SO-1/${step}`, {})
    const res = await Promise.all(
      [3, 3, 3].map(() =>
        r('POST', '/v1/x/returns/rmas', { order: 'SO-1', lines: [{ line: 1, quantity: 3, reason: 'damaged' }] }),
      ),
    )
    t.same(res.map((x) => x.status).sort(), [201, 409, 409], '5 shipped: one return of 3 fits, a second would make 6')
    t.ok(res.filter((x) => x.status === 409).every((x) => x.body.code === 'RET_ERR_EXCEEDS_SHIPPED'))
  })

  t.test("one tenant reaches nothing of another's", async (t) => {
    const b = await tenant('supply-b')
    t.equal((await b.r('GET', '/v1/x/procurement/purchase-orders/PO-1')).body.code, 'PUR_ERR_PO_NOT_FOUND')
    t.same((await b.ok('GET', '/v1/x/procurement/purchase-orders')).items, [])
    const receipt = await b.r('POST', '/v1/x/procurement/purchase-orders/PO-1/receipts', {
      lines: [{ line: 1, quantity: 1 }],
    })
    t.equal(receipt.status, 404)
    const rma = await b.r('POST', '/v1/x/returns/rmas', {
      order: 'SO-1',
      lines: [{ line: 1, quantity: 1, reason: 'other' }],
    })
    t.equal(rma.body.code, 'RET_ERR_ORDER_NOT_FOUND', "another tenant's order does not exist here")
    t.equal((await b.r('GET', '/v1/x/returns/rmas')).body.items.length, 0)
    t.equal((await ok('GET', '/v1/x/inventory/stock/A')).onHand, 102, 'untouched: 107 less the 5 shipped')
  })
}
