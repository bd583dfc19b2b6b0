// The returns plugin on the real kernel with the ERP plugins, through the public API: part of an
// invoiced order comes back → the returns manager approves it in a task → restock → a credit note
// at the order's prices and discounts, to the cent; the sales report nets it out.
import t from 'tap'
import { lintErp, startErpKernel } from '../../support/kernel.js'
import { asToken, eventually, person } from '../../support/people.js'
import { DB_KINDS } from '../../../core/test/helpers/test-kernel.js'

const today = () => new Date().toISOString().slice(0, 10)

for (const kind of DB_KINDS)
  t.test(`on ${kind}`, async (t) => {
    const dev = await startErpKernel(
      ['catalog', 'pricing', 'inventory', 'orders', 'returns'],
      { returns: { autoApproveValue: '20.00' } },
      kind,
    )
    t.teardown(() => dev.close())
    const r = asToken(dev)
    async function ok(method: string, path: string, body?: unknown) {
      const res = await r(method, path, body)
      if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`)
      return res.body
    }
    const R = '/v1/x/returns'
    const O = '/v1/x/orders'
    const onHand = async (sku: string) => (await ok('GET', `/v1/x/inventory/stock/${sku}`)).onHand as number
    /** An order placed, confirmed, shipped and invoiced on `date`. */
    async function invoiced(number: string, date: string, lines: unknown[]) {
      await ok('POST', `${O}/orders`, { number, customer: 'ALFKI', lines })
      await ok('POST', `${O}/orders/${number}/confirm`)
      await ok('POST', `${O}/orders/${number}/ship`, { date })
      return ok('POST', `${O}/orders/${number}/invoice`, { date })
    }

    await ok('POST', '/v1/x/catalog/import/categories', { csv: 'code,name\nBEV,Beverages\n' })
    await ok('POST', '/v1/x/catalog/import/suppliers', { csv: 'code,name\nEXO,Exotic Liquids\n' })
    await ok('POST', '/v1/x/catalog/import/products', {
      csv: 'sku,name,category,supplier\nA,Tea,BEV,EXO\nC,Coffee,BEV,EXO\n',
    })
    await ok('POST', '/v1/x/pricing/prices/import', {
      rules: [
        { kind: 'list', sku: 'A', price: '9.80' },
        { kind: 'list', sku: 'C', price: '7.70' },
      ],
    })
    await ok('POST', '/v1/x/inventory/stock/import', {
      rows: [
        { sku: 'A', onHand: 100 },
        { sku: 'C', onHand: 100 },
      ],
    })
    await ok('POST', `${O}/customers`, { code: 'ALFKI', name: 'Alfreds Futterkiste' })
    const order = await invoiced('SO-R1', today(), [
      { sku: 'A', quantity: 10, discount: 0.05 },
      { sku: 'C', quantity: 25, discount: '0.07' },
    ])
    t.equal(order.total, '272.13', '10 × 9.80 × 0.95 + 25 × 7.70 × 0.93 = 93.10 + 179.025 = 272.125')
    const clerk = await person(dev, 'returns_clerk', ['returns.read', 'returns.write', 'returns.receive'])
    const manager = await person(dev, 'returns_manager', ['returns.read', 'returns.approve'])

    t.test('the manifest passes the lint', async (t) => {
      t.same((await lintErp('returns')).errors, [])
    })

    t.test('part of an invoiced order comes back: approved in a task, restocked, credited to the cent', async (t) => {
      const asked = await clerk('POST', `${R}/rmas`, {
        number: 'RMA-1',
        order: 'SO-R1',
        lines: [
          { line: 1, quantity: 2, reason: 'damaged' },
          { line: 2, quantity: 3, reason: 'wrong_item' },
        ],
      })
      t.equal(asked.status, 201)
      t.match(asked.body, { status: 'pending_approval', value: '40.10', valueExact: '40.103' }, 'over the 20.00 rule')
      t.equal((await clerk('POST', `${R}/rmas/RMA-1/decision`, { decision: 'approve', reason: 'x' })).status, 403)
      const task = await eventually(
        async () =>
          (await manager('GET', '/v1/tasks')).body.items.find(
            (x: any) => x.instanceId === asked.body.approvalWorkflow.instanceId,
          ),
        'the approval task',
      )
      t.match(task, { role: 'returns_manager', data: { rma: 'RMA-1', order: 'SO-R1', value: '40.10' } })
      await manager('POST', `/v1/tasks/${task.id}/complete`, { outcome: 'approve', data: { reason: 'carrier damage' } })
      await eventually(async () => (await ok('GET', `${R}/rmas/RMA-1`)).status === 'approved', 'the approval')

      const a = await onHand('A')
      const c = await onHand('C')
      const received = await clerk('POST', `${R}/rmas/RMA-1/receive`, {
        lines: [
          { line: 1, quantity: 2, outcome: 'restock' },
          { line: 2, quantity: 3, outcome: 'return_to_supplier' },
        ],
      })
      t.equal(received.status, 200)
      t.match(received.body, { status: 'credited', creditNote: 'CN-RMA-1' })
      t.equal(await onHand('A'), a + 2, 'restocked goods are back in stock')
      t.equal(await onHand('C'), c, 'goods going back to the supplier are not')
      const note = await ok('GET', `${R}/credit-notes/CN-RMA-1`)
      // By hand: 2 × 9.80 × (1 − 0.05) = 18.62; 3 × 7.70 × (1 − 0.07) = 21.483; 40.103 → 40.10.
      t.match(note, { order: 'SO-R1', total: '40.10', totalExact: '40.103' })
      t.same(
        note.lines.map((l: any) => [l.sku, l.quantity, l.unitPrice, l.discount, l.amountExact]),
        [
          ['A', 2, '9.80', '0.05', '18.62'],
          ['C', 3, '7.70', '0.07', '21.483'],
        ],
      )
      const sales = await ok('GET', `${O}/reports/sales?status=invoiced`)
      t.match(sales, { total: '272.13', gross: '272.13', returned: '40.10', net: '232.02', netExact: '232.022' })
      const byProduct = await ok('GET', `${O}/reports/sales?status=invoiced&groupBy=product`)
      t.match(
        byProduct.groups.find((g: any) => g.key === 'A'),
        { gross: '93.10', returned: '18.62', net: '74.48' },
      )
      t.same(
        (await dev.events('@trellis/returns')).map((e) => e.type),
        [
          'returns.rma.requested',
          'returns.rma.approved',
          'returns.credit.issued',
          'returns.rma.credited',
          'returns.rma.received',
        ],
      )
    })

    t.test('never more back than shipped less returned; small recent returns are approved by the rule', async (t) => {
      const over = await clerk('POST', `${R}/rmas`, {
        order: 'SO-R1',
        lines: [{ line: 1, quantity: 9, reason: 'other' }],
      })
      t.equal(over.status, 409)
      t.equal(over.body.code, 'RET_ERR_EXCEEDS_SHIPPED', '10 shipped, 2 returned: 8 at most')
      const small = await clerk('POST', `${R}/rmas`, {
        number: 'RMA-2',
        order: 'SO-R1',
        lines: [{ line: 1, quantity: 1, reason: 'defective' }],
      })
      t.match(small.body, { status: 'approved', value: '9.31', approval: { by: 'rule' } })
      const held = await clerk('POST', `${R}/rmas`, {
        order: 'SO-R1',
        lines: [{ line: 1, quantity: 8, reason: 'other' }],
      })
      t.equal(held.body.code, 'RET_ERR_EXCEEDS_SHIPPED', 'an approved authorisation holds its quantity')

      await invoiced('SO-R2', '2020-01-15', [{ sku: 'A', quantity: 2 }])
      const old = await clerk('POST', `${R}/rmas`, {
        number: 'RMA-3',
        order: 'SO-R2',
        lines: [{ line: 1, quantity: 1, reason: 'other' }],
      })
      t.equal(old.body.status, 'pending_approval', 'small, but invoiced long ago')
      const rejected = await manager('POST', `${R}/rmas/RMA-3/decision`, {
        decision: 'reject',
        reason: 'out of warranty',
      })
      t.equal(rejected.body.status, 'rejected')

      await ok('POST', `${O}/orders`, { number: 'SO-R3', customer: 'ALFKI', lines: [{ sku: 'A', quantity: 1 }] })
      const open = await clerk('POST', `${R}/rmas`, {
        order: 'SO-R3',
        lines: [{ line: 1, quantity: 1, reason: 'other' }],
      })
      t.equal(open.body.code, 'RET_ERR_NOT_INVOICED')
      t.equal(
        (await clerk('POST', `${R}/rmas`, { order: 'NOPE', lines: [{ line: 1, quantity: 1, reason: 'other' }] }))
          .status,
        404,
      )
      t.equal(
        (await manager('POST', `${R}/rmas`, { order: 'SO-R1', lines: [{ line: 1, quantity: 1, reason: 'other' }] }))
          .status,
        403,
      )

      const boss = await person(dev, 'returns_lead', ['returns.read', 'returns.write', 'returns.approve'])
      await boss('POST', `${R}/rmas`, {
        number: 'RMA-4',
        order: 'SO-R1',
        lines: [{ line: 2, quantity: 5, reason: 'other' }],
      })
      const own = await boss('POST', `${R}/rmas/RMA-4/decision`, { decision: 'approve', reason: 'mine' })
      t.equal(own.status, 403)
      t.equal(own.body.code, 'RET_ERR_SELF_APPROVAL')
    })

    t.test(
      'one line split at inspection: only the restocked units go back, every received unit is credited',
      async (t) => {
        await clerk('POST', `${R}/rmas`, {
          number: 'RMA-5',
          order: 'SO-R1',
          lines: [{ line: 2, quantity: 6, reason: 'damaged' }],
        })
        t.equal((await manager('POST', `${R}/rmas/RMA-5/decision`, { decision: 'approve', reason: 'ok' })).status, 200)
        const c = await onHand('C')
        const receive = (lines: unknown[]) => clerk('POST', `${R}/rmas/RMA-5/receive`, { lines })
        const tooMany = await receive([
          { line: 2, quantity: 4, outcome: 'restock' },
          { line: 2, quantity: 3, outcome: 'scrap' },
        ])
        t.equal(tooMany.body.code, 'RET_ERR_INVALID_LINES', '4 + 3 is more than the 6 authorised')
        const twice = await receive([
          { line: 2, quantity: 1, outcome: 'scrap' },
          { line: 2, quantity: 1, outcome: 'scrap' },
        ])
        t.equal(twice.body.code, 'RET_ERR_INVALID_LINES', 'one outcome, one quantity')
        t.equal(await onHand('C'), c, 'a refused receipt restocks nothing')
        t.equal((await ok('GET', `${R}/rmas/RMA-5`)).status, 'approved', 'and leaves the authorisation open')

        const done = await receive([
          { line: 2, quantity: 3, outcome: 'restock' },
          { line: 2, quantity: 2, outcome: 'scrap' },
          { line: 2, quantity: 1, outcome: 'return_to_supplier' },
        ])
        t.equal(done.status, 200)
        t.match(done.body.lines[0], {
          line: 2,
          sku: 'C',
          received: 6,
          inspection: [
            { outcome: 'restock', quantity: 3 },
            { outcome: 'scrap', quantity: 2 },
            { outcome: 'return_to_supplier', quantity: 1 },
          ],
        })
        t.notOk('outcome' in done.body.lines[0], 'no single outcome for a split line')
        t.equal(await onHand('C'), c + 3, 'exactly the restocked units are back in stock')
        // By hand: 6 × 7.70 × (1 − 0.07) = 42.966 → 42.97.
        t.match(await ok('GET', `${R}/credit-notes/CN-RMA-5`), { total: '42.97', totalExact: '42.966' })
        const received = ((await dev.events('@trellis/returns')) as Array<{ type: string; data: any }>).filter(
          (e) => e.type === 'returns.rma.received' && e.data.rma === 'RMA-5',
        )
        t.same(
          received.map((e) => e.data.lines[0].inspection),
          [done.body.lines[0].inspection],
          'the event carries the split',
        )
      },
    )
  })
