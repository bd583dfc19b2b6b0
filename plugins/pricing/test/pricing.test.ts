// The pricing plugin on the real kernel, with the catalog it asks about products.
import t from 'tap'
import { lintErp, startErpKernel } from '../../support/kernel.js'
import { DB_KINDS } from '../../../core/test/helpers/test-kernel.js'

// One kernel per database, shared by every test of the file.
for (const kind of DB_KINDS)
  t.test(`on ${kind}`, async (t) => {
    const dev = await startErpKernel(['catalog', 'pricing'], {}, kind)
    t.teardown(() => dev.close())
    const r = (method: string, path: string, body?: unknown) =>
      dev.request(method, path, body === undefined ? {} : { body }) as Promise<{ status: number; body: any }>
    const P = '/v1/x/pricing'
    const quote = (input: unknown) => dev.invoke('@trellis/pricing', 'action', 'quote', input) as Promise<any>

    await r('POST', '/v1/x/catalog/import/categories', { csv: 'code,name\n1,Beverages\n' })
    await r('POST', '/v1/x/catalog/import/suppliers', { csv: 'code,name\n1,Exotic Liquids\n' })
    await r('POST', '/v1/x/catalog/import/products', {
      csv: 'sku,name,category,supplier\nTEA,Tea,1,1\nALE,Ale,1,1\nMATE,Mate,1,1\nSODA,Soda,1,1\n',
    })

    t.test('the manifest passes the lint', async (t) => {
      t.same((await lintErp('pricing')).errors, [])
    })

    t.test('bad price rules answer 422 row by row and write nothing', async (t) => {
      const res = await r('POST', `${P}/prices/import`, {
        rules: [
          { kind: 'list', sku: 'TEA', price: '9.80' },
          { kind: 'list', sku: 'TEA', price: '9.805' },
          { kind: 'group', sku: 'TEA', discount: '0.1' },
          { kind: 'customer', sku: 'TEA', customer: 'ALFKI', price: '1', discount: '0.1' },
          { kind: 'list', sku: 'TEA', price: '1', validFrom: '2021-02-01', validTo: '2021-01-01' },
          { kind: 'list', sku: 'TEA', price: -1 },
          { kind: 'list', sku: 'TEA', price: '1', minQuantity: 0 },
          { kind: 'bulk', sku: 'TEA', price: '1' },
        ],
      })
      t.equal(res.status, 422)
      t.equal(res.body.code, 'PRC_ERR_INVALID_RULES')
      t.same(
        res.body.errors.map((e: any) => [e.row, e.field, e.code]),
        [
          [2, 'price', 'invalid'],
          [3, 'group', 'required'],
          [4, 'price', 'invalid'],
          [5, 'validTo', 'invalid'],
          [6, 'price', 'invalid'],
          [7, 'minQuantity', 'invalid'],
          [8, 'kind', 'invalid'],
        ],
      )
      const unknown = await r('POST', `${P}/prices/import`, {
        rules: [
          { kind: 'list', sku: 'TEA', price: '9.80' },
          { kind: 'list', sku: 'GHOST', price: '1' },
        ],
      })
      t.same(
        unknown.body.errors.map((e: any) => [e.row, e.code]),
        [[2, 'unknown_product']],
      )
      t.same(await dev.records('@trellis/pricing', 'prices'), [], 'nothing was written')
    })

    t.test('rules: list prices over time, quantity breaks, group price lists, customer prices', async (t) => {
      const res = await r('POST', `${P}/prices/import`, {
        rules: [
          { kind: 'list', sku: 'TEA', price: '9.80', validTo: '2020-12-31' },
          { kind: 'list', sku: 'TEA', price: 11.2, validFrom: '2021-01-01' },
          { kind: 'list', sku: 'ALE', price: '7.7' },
          { kind: 'list', sku: 'ALE', price: '7.00', minQuantity: 50 },
          { kind: 'group', sku: 'ALE', group: 'wholesale', discount: '0.10' },
          {
            kind: 'customer',
            sku: 'ALE',
            customer: 'ALFKI',
            price: '6.50',
            validFrom: '2021-01-01',
            validTo: '2021-12-31',
          },
          { kind: 'list', sku: 'MATE', price: '35.10' },
          { kind: 'list', sku: 'SODA', price: '2.00', validFrom: '2022-01-01' },
        ],
      })
      t.equal(res.status, 201)
      t.equal(res.body.created, 8)
      const unit = async (input: any) => {
        const q = await quote(input)
        t.same(q.errors, [])
        return [q.lines[0].unitPrice, q.lines[0].priceSource.kind, q.lines[0].priceSource.minQuantity]
      }
      t.same(
        await unit({ date: '2020-06-01', lines: [{ sku: 'TEA', quantity: 1 }] }),
        ['9.80', 'list', 1],
        'the price valid that day',
      )
      t.same(await unit({ date: '2021-01-01', lines: [{ sku: 'TEA', quantity: 1 }] }), ['11.20', 'list', 1])
      t.same(await unit({ date: '2021-05-01', lines: [{ sku: 'ALE', quantity: 49 }] }), ['7.70', 'list', 1])
      t.same(
        await unit({ date: '2021-05-01', lines: [{ sku: 'ALE', quantity: 50 }] }),
        ['7.00', 'list', 50],
        'a quantity break',
      )
      t.same(
        await unit({ date: '2021-05-01', group: 'wholesale', lines: [{ sku: 'ALE', quantity: 50 }] }),
        ['6.93', 'group', 1],
        '10 % off list beats the break',
      )
      t.same(
        await unit({ date: '2021-05-01', customer: 'ALFKI', group: 'wholesale', lines: [{ sku: 'ALE', quantity: 1 }] }),
        ['6.50', 'customer', 1],
        'the contract price',
      )
      t.same(
        await unit({ date: '2022-05-01', customer: 'ALFKI', lines: [{ sku: 'ALE', quantity: 1 }] }),
        ['7.70', 'list', 1],
        'the contract ended',
      )
      t.same(
        await unit({ date: '2021-05-01', customer: 'OTHER', lines: [{ sku: 'ALE', quantity: 1 }] }),
        ['7.70', 'list', 1],
        "another customer's contract does not apply",
      )

      const none = await quote({
        date: '2021-05-01',
        lines: [
          { sku: 'SODA', quantity: 1 },
          { sku: 'NOPE', quantity: 1 },
        ],
      })
      t.same(
        none.errors.map((e: any) => [e.line, e.code]),
        [
          [1, 'no_price'],
          [2, 'unknown_product'],
        ],
      )
      t.same(none.lines, [])
      const route = await r('POST', `${P}/quote`, { date: '2021-05-01', lines: [{ sku: 'SODA', quantity: 1 }] })
      t.equal(route.status, 422)
      t.equal(route.body.code, 'PRC_ERR_QUOTE_LINES')
      t.equal((await r('POST', `${P}/quote`, { lines: [{ sku: 'ALE', quantity: -1 }] })).status, 400)
    })

    t.test('amounts are exact and the total is rounded once, to the cent', async (t) => {
      // 25 × 7.70 × 0.85 = 163.625 twice: rounding each line would make 327.26; the exact sum is 327.25.
      const q = await quote({
        lines: [
          { sku: 'ALE', quantity: 25, discount: 0.1 },
          { sku: 'ALE', quantity: 25, discount: '0.10' },
          { sku: 'TEA', quantity: 3, discount: '0.05' },
        ],
      })
      t.same(
        q.lines.map((l: any) => [l.gross, l.discountAmount, l.net]),
        [
          ['192.50', '19.25', '173.25'],
          ['192.50', '19.25', '173.25'],
          ['33.60', '1.68', '31.92'],
        ],
      )
      t.same([q.subtotal, q.discountTotal, q.total], ['418.60', '40.18', '378.42'])
      const half = await r('POST', `${P}/prices`, { kind: 'customer', sku: 'ALE', customer: 'HALF', price: '7.70' })
      t.equal(half.status, 201)
      await r('PATCH', `/v1/installations/${await installationId()}`, { settings: { approvalThreshold: 0.15 } })
      const q2 = await quote({
        customer: 'HALF',
        lines: [
          { sku: 'ALE', quantity: 25, discount: 0.15 },
          { sku: 'ALE', quantity: 25, discount: 0.15 },
        ],
      })
      t.same(
        q2.lines.map((l: any) => l.net),
        ['163.625', '163.625'],
      )
      t.same([q2.total, q2.totalExact], ['327.25', '327.25'])
      const q3 = await quote({ lines: [{ sku: 'ALE', quantity: 1, discount: 0.15 }] })
      t.same([q3.lines[0].net, q3.total, q3.totalExact], ['6.545', '6.55', '6.545'], 'half a cent rounds up')
      await r('PATCH', `/v1/installations/${await installationId()}`, { settings: { approvalThreshold: null } })
    })

    async function installationId(): Promise<string> {
      const list = (await r('GET', '/v1/installations')).body
      return (list.items ?? list).find((i: any) => i.plugin === '@trellis/pricing').id
    }

    t.test('a discount over the threshold is marked for approval, with the reason', async (t) => {
      const within = await quote({ lines: [{ sku: 'MATE', quantity: 2, discount: '0.10' }] })
      t.same(
        [within.needsApproval, within.approvalReasons, within.approvalThreshold],
        [false, [], '0.10'],
        'the default threshold is 10 % and 10 % is allowed',
      )
      const over = await quote({
        lines: [
          { sku: 'MATE', quantity: 2, discount: '0.1001' },
          { sku: 'TEA', quantity: 1, discount: 0.25 },
        ],
      })
      t.equal(over.needsApproval, true)
      t.same(
        over.lines.map((l: any) => l.needsApproval),
        [true, true],
      )
      t.same(over.approvalReasons, [
        'line 1 (MATE): discount 10.01% exceeds the 10% approval threshold',
        'line 2 (TEA): discount 25% exceeds the 10% approval threshold',
      ])
      t.equal(
        over.lines[1].net,
        '8.40',
        'the discount is priced (so the approver sees it) but flagged, never silently applied',
      )

      const patched = await r('PATCH', `/v1/installations/${await installationId()}`, {
        settings: { approvalThreshold: 0.2 },
      })
      t.equal(patched.status, 200)
      const q = await quote({
        lines: [
          { sku: 'TEA', quantity: 1, discount: 0.2 },
          { sku: 'TEA', quantity: 1, discount: 0.25 },
        ],
      })
      t.same(
        q.lines.map((l: any) => l.needsApproval),
        [false, true],
      )
      t.match(q.approvalReasons[0], /25% exceeds the 20% approval threshold/)
      t.equal(
        (await r('PATCH', `/v1/installations/${await installationId()}`, { settings: { approvalThreshold: 2 } }))
          .status,
        400,
        'the threshold is a fraction',
      )
    })
  })
