// Concurrent orders for the same stock on real PostgreSQL (where transactions really overlap; the
// embedded database runs them one after another): none fails, none over-reserves.
import pg from 'pg'
import t from 'tap'
import { eventually } from '../../../core/test/helpers/receiver.js'
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

  // Two writers of the same two stock records, one with its lines in the other's order, made to
  // interleave the worst way without any timing: the test holds the first record (by id) locked,
  // starts the (lo, hi) writer and waits until it waits, then the (hi, lo) writer until it waits
  // too, and lets go. Written in line order, the second would hold `hi` while waiting for `lo`,
  // and the first, given `lo`, would wait for `hi`: a deadlock every time, one writer ending in
  // PostgreSQL's deadlock error. Written by record id, the second waits for `lo` holding nothing.
  const interleaved = async (skus: [string, string], write: (order: [string, string]) => Promise<unknown>) => {
    const recs = await k.ownerSql<{ id: string; sku: string }>(
      `select id::text as id, data->>'sku' as sku from plugin_records
        where collection = 'stock' and data->>'sku' in (?, ?) order by id`,
      skus,
    )
    const [lo, hi] = recs.map((x) => x.sku) as [string, string]
    const waiters = async () =>
      (
        await k.ownerSql<{ n: number }>(
          `select count(*)::int as n from pg_stat_activity
            where datname = current_database() and wait_event_type = 'Lock' and query like '%plugin_records%'`,
        )
      )[0]!.n
    const holder = new pg.Client({ connectionString: k.databaseUrl })
    await holder.connect()
    try {
      await holder.query('begin')
      await holder.query('select 1 from plugin_records where id = $1::uuid for update', [recs[0]!.id])
      const first = write([lo, hi])
      first.catch(() => {})
      await eventually(async () => (await waiters()) >= 1)
      const second = write([hi, lo])
      second.catch(() => {})
      await eventually(async () => (await waiters()) >= 2)
      await holder.query('commit')
      return { lo, hi, results: await Promise.allSettled([first, second]) }
    } finally {
      await holder.end()
    }
  }

  t.test('two stock imports of the same records in opposite row orders, interleaved: none deadlocks', async (t) => {
    await r('POST', '/v1/x/catalog/import/products', { csv: 'sku,name,category,supplier\nG,Gin,1,1\nH,Honey,1,1\n' })
    await r('POST', '/v1/x/inventory/stock/import', {
      rows: [
        { sku: 'G', onHand: 1 },
        { sku: 'H', onHand: 1 },
      ],
    })
    const onHand = { first: 10, second: 20 }
    const { lo, hi, results } = await interleaved(['G', 'H'], ([x, y]) => {
      const n = x === 'G' ? onHand.first : onHand.second
      return r('POST', '/v1/x/inventory/stock/import', {
        rows: [
          { sku: x, onHand: n },
          { sku: y, onHand: n },
        ],
      })
    })
    t.same(
      results.map((x) => (x.status === 'fulfilled' ? (x.value as { status: number }).status : x.reason)),
      [200, 200],
      'both imports answer 200',
    )
    t.same(
      results.map((x) => (x.status === 'fulfilled' ? (x.value as { body: unknown }).body : null)),
      [
        { rows: 2, created: 0, updated: 2 },
        { rows: 2, created: 0, updated: 2 },
      ],
    )
    // The (lo, hi) import went first; the other one's values are the last written.
    const last = hi === 'G' ? onHand.first : onHand.second
    t.match((await r('GET', `/v1/x/inventory/stock/${lo}`)).body, { onHand: last })
    t.match((await r('GET', `/v1/x/inventory/stock/${hi}`)).body, { onHand: last })
  })

  t.test('two receipts of the same products in opposite line orders, interleaved: none deadlocks', async (t) => {
    await r('POST', '/v1/x/catalog/import/products', { csv: 'sku,name,category,supplier\nJ,Jam,1,1\nK,Kale,1,1\n' })
    await r('POST', '/v1/x/inventory/stock/import', {
      rows: [
        { sku: 'J', onHand: 100 },
        { sku: 'K', onHand: 200 },
      ],
    })
    const host = k.kernel.ctx.plugins
    const installation = (await host.installed(a.orgId)).byPlugin.get('@trellis/inventory')!
    const { lo, hi, results } = await interleaved(['J', 'K'], ([x, y]) =>
      host.invoke({
        tenantId: a.orgId,
        installation,
        entry: { kind: 'action', name: 'receive' },
        input: {
          reference: `R-${x}${y}`,
          reason: 'delivery',
          lines: [
            { sku: x, quantity: 1 },
            { sku: y, quantity: 2 },
          ],
        },
        caller: { kind: 'system', id: 'test', permissions: [] },
      }),
    )
    t.same(
      results.map((x) => (x.status === 'fulfilled' ? (x.value as { received: boolean }).received : String(x.reason))),
      [true, true],
      'both receipts are taken',
    )
    t.match(
      results[1],
      {
        value: {
          lines: [
            { sku: hi, quantity: 1 },
            { sku: lo, quantity: 2 },
          ],
        },
      },
      'the (hi, lo) receipt, written lo first, answers its lines in its own order',
    )
    // J got 1 + 2 and K got 2 + 1, whichever order the lines came in.
    t.match((await r('GET', '/v1/x/inventory/stock/J')).body, { onHand: 103, reserved: 0 })
    t.match((await r('GET', '/v1/x/inventory/stock/K')).body, { onHand: 203, reserved: 0 })
  })
}
