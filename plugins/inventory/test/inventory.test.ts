// The inventory plugin on the real kernel, with the catalog it checks SKUs against.
import t from 'tap'
import { lintErp, startErpKernel } from '../../support/kernel.js'
import { DB_KINDS } from '../../../core/test/helpers/test-kernel.js'

// One kernel per database, shared by every test of the file.
for (const kind of DB_KINDS)
  t.test(`on ${kind}`, async (t) => {
    const dev = await startErpKernel(['catalog', 'inventory'], {}, kind)
    t.teardown(() => dev.close())
    const r = (method: string, path: string, body?: unknown) =>
      dev.request(method, path, body === undefined ? {} : { body }) as Promise<{ status: number; body: any }>
    const I = '/v1/x/inventory'
    const act = (name: string, input: unknown) =>
      dev.invoke('@trellis/inventory', 'action', name, input) as Promise<any>
    const stockOf = async (sku: string) => {
      const res = await r('GET', `${I}/stock/${sku}`)
      return Object.fromEntries(res.body.warehouses.map((w: any) => [w.warehouse, [w.onHand, w.reserved]]))
    }
    const lows = async () =>
      (await dev.events('@trellis/inventory')).filter((e) => e.type === 'inventory.stock.low').map((e) => e.data as any)

    await r('POST', '/v1/x/catalog/import/categories', { csv: 'code,name\n1,Beverages\n' })
    await r('POST', '/v1/x/catalog/import/suppliers', { csv: 'code,name\n1,Exotic Liquids\n' })
    await r('POST', '/v1/x/catalog/import/products', {
      csv: 'sku,name,category,supplier\nTEA,Tea,1,1\nALE,Ale,1,1\nMATE,Mate,1,1\n',
    })

    t.test('the manifest passes the lint', async (t) => {
      t.same((await lintErp('inventory')).errors, [])
    })

    t.test('bad stock rows answer 422 row by row and write nothing', async (t) => {
      const res = await r('POST', `${I}/stock/import`, {
        rows: [
          { sku: 'TEA', onHand: 5 },
          { sku: 'GHOST', onHand: 1 },
          { sku: 'TEA', warehouse: 'MAIN', onHand: 2 },
        ],
      })
      t.equal(res.status, 422)
      t.equal(res.body.code, 'INV_ERR_INVALID_ROWS')
      t.same(
        res.body.errors.map((e: any) => [e.row, e.code]),
        [
          [2, 'unknown_product'],
          [3, 'duplicate'],
        ],
      )
      t.equal(
        (await r('POST', `${I}/stock/import`, { rows: [{ sku: 'TEA', onHand: -5 }] })).status,
        400,
        'negative stock',
      )
      t.same(await dev.records('@trellis/inventory', 'stock'), [])
      t.equal((await r('GET', `${I}/stock/TEA`)).body.code, 'INV_ERR_NO_STOCK_RECORD')
    })

    t.test('reservations: spread over warehouses, all lines or none, released or issued once', async (t) => {
      const imported = await r('POST', `${I}/stock/import`, {
        rows: [
          { sku: 'TEA', warehouse: 'EAST', onHand: 10 },
          { sku: 'TEA', warehouse: 'A-MAIN', onHand: 5 },
          { sku: 'ALE', onHand: 20, reorderPoint: 10 },
          { sku: 'MATE', onHand: 3, reorderPoint: 5 },
        ],
      })
      t.same(imported.body, { rows: 4, created: 4, updated: 0 })
      t.same(
        (await lows()).map((x) => [x.sku, x.available, x.reorderPoint]),
        [['MATE', 3, 5]],
        'stock that starts at or below its reorder point is announced',
      )

      const ok = await act('reserve', { order: 'O-1', lines: [{ sku: 'TEA', quantity: 12 }] })
      t.equal(ok.ok, true)
      t.same(ok.reservation.lines, [
        { sku: 'TEA', warehouse: 'A-MAIN', quantity: 5 },
        { sku: 'TEA', warehouse: 'EAST', quantity: 7 },
      ])
      t.same(await stockOf('TEA'), { 'A-MAIN': [5, 5], EAST: [10, 7] })
      t.equal(
        (await act('reserve', { order: 'O-1', lines: [{ sku: 'TEA', quantity: 12 }] })).ok,
        true,
        'reserving the same order again changes nothing',
      )
      t.same(await stockOf('TEA'), { 'A-MAIN': [5, 5], EAST: [10, 7] })

      const short = await act('reserve', {
        order: 'O-2',
        lines: [
          { sku: 'ALE', quantity: 1 },
          { sku: 'TEA', quantity: 4 },
          { sku: 'MATE', quantity: 9 },
        ],
      })
      t.same(short, {
        ok: false,
        short: [
          { sku: 'TEA', requested: 4, available: 3 },
          { sku: 'MATE', requested: 9, available: 3 },
        ],
      })
      t.same(await stockOf('ALE'), { MAIN: [20, 0] }, 'nothing reserved for a short order')

      t.same(await act('release', { order: 'O-1' }), { released: true })
      t.same(await stockOf('TEA'), { 'A-MAIN': [5, 0], EAST: [10, 0] })
      t.same(await act('release', { order: 'O-1' }), { released: false, status: 'released' })
      t.equal((await act('issue', { order: 'O-1' })).issued, false, 'a released reservation cannot be shipped')

      await act('reserve', { order: 'O-3', lines: [{ sku: 'TEA', quantity: 6 }] })
      t.equal((await act('issue', { order: 'O-3' })).issued, true)
      t.same(await stockOf('TEA'), { 'A-MAIN': [0, 0], EAST: [9, 0] }, 'issued stock leaves the shelves')
      t.same(await act('release', { order: 'O-3' }), { released: false, status: 'issued' })
      t.equal((await r('GET', `${I}/reservations/O-3`)).body.status, 'issued')
      t.equal((await r('GET', `${I}/reservations/NONE`)).status, 404)
    })

    t.test('inventory.stock.low when available stock falls to its reorder point, once per crossing', async (t) => {
      const before = (await lows()).length
      await act('reserve', { order: 'L-1', lines: [{ sku: 'ALE', quantity: 9 }] })
      t.equal((await lows()).length, before, '11 available, above 10')
      await act('reserve', { order: 'L-2', lines: [{ sku: 'ALE', quantity: 1 }] })
      const [low] = (await lows()).slice(before)
      t.same(low, { sku: 'ALE', warehouse: 'MAIN', onHand: 20, reserved: 10, available: 10, reorderPoint: 10 })
      await act('reserve', { order: 'L-3', lines: [{ sku: 'ALE', quantity: 1 }] })
      t.equal((await lows()).length, before + 1, 'not again while it stays low')
      const received = await r('POST', `${I}/stock/adjust`, { sku: 'ALE', delta: 30, reason: 'receipt' })
      t.match(received.body, { onHand: 50, reserved: 11 })
      await act('reserve', { order: 'L-4', lines: [{ sku: 'ALE', quantity: 30 }] })
      t.equal((await lows()).length, before + 2, 'crossing again after a receipt is announced again')
    })

    t.test('adjustments cannot take stock that is reserved', async (t) => {
      const res = await r('POST', `${I}/stock/adjust`, { sku: 'ALE', delta: -10, reason: 'breakage' })
      t.equal(res.status, 409)
      t.equal(res.body.code, 'INV_ERR_INSUFFICIENT_STOCK')
      t.same(await stockOf('ALE'), { MAIN: [50, 41] })
      t.equal(
        (await r('POST', `${I}/stock/adjust`, { sku: 'GHOST', delta: 1, reason: 'x' })).body.code,
        'INV_ERR_UNKNOWN_PRODUCT',
      )
      const lower = await r('POST', `${I}/stock/import`, { rows: [{ sku: 'ALE', onHand: 40 }] })
      t.equal(lower.status, 422, 'nor can a stock count below what is reserved')
      t.same(
        lower.body.errors.map((e: any) => e.code),
        ['below_reserved'],
      )
    })
  })
