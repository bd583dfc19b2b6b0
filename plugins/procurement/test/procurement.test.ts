// The procurement plugin on the real kernel with catalog and inventory, through the public API:
// low stock → a suggested draft → a buyer submits it → the purchasing manager approves it in a
// task → sent → a partial receipt puts exactly that much into stock → invoices matched and not.
import t from 'tap'
import { lintErp, startErpKernel } from '../../support/kernel.js'
import { asToken, eventually, person } from '../../support/people.js'
import { DB_KINDS } from '../../../core/test/helpers/test-kernel.js'

for (const kind of DB_KINDS)
  t.test(`on ${kind}`, async (t) => {
    const dev = await startErpKernel(
      ['catalog', 'pricing', 'inventory', 'orders', 'procurement', 'insights'],
      { procurement: { approvalThreshold: '100.00' } },
      kind,
    )
    t.teardown(() => dev.close())
    const r = asToken(dev)
    async function ok(method: string, path: string, body?: unknown) {
      const res = await r(method, path, body)
      if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`)
      return res.body
    }
    const P = '/v1/x/procurement'
    const onHand = async (sku: string) => (await ok('GET', `/v1/x/inventory/stock/${sku}`)).onHand as number
    const day = (ago: number) => new Date(Date.now() - ago * 86_400_000).toISOString().slice(0, 10)
    /** Eight past weeks of 14 units of `sku` a week, one order each (placed: they reserve stock). */
    const sellWeekly = async (sku: string) => {
      for (let w = 1; w <= 8; w++)
        await ok('POST', '/v1/x/orders/orders', {
          number: `SO-${sku}${w}`,
          customer: 'ALFKI',
          orderDate: day(7 * w),
          lines: [{ sku, quantity: 14 }],
        })
    }

    await ok('POST', '/v1/x/catalog/import/categories', { csv: 'code,name\nBEV,Beverages\n' })
    await ok('POST', '/v1/x/catalog/import/suppliers', { csv: 'code,name\nEXO,Exotic Liquids\nALT,Alternative\n' })
    await ok('POST', '/v1/x/catalog/import/products', {
      csv: 'sku,name,category,supplier\nA,Tea,BEV,EXO\nB,Ale,BEV,EXO\nF,Flour,BEV,EXO\n',
    })
    await ok('POST', '/v1/x/inventory/stock/import', {
      rows: [
        { sku: 'A', onHand: 50, reorderPoint: 20 },
        { sku: 'B', onHand: 100, reorderPoint: 10 },
        { sku: 'F', onHand: 150, reorderPoint: 20 },
      ],
    })
    await ok('POST', `${P}/suppliers/import`, {
      rows: [
        { code: 'EXO', name: 'Exotic Liquids', country: 'UK', leadTimeDays: 5 },
        { code: 'ALT', name: 'Alternative Supplies', leadTimeDays: 10 },
        { code: 'NWD', name: 'Northwind Mills', leadTimeDays: 10 },
      ],
    })
    await ok('POST', `${P}/prices/import`, {
      rows: [
        { supplier: 'EXO', sku: 'A', cost: '4.50' },
        { supplier: 'ALT', sku: 'A', cost: '4.75' },
        { supplier: 'EXO', sku: 'B', cost: '2.25' },
        { supplier: 'NWD', sku: 'F', cost: '1.20' },
      ],
    })
    const buyer = await person(dev, 'buyer', ['procurement.read', 'procurement.write', 'procurement.receive'])
    const manager = await person(dev, 'purchasing_manager', ['procurement.read', 'procurement.approve'])
    const payables = await person(dev, 'accounts_payable', ['procurement.read', 'procurement.invoices'])

    t.test('the manifest asks only for what procurement uses, and passes the lint', async (t) => {
      t.same((await lintErp('procurement')).errors, [])
      const bad = await r('POST', `${P}/prices/import`, { rows: [{ supplier: 'NOPE', sku: 'ZZ', cost: '1' }] })
      t.equal(bad.status, 422)
      t.same(
        bad.body.errors.map((e: any) => e.code),
        ['unknown_supplier', 'unknown_product'],
      )
      t.equal((await ok('GET', `${P}/suppliers/EXO`)).prices.length, 2)
    })

    t.test('low stock → suggestion → approved in a task → partial receipt → invoices', async (t) => {
      await ok('POST', '/v1/x/inventory/stock/adjust', { sku: 'A', delta: -35, reason: 'breakage' })
      t.equal(await onHand('A'), 15)
      const draft = await eventually(
        async () => (await ok('GET', `${P}/purchase-orders?supplier=EXO&status=draft`)).items[0],
        'the suggested draft',
      )
      t.match(draft, { source: 'suggestion', supplier: 'EXO', status: 'draft' }, 'the cheapest supplier')
      t.match(draft.lines, [{ sku: 'A', quantity: 25, unitCost: '4.50', suggestion: { rule: 'reorder point' } }])
      t.equal(draft.total, '112.50', '20 − 15 short of the reorder point, plus a lot of 20: 25 × 4.50')

      // The buyer reviews the suggestion and submits it; 135.00 is over the 100.00 threshold.
      const revised = await buyer('PATCH', `${P}/purchase-orders/${draft.number}`, {
        lines: [{ sku: 'A', quantity: 30 }],
      })
      t.equal(revised.body.total, '135.00')
      const submitted = await buyer('POST', `${P}/purchase-orders/${draft.number}/submit`)
      t.equal(submitted.body.status, 'pending_approval')
      const forbidden = await buyer('POST', `${P}/purchase-orders/${draft.number}/decision`, {
        decision: 'approve',
        reason: 'mine',
      })
      t.equal(forbidden.status, 403)
      t.equal(forbidden.body.code, 'AUTH_ERR_FORBIDDEN', 'a buyer cannot approve')
      t.equal((await buyer('POST', `${P}/purchase-orders/${draft.number}/send`)).status, 409, 'nor send it unapproved')
      const instanceId = submitted.body.approvalWorkflow.instanceId
      const task = await eventually(
        async () => (await manager('GET', '/v1/tasks')).body.items.find((x: any) => x.instanceId === instanceId),
        'the approval task',
      )
      t.match(task, {
        role: 'purchasing_manager',
        escalateTo: 'purchasing_director',
        outcomes: ['approve', 'reject'],
        data: { po: draft.number, total: '135.00' },
      })
      const sla = Date.parse(task.dueAt) - Date.now()
      t.ok(sla > 23 * 3_600_000 && sla <= 24 * 3_600_000, 'due within the 24 h SLA, then escalated')
      t.equal(
        (
          await manager('POST', `/v1/tasks/${task.id}/complete`, {
            outcome: 'approve',
            data: { reason: 'stock-out risk' },
          })
        ).status,
        200,
      )
      const approved = await eventually(async () => {
        const po = await ok('GET', `${P}/purchase-orders/${draft.number}`)
        return po.status === 'approved' && po
      }, 'the approval')
      t.match(approved.approval, { by: /^user:/, reason: 'stock-out risk', workflow: 'poApproval' })
      t.equal((await buyer('POST', `${P}/purchase-orders/${draft.number}/send`)).body.status, 'sent')

      // 12 of 30 arrive: stock goes up by exactly 12.
      const receipt = await buyer('POST', `${P}/purchase-orders/${draft.number}/receipts`, {
        lines: [{ line: 1, quantity: 12 }],
      })
      t.equal(receipt.status, 201)
      t.equal(receipt.body.purchaseOrder.status, 'partly_received')
      t.equal(await onHand('A'), 27)
      const over = await buyer('POST', `${P}/purchase-orders/${draft.number}/receipts`, {
        lines: [{ line: 1, quantity: 19 }],
      })
      t.equal(over.status, 409)
      t.equal(over.body.code, 'PUR_ERR_OVER_DELIVERY', '18 are outstanding: 19 is an over-delivery')
      t.equal(await onHand('A'), 27, 'a refused delivery adds nothing')

      const matched = await payables('POST', `${P}/invoices`, {
        number: 'SI-1',
        supplier: 'EXO',
        po: draft.number,
        lines: [{ line: 1, quantity: 12, unitCost: '4.50' }],
      })
      t.match(matched.body, { status: 'matched', payable: true, total: '54.00', mismatches: [] })

      await buyer('POST', `${P}/purchase-orders/${draft.number}/receipts`, { lines: [{ line: 1, quantity: 18 }] })
      t.equal(await onHand('A'), 45)
      t.equal((await ok('GET', `${P}/purchase-orders/${draft.number}`)).status, 'received')
      const mismatch = await payables('POST', `${P}/invoices`, {
        number: 'SI-2',
        supplier: 'EXO',
        po: draft.number,
        lines: [{ line: 1, quantity: 20, unitCost: '4.95' }],
      })
      t.match(mismatch.body, { status: 'exception', payable: false })
      t.same(
        mismatch.body.mismatches.map((m: any) => m.kind),
        ['quantity', 'price'],
        '20 invoiced of 18 received and not yet invoiced; 4.95 is 10 % over 4.50',
      )
      t.same(
        (await ok('GET', `${P}/invoices?payable=true`)).items.map((i: any) => i.number),
        ['SI-1'],
        'not payable',
      )
      const apTask = await eventually(
        async () =>
          (await payables('GET', '/v1/tasks')).body.items.find(
            (x: any) => x.instanceId === mismatch.body.exceptionWorkflow.instanceId,
          ),
        'the invoice exception task',
      )
      t.match(apTask, { role: 'accounts_payable', data: { invoice: 'SI-2' } })
      await payables('POST', `/v1/tasks/${apTask.id}/complete`, {
        outcome: 'approve',
        data: { reason: 'credit note promised' },
      })
      await eventually(async () => (await ok('GET', `${P}/invoices/SI-2`)).payable, 'the invoice approval')
      t.equal((await ok('POST', `${P}/purchase-orders/${draft.number}/close`, {})).status, 'closed')

      const types = (await dev.events('@trellis/procurement'))
        .filter((e) => e.subject === draft.number || e.subject.startsWith('SI-'))
        .map((e) => e.type)
      t.same(types, [
        'procurement.po.suggested',
        'procurement.po.revised',
        'procurement.po.submitted',
        'procurement.po.approved',
        'procurement.po.sent',
        'procurement.po.part-received',
        'procurement.receipt.recorded',
        'procurement.invoice.matched',
        'procurement.po.received',
        'procurement.receipt.recorded',
        'procurement.invoice.exception',
        'procurement.invoice.approved',
        'procurement.po.closed',
      ])
    })

    t.test('under the threshold a PO is approved by the rule; whoever raised one cannot approve it', async (t) => {
      const small = await buyer('POST', `${P}/purchase-orders`, {
        number: 'PO-S',
        supplier: 'EXO',
        lines: [{ sku: 'B', quantity: 10 }],
      })
      t.equal(small.body.total, '22.50')
      t.match((await buyer('POST', `${P}/purchase-orders/PO-S/submit`)).body, {
        status: 'approved',
        approval: { by: 'rule' },
      })

      const clerk = await person(dev, 'clerk', ['procurement.read', 'procurement.write', 'procurement.approve'])
      await clerk('POST', `${P}/purchase-orders`, {
        number: 'PO-C',
        supplier: 'EXO',
        lines: [{ sku: 'B', quantity: 100 }],
      })
      t.equal((await clerk('POST', `${P}/purchase-orders/PO-C/submit`)).body.status, 'pending_approval')
      const own = await clerk('POST', `${P}/purchase-orders/PO-C/decision`, { decision: 'approve', reason: 'urgent' })
      t.equal(own.status, 403)
      t.equal(own.body.code, 'PUR_ERR_SELF_APPROVAL')
      t.equal((await ok('GET', `${P}/purchase-orders/PO-C`)).status, 'pending_approval', 'still waiting')
      const rejected = await manager('POST', `${P}/purchase-orders/PO-C/decision`, {
        decision: 'reject',
        reason: 'too many',
      })
      t.equal(rejected.body.status, 'draft', 'a rejection sends it back to draft')
      t.equal(
        (await manager('POST', `${P}/purchase-orders/PO-C/cancel`, {})).status,
        403,
        'a manager does not write orders',
      )
      t.equal(
        (await clerk('POST', `${P}/purchase-orders/PO-C/cancel`, { reason: 'no longer needed' })).body.status,
        'cancelled',
      )
      t.equal(
        (await payables('POST', `${P}/purchase-orders/PO-S/receipts`, { lines: [{ line: 1, quantity: 1 }] })).status,
        403,
      )
      const unsent = await buyer('POST', `${P}/purchase-orders/PO-S/receipts`, { lines: [{ line: 1, quantity: 1 }] })
      t.equal(unsent.body.code, 'PUR_ERR_INVALID_TRANSITION', 'nothing is received before the order is sent')
    })

    t.test('over- and under-delivery are explicit; invoice prices match within the tolerance', async (t) => {
      const inst = (await ok('GET', '/v1/installations')).items.find((i: any) => i.plugin === '@trellis/procurement')
      await ok('PATCH', `/v1/installations/${inst.id}`, { settings: { overDeliveryTolerance: 0.1 } })
      t.teardown(() => ok('PATCH', `/v1/installations/${inst.id}`, { settings: { overDeliveryTolerance: null } }))
      const b = await onHand('B')
      for (const number of ['PO-T', 'PO-U']) {
        await buyer('POST', `${P}/purchase-orders`, { number, supplier: 'EXO', lines: [{ sku: 'B', quantity: 10 }] })
        await buyer('POST', `${P}/purchase-orders/${number}/submit`)
        await buyer('POST', `${P}/purchase-orders/${number}/send`)
      }
      const over = await buyer('POST', `${P}/purchase-orders/PO-T/receipts`, { lines: [{ line: 1, quantity: 11 }] })
      t.equal(over.status, 201, '11 of 10: within the 10 % over-delivery tolerance')
      t.match(over.body.receipt.lines, [{ sku: 'B', quantity: 11, over: 1 }])
      t.match(over.body.purchaseOrder, { status: 'received', lines: [{ received: 11, over: 1 }] })
      const more = await buyer('POST', `${P}/purchase-orders/PO-T/receipts`, { lines: [{ line: 1, quantity: 1 }] })
      t.equal(more.status, 409, 'the order is received: nothing more comes in')
      const short = await buyer('POST', `${P}/purchase-orders/PO-U/receipts`, { lines: [{ line: 1, quantity: 4 }] })
      t.equal(short.body.purchaseOrder.status, 'partly_received')
      const closed = await buyer('POST', `${P}/purchase-orders/PO-U/close`, { reason: 'supplier out of stock' })
      t.match(closed.body, { status: 'closed', shortClosed: [{ line: 1, sku: 'B', quantity: 6 }] }, 'the 6 missing')
      t.equal(await onHand('B'), b + 11 + 4, 'stock up by exactly what arrived')

      const within = await payables('POST', `${P}/invoices`, {
        number: 'SI-T',
        supplier: 'EXO',
        po: 'PO-T',
        lines: [{ line: 1, quantity: 11, unitCost: '2.29' }],
      })
      t.match(within.body, { status: 'matched', payable: true }, '2.29 is 1.8 % over 2.25: within the 2 % tolerance')
      const beyond = await payables('POST', `${P}/invoices`, {
        number: 'SI-U',
        supplier: 'EXO',
        po: 'PO-U',
        lines: [{ line: 1, quantity: 4, unitCost: '2.30' }],
      })
      t.match(beyond.body, { status: 'exception', payable: false, mismatches: [{ kind: 'price' }] }, '2.2 % over')
    })

    t.test('a demand forecast from the insights layer: a suggestion before stock runs low', async (t) => {
      // Eight past weeks of 14 units of F a week, one order each (placed: they reserve stock).
      await ok('POST', '/v1/x/pricing/prices/import', { rules: [{ kind: 'list', sku: 'F', price: '2.00' }] })
      await ok('POST', '/v1/x/orders/customers', { code: 'ALFKI', name: 'Alfreds Futterkiste' })
      await sellWeekly('F')
      const stock = await ok('GET', '/v1/x/inventory/stock/F')
      t.match(stock, { onHand: 150, available: 38 }, '112 reserved: above the reorder point of 20')

      const filter = encodeURIComponent(JSON.stringify({ product: 'F' }))
      const answer = await ok(
        'GET',
        `/v1/metrics/insights.units_sold/forecast?grain=week&season=2&horizon=4&from=${day(70)}&filter=${filter}`,
      )
      t.equal(answer.forecast.length, 4)
      for (const p of answer.forecast) t.ok(Math.abs(p.value - 14) < 0.01, `${p.period}: about 14 a week`)
      const buyer2 = buyer
      const recorded = await buyer2('POST', `${P}/forecasts`, { sku: 'F', forecast: answer })
      t.equal(recorded.status, 201)
      // By hand: 14 a week = 2 a day, over NWD's 10-day lead time = 20; 38 − 20 = 18 ≤ 20.
      t.match(recorded.body.projection, {
        available: 38,
        reorderPoint: 20,
        leadTimeDays: 10,
        leadTimeDemand: 20,
        projected: 18,
        fallsToReorderPoint: true,
      })
      t.match(recorded.body.forecast, { sku: 'F', source: 'insights.units_sold', grain: 'week' })
      const draft = await ok('GET', `${P}/purchase-orders/${recorded.body.suggestion.po}`)
      t.match(draft, { supplier: 'NWD', status: 'draft', source: 'suggestion' })
      // 20 + 20 − 38 = 2 short of the reorder point over the lead time, plus a lot of 20.
      t.match(draft.lines, [
        {
          sku: 'F',
          quantity: 22,
          suggestion: { rule: 'reorder point + lead-time forecast', forecast: { quantity: 20 } },
        },
      ])
      t.equal(recorded.body.suggestion.quantity, 22)

      // Stock then does fall: the low-stock suggestion is sized with the same forecast.
      await ok('POST', '/v1/x/inventory/stock/adjust', { sku: 'F', delta: -20, reason: 'spoilt' })
      const resized = await eventually(async () => {
        const po = await ok('GET', `${P}/purchase-orders/${draft.number}`)
        return po.lines[0].suggestion.origin.startsWith('event:') && po
      }, 'the low-stock suggestion')
      t.match(resized.lines, [{ sku: 'F', quantity: 42, suggestion: { available: 18, forecast: { quantity: 20 } } }])

      // A forecast that says nothing much: recorded, no suggestion.
      const calm = await buyer('POST', `${P}/forecasts`, {
        sku: 'B',
        source: 'planner',
        forecast: { grain: 'month', forecast: [{ period: day(0).slice(0, 8) + '01', value: 3 }] },
      })
      t.match(calm.body, {
        suggestion: null,
        projection: { fallsToReorderPoint: false },
        forecast: { source: 'planner' },
      })

      const bad = await buyer('POST', `${P}/forecasts`, {
        sku: 'A',
        forecast: { grain: 'fortnight', forecast: [{ period: 'soon', value: -1 }] },
      })
      t.equal(bad.status, 422)
      t.equal(bad.body.code, 'PUR_ERR_INVALID_FORECAST')
      t.equal((await buyer('GET', `${P}/forecasts/A`)).body.code, 'PUR_ERR_FORECAST_NOT_FOUND', 'nothing recorded')
      t.equal((await payables('POST', `${P}/forecasts`, { sku: 'F', forecast: answer })).status, 403)
      const types = (await dev.events('@trellis/procurement')).filter((e) => e.type === 'procurement.forecast.recorded')
      t.same(
        types.map((e) => e.subject),
        ['F', 'B'],
      )
    })

    t.test('the scheduled refresh reads the forecast itself: a suggestion with nothing posted', async (t) => {
      // G sells like F did (14 a week for eight weeks); nobody posts a forecast for it.
      await ok('POST', '/v1/x/catalog/import/products', { csv: 'sku,name,category,supplier\nG,Oats,BEV,EXO\n' })
      await ok('POST', '/v1/x/inventory/stock/import', { rows: [{ sku: 'G', onHand: 150, reorderPoint: 20 }] })
      await ok('POST', `${P}/prices/import`, { rows: [{ supplier: 'NWD', sku: 'G', cost: '0.90' }] })
      await ok('POST', '/v1/x/pricing/prices/import', { rules: [{ kind: 'list', sku: 'G', price: '1.50' }] })
      await sellWeekly('G')
      t.equal((await buyer('GET', `${P}/forecasts/G`)).status, 404, 'no forecast yet')

      // What the nightly schedule starts, started now through the API (no input: every SKU).
      const started = await ok('POST', '/v1/workflows/instances', {
        plugin: '@trellis/procurement',
        workflow: 'forecastRefresh',
      })
      const done = await eventually(async () => {
        const i = await ok('GET', `/v1/workflows/instances/${started.id}`)
        return ['completed', 'failed'].includes(i.status) && i
      }, 'the refresh to end')
      t.equal(done.status, 'completed', JSON.stringify(done))
      t.equal(done.output.insights, true)
      const g = done.output.recorded.find((x: { sku: string }) => x.sku === 'G')
      t.ok(g?.suggestion, JSON.stringify(done.output))
      t.match(
        done.output.skipped.find((x: { sku: string }) => x.sku === 'A'),
        { reason: 'too little sales history to forecast' },
        'A never sold: nothing to forecast',
      )
      const recorded = await ok('GET', `${P}/forecasts/G`)
      t.match(recorded, {
        sku: 'G',
        source: 'insights.units_sold',
        grain: 'week',
        recordedBy: /^system:|^event:|^user:/,
      })
      for (const p of recorded.periods) t.ok(Math.abs(p.value - 14) < 0.01, `${p.period}: about 14 a week`)
      const draft = await ok('GET', `${P}/purchase-orders/${g.suggestion.po}`)
      t.match(draft, { supplier: 'NWD', status: 'draft', source: 'suggestion' })
      // 38 available − 20 over the 10-day lead time = 18 ≤ 20: 2 short plus a lot of 20.
      t.match(
        draft.lines.find((l: { sku: string }) => l.sku === 'G'),
        { quantity: 22, suggestion: { rule: 'reorder point + lead-time forecast', forecast: { quantity: 20 } } },
      )
    })
  })
