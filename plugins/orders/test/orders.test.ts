// The orders plugin on the real kernel (embedded database, sandbox, row-level security) with the
// catalog, pricing and inventory plugins it works with, installed in dependency order.
import t from 'tap'
import { join } from 'node:path'
import { buildPlugin } from '@trellis/plugin-sdk'
import { lintErp, startErpKernel, ERP_PLUGINS } from '../../support/kernel.js'
import { DB_KINDS } from '../../../core/test/helpers/test-kernel.js'

// One kernel per database, shared by every test of the file.
for (const kind of DB_KINDS)
  t.test(`on ${kind}`, async (t) => {
    const dev = await startErpKernel(ERP_PLUGINS, {}, kind)
    t.teardown(() => dev.close())
    const r = (method: string, path: string, body?: unknown) =>
      dev.request(method, path, body === undefined ? {} : { body }) as Promise<{ status: number; body: any }>
    /** A new person joins the dev tenant: invited by its admin, accepted with a new account. */
    async function addPerson(email: string, name: string, password: string, role: string) {
      const invited = await r('POST', '/v1/invitations', { email, role })
      if (invited.status !== 201) return invited
      return dev.request('POST', '/v1/invitations/accept', {
        body: { token: invited.body.acceptToken, name, password },
        token: '',
      }) as Promise<{ status: number; body: any }>
    }
    const O = '/v1/x/orders'

    async function ok(method: string, path: string, body?: unknown, status = [200, 201]) {
      const res = await r(method, path, body)
      if (!status.includes(res.status)) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`)
      return res.body
    }
    const stock = async (sku: string) =>
      (await ok('GET', `/v1/x/inventory/stock/${sku}`)) as { onHand: number; reserved: number; available: number }
    const orderEvents = async () => (await dev.events('@trellis/orders')).map((e) => `${e.type} ${e.subject}`)
    const orderCount = async () => (await dev.records('@trellis/orders', 'orders')).length

    // A small catalog: 9.80 and 7.70 are Northwind prices whose discounted amounts fall between cents.
    await ok('POST', '/v1/x/catalog/import/categories', { csv: 'code,name\nBEV,Beverages\n' })
    await ok('POST', '/v1/x/catalog/import/suppliers', { csv: 'code,name\nEXO,Exotic Liquids\n' })
    await ok('POST', '/v1/x/catalog/import/products', {
      csv: 'sku,name,category,supplier,quantity_per_unit,discontinued\nA,Tea,BEV,EXO,10 boxes x 20 bags,0\nB,Ale,BEV,EXO,24 - 12 oz bottles,0\nC,Coffee,BEV,EXO,16 - 500 g tins,0\nD,Old cola,BEV,EXO,,1\n',
    })
    await ok('POST', '/v1/x/pricing/prices/import', {
      rules: [
        { kind: 'list', sku: 'A', price: '9.80' },
        { kind: 'list', sku: 'B', price: '19' },
        { kind: 'list', sku: 'C', price: 7.7 },
        { kind: 'list', sku: 'D', price: '1.00' },
      ],
    })
    await ok('POST', '/v1/x/inventory/stock/import', {
      rows: [
        { sku: 'A', onHand: 100, reorderPoint: 10 },
        { sku: 'B', onHand: 10, reorderPoint: 5 },
        { sku: 'C', onHand: 1000 },
      ],
    })
    await ok('POST', `${O}/customers/import`, {
      rows: [
        { code: 'ALFKI', name: 'Alfreds Futterkiste', country: 'Germany' },
        { code: 'HOLD', name: 'Held & Co', creditHold: true },
        { code: 'LIMIT', name: 'Limited Ltd', creditLimit: '100.00' },
      ],
    })

    t.test('the manifest asks only for what orders uses, and passes the lint', async (t) => {
      const { default: manifest } = await import('../trellis.plugin.json', { with: { type: 'json' } })
      t.same(
        manifest.capabilities,
        [
          'data',
          'events:emit:orders.order.*',
          'events:emit:orders.exception.*',
          'plugins:call:@trellis/pricing#quote',
          'plugins:call:@trellis/inventory#reserve',
          'plugins:call:@trellis/inventory#release',
          'plugins:call:@trellis/inventory#issue',
          'workflows',
          'events:subscribe:orders.exception.raised',
        ],
        'no access to inventory data: only its actions',
      )
      t.same((await lintErp('orders')).errors, [])
    })

    t.test(
      'an order goes placed → confirmed → shipped → invoiced, reserving then issuing stock, one event per step',
      async (t) => {
        const placed = await r('POST', `${O}/orders`, {
          number: 'SO-1',
          customer: 'ALFKI',
          orderDate: '2026-01-10',
          lines: [
            { sku: 'A', quantity: 10, discount: 0.05 },
            { sku: 'C', quantity: 25, discount: '0.1' },
          ],
        })
        t.equal(placed.status, 201)
        t.equal(placed.body.status, 'placed')
        t.same(placed.body.exceptions, [])
        t.equal(placed.body.stock, 'reserved')
        t.same(
          placed.body.lines.map((l: any) => [l.sku, l.unitPrice, l.discount, l.net]),
          [
            ['A', '9.80', '0.05', '93.10'],
            ['C', '7.70', '0.10', '173.25'],
          ],
        )
        t.equal(placed.body.total, '266.35')
        t.same(await stock('A'), {
          sku: 'A',
          onHand: 100,
          reserved: 10,
          available: 90,
          warehouses: ((await stock('A')) as any).warehouses,
        })
        t.equal((await ok('GET', '/v1/x/inventory/reservations/SO-1')).status, 'reserved')

        t.equal(
          (await r('POST', `${O}/orders/SO-1/ship`)).body.code,
          'ORD_ERR_INVALID_TRANSITION',
          'cannot ship before confirming',
        )
        t.equal((await ok('POST', `${O}/orders/SO-1/confirm`)).status, 'confirmed')
        const shipped = await ok('POST', `${O}/orders/SO-1/ship`, { date: '2026-01-12' })
        t.equal(shipped.status, 'shipped')
        t.equal(shipped.shippedDate, '2026-01-12')
        t.match(
          await stock('A'),
          { onHand: 90, reserved: 0, available: 90 },
          'shipping takes the reserved stock off hand',
        )
        const invoiced = await ok('POST', `${O}/orders/SO-1/invoice`)
        t.equal(invoiced.status, 'invoiced')
        t.equal(invoiced.invoiceNumber, 'INV-SO-1')
        t.same(
          invoiced.history.map((h: any) => h.status),
          ['placed', 'confirmed', 'shipped', 'invoiced'],
        )
        t.same(
          (await orderEvents()).filter((e) => e.endsWith('SO-1')),
          [
            'orders.order.placed SO-1',
            'orders.order.confirmed SO-1',
            'orders.order.shipped SO-1',
            'orders.order.invoiced SO-1',
          ],
        )
        t.same(
          (await dev.events('@trellis/inventory')).filter((e) => e.subject === 'SO-1').map((e) => e.type),
          ['inventory.stock.reserved', 'inventory.stock.issued'],
        )

        const cancel = await r('POST', `${O}/orders/SO-1/cancel`, { reason: 'changed my mind' })
        t.equal(cancel.status, 409, 'an invoiced order cannot be cancelled')
        t.match(cancel.body, { status: 409, code: 'ORD_ERR_INVALID_TRANSITION', orderStatus: 'invoiced' })
        t.equal((await ok('GET', `${O}/orders/SO-1`)).status, 'invoiced')
        t.equal((await r('POST', `${O}/orders/SO-1/invoice`)).status, 409, 'nor invoiced twice')
      },
    )

    t.test('cancelling: a shipped order cannot be, a placed one releases its stock', async (t) => {
      await ok('POST', `${O}/orders`, { number: 'SO-2', customer: 'ALFKI', lines: [{ sku: 'A', quantity: 5 }] })
      await ok('POST', `${O}/orders/SO-2/confirm`)
      await ok('POST', `${O}/orders/SO-2/ship`)
      const before = await stock('A')
      const res = await r('POST', `${O}/orders/SO-2/cancel`, { reason: 'too late' })
      t.equal(res.status, 409)
      t.equal(res.body.code, 'ORD_ERR_INVALID_TRANSITION')
      t.same(await stock('A'), before, 'stock untouched')
      t.equal((await ok('GET', `${O}/orders/SO-2`)).status, 'shipped')

      await ok('POST', `${O}/orders`, { number: 'SO-3', customer: 'ALFKI', lines: [{ sku: 'A', quantity: 7 }] })
      t.equal((await stock('A')).reserved, 7)
      const cancelled = await ok('POST', `${O}/orders/SO-3/cancel`, { reason: 'customer called' })
      t.equal(cancelled.status, 'cancelled')
      t.equal(cancelled.stock, 'released')
      t.equal((await stock('A')).reserved, 0, 'the reservation is released')
      t.equal((await ok('GET', '/v1/x/inventory/reservations/SO-3')).status, 'released')
      t.ok((await orderEvents()).includes('orders.order.cancelled SO-3'))
      t.equal((await r('POST', `${O}/orders/SO-3/cancel`, { reason: 'again' })).status, 409)
      t.equal((await r('POST', `${O}/orders/SO-3/confirm`)).status, 409, 'a cancelled order stays cancelled')
    })

    t.test('bad orders are refused and write nothing', async (t) => {
      const orders = await orderCount()
      const events = (await orderEvents()).length
      const reservations = (await dev.records('@trellis/inventory', 'reservations')).length
      const a = await stock('A')

      const unknown = await r('POST', `${O}/orders`, {
        number: 'BAD-1',
        customer: 'ALFKI',
        lines: [
          { sku: 'A', quantity: 1 },
          { sku: 'NOPE', quantity: 1 },
        ],
      })
      t.equal(unknown.status, 422)
      t.equal(unknown.body.code, 'ORD_ERR_INVALID_LINES')
      t.same(
        unknown.body.errors.map((e: any) => [e.line, e.sku, e.code]),
        [[2, 'NOPE', 'unknown_product']],
      )

      const negative = await r('POST', `${O}/orders`, {
        number: 'BAD-2',
        customer: 'ALFKI',
        lines: [{ sku: 'A', quantity: -3 }],
      })
      t.equal(negative.status, 400)
      t.equal(negative.body.code, 'KRN_ERR_VALIDATION_FAILED')
      t.equal(
        (await r('POST', `${O}/orders`, { number: 'BAD-3', customer: 'ALFKI', lines: [{ sku: 'A', quantity: 0 }] }))
          .status,
        400,
        'zero quantity',
      )
      t.equal(
        (await r('POST', `${O}/orders`, { number: 'BAD-4', customer: 'ALFKI', lines: [] })).status,
        400,
        'no lines',
      )
      t.equal(
        (
          await r('POST', `${O}/orders`, {
            number: 'BAD-5',
            customer: 'ALFKI',
            lines: [{ sku: 'A', quantity: 1, discount: 1.5 }],
          })
        ).status,
        400,
        'a discount above 100 %',
      )

      const customer = await r('POST', `${O}/orders`, {
        number: 'BAD-6',
        customer: 'NOBODY',
        lines: [{ sku: 'A', quantity: 1 }],
      })
      t.equal(customer.status, 422)
      t.equal(customer.body.code, 'ORD_ERR_UNKNOWN_CUSTOMER')

      const discontinued = await r('POST', `${O}/orders`, {
        number: 'BAD-7',
        customer: 'ALFKI',
        lines: [{ sku: 'D', quantity: 1 }],
      })
      t.equal(discontinued.status, 422)
      t.same(
        discontinued.body.errors.map((e: any) => e.code),
        ['discontinued'],
      )

      const dup = await r('POST', `${O}/orders`, {
        number: 'SO-1',
        customer: 'ALFKI',
        lines: [{ sku: 'A', quantity: 1 }],
      })
      t.equal(dup.status, 409)
      t.equal(dup.body.code, 'ORD_ERR_ORDER_EXISTS')

      t.equal(await orderCount(), orders, 'no order stored')
      t.equal((await orderEvents()).length, events, 'no event emitted')
      t.equal((await dev.records('@trellis/inventory', 'reservations')).length, reservations, 'no stock reserved')
      t.same(await stock('A'), a)
      t.equal((await r('GET', `${O}/orders/BAD-1`)).status, 404)
    })

    t.test('a discount over the approval threshold is not applied silently', async (t) => {
      const atThreshold = await ok('POST', `${O}/orders`, {
        number: 'SO-10',
        customer: 'ALFKI',
        lines: [{ sku: 'A', quantity: 1, discount: '0.10' }],
      })
      t.same(atThreshold.exceptions, [], 'exactly the threshold (10 %) needs no approval')

      const res = await r('POST', `${O}/orders`, {
        number: 'SO-11',
        customer: 'ALFKI',
        lines: [
          { sku: 'A', quantity: 2 },
          { sku: 'C', quantity: 25, discount: 0.25 },
        ],
      })
      t.equal(res.status, 201)
      const [exc] = res.body.exceptions
      t.match(exc, { kind: 'price_approval', status: 'open' })
      t.match(exc.reason, /line 2 \(C\): discount 25% exceeds the 10% approval threshold/)
      t.same(
        res.body.lines.map((l: any) => l.needsApproval),
        [false, true],
      )
      t.ok((await orderEvents()).includes('orders.exception.raised SO-11'))

      const confirm = await r('POST', `${O}/orders/SO-11/confirm`)
      t.equal(confirm.status, 409, 'an order waiting for price approval cannot go on')
      t.equal(confirm.body.code, 'ORD_ERR_OPEN_EXCEPTIONS')
      t.equal(confirm.body.exceptions[0].kind, 'price_approval')

      t.equal(
        (await r('POST', `${O}/orders/SO-11/exceptions/credit_hold/resolve`, { decision: 'approve', reason: 'x' })).body
          .code,
        'ORD_ERR_NO_OPEN_EXCEPTION',
      )
      const approved = await ok('POST', `${O}/orders/SO-11/exceptions/price_approval/resolve`, {
        decision: 'approve',
        reason: 'key account',
      })
      t.match(approved.exceptions[0], {
        kind: 'price_approval',
        status: 'resolved',
        decision: 'approved',
        resolution: 'key account',
      })
      t.equal(approved.total, '163.98', '2 × 9.80 + 25 × 7.70 × 0.75 = 19.60 + 144.375, rounded at the end')
      t.equal(approved.totalExact, '163.975')
      t.equal((await ok('POST', `${O}/orders/SO-11/confirm`)).status, 'confirmed')
      t.ok((await orderEvents()).includes('orders.exception.resolved SO-11'))

      // Rejected: the flagged line is repriced without its discount; the others keep theirs.
      await ok('POST', `${O}/orders`, {
        number: 'SO-12',
        customer: 'ALFKI',
        lines: [
          { sku: 'A', quantity: 10, discount: 0.05 },
          { sku: 'C', quantity: 10, discount: 0.2 },
        ],
      })
      const rejected = await ok('POST', `${O}/orders/SO-12/exceptions/price_approval/resolve`, {
        decision: 'reject',
        reason: 'not for this customer',
      })
      t.same(
        rejected.lines.map((l: any) => [l.sku, l.discount, l.net, l.needsApproval]),
        [
          ['A', '0.05', '93.10', false],
          ['C', '0.00', '77.00', false],
        ],
      )
      t.equal(rejected.total, '170.10')
      t.equal(rejected.status, 'placed')
      t.match(rejected.exceptions[0], { status: 'resolved', decision: 'rejected' })
    })

    t.test('the action the workflow runtime calls to decide a price exception', async (t) => {
      await ok('POST', `${O}/orders`, {
        number: 'SO-20',
        customer: 'ALFKI',
        lines: [{ sku: 'C', quantity: 4, discount: 0.2 }],
      })
      const out = (await dev.invoke('@trellis/orders', 'action', 'resolveException', {
        order: 'SO-20',
        kind: 'price_approval',
        decision: 'approve',
        reason: 'approved in task 42',
        decidedBy: 'user:manager@dev',
      })) as any
      t.equal(out.ok, true)
      t.match(out.order.exceptions[0], {
        status: 'resolved',
        decision: 'approved',
        by: 'user:manager@dev',
        resolution: 'approved in task 42',
      })
      const again = (await dev.invoke('@trellis/orders', 'action', 'resolveException', {
        order: 'SO-20',
        kind: 'price_approval',
        decision: 'reject',
        reason: 'late',
      })) as any
      t.same(
        again,
        { ok: false, code: 'ORD_ERR_NO_OPEN_EXCEPTION', detail: 'order SO-20 has no open price_approval exception' },
        'a decided exception stays decided',
      )
      const missing = (await dev.invoke('@trellis/orders', 'action', 'resolveException', {
        order: 'NOPE',
        kind: 'price_approval',
        decision: 'approve',
        reason: 'x',
      })) as any
      t.equal(missing.code, 'ORD_ERR_ORDER_NOT_FOUND')
    })

    t.test('short stock: nothing is reserved, the order waits, a retry after a receipt reserves', async (t) => {
      const res = await ok('POST', `${O}/orders`, {
        number: 'SO-30',
        customer: 'ALFKI',
        lines: [
          { sku: 'A', quantity: 1 },
          { sku: 'B', quantity: 50 },
        ],
      })
      t.equal(res.stock, 'short')
      t.match(res.exceptions[0], { kind: 'stock_short', status: 'open', reason: 'B: 50 requested, 10 available' })
      t.equal((await stock('B')).reserved, 0, 'all lines or none')
      t.equal((await r('POST', `${O}/orders/SO-30/confirm`)).status, 409)
      const still = await r('POST', `${O}/orders/SO-30/exceptions/stock_short/resolve`, {
        decision: 'approve',
        reason: 'retry',
      })
      t.equal(still.status, 409)
      t.equal(still.body.code, 'ORD_ERR_STOCK_STILL_SHORT')
      await ok('POST', '/v1/x/inventory/stock/adjust', { sku: 'B', delta: 100, reason: 'receipt PO-7' })
      const retried = await ok('POST', `${O}/orders/SO-30/exceptions/stock_short/resolve`, {
        decision: 'approve',
        reason: 'received',
      })
      t.equal(retried.stock, 'reserved')
      t.match(await stock('B'), { onHand: 110, reserved: 50 })
      t.equal((await ok('POST', `${O}/orders/SO-30/confirm`)).status, 'confirmed')
    })

    t.test('credit hold: a held customer or a total over the limit waits; rejecting cancels', async (t) => {
      const before = (await stock('A')).reserved
      const held = await ok('POST', `${O}/orders`, {
        number: 'SO-40',
        customer: 'HOLD',
        lines: [{ sku: 'A', quantity: 3 }],
      })
      t.match(held.exceptions[0], { kind: 'credit_hold', reason: 'customer HOLD is on credit hold' })
      t.equal((await stock('A')).reserved, before + 3, 'stock is held for it meanwhile')
      const rejected = await ok('POST', `${O}/orders/SO-40/exceptions/credit_hold/resolve`, {
        decision: 'reject',
        reason: 'unpaid invoices',
      })
      t.equal(rejected.status, 'cancelled')
      t.equal((await stock('A')).reserved, before, 'its stock is released')
      const events = await orderEvents()
      t.ok(events.includes('orders.order.cancelled SO-40') && events.includes('orders.exception.resolved SO-40'))

      const small = await ok('POST', `${O}/orders`, {
        number: 'SO-41',
        customer: 'LIMIT',
        lines: [{ sku: 'A', quantity: 10 }],
      })
      t.same(small.exceptions, [], '98.00 is within the 100.00 limit')
      const big = await ok('POST', `${O}/orders`, {
        number: 'SO-42',
        customer: 'LIMIT',
        lines: [{ sku: 'A', quantity: 11 }],
      })
      t.match(big.exceptions[0], {
        kind: 'credit_hold',
        reason: 'order total 107.80 exceeds the credit limit 100.00 of customer LIMIT',
      })
      const released = await ok('POST', `${O}/orders/SO-42/exceptions/credit_hold/resolve`, {
        decision: 'approve',
        reason: 'prepaid',
      })
      t.equal(released.status, 'placed')
      t.equal((await ok('POST', `${O}/orders/SO-42/confirm`)).status, 'confirmed')
    })

    t.test('the sales report adds the exact line amounts of every order not cancelled', async (t) => {
      const all: any[] = (await ok('GET', `${O}/orders?limit=1000`)).items
      const live = all.filter((o) => o.status !== 'cancelled')
      // Independent arithmetic: amounts in 10^-6 units.
      const micros = (s: string) => {
        const [int, dec = ''] = s.split('.')
        return BigInt(int!) * 1_000_000n + BigInt(dec.padEnd(6, '0'))
      }
      const cents = (m: bigint) => {
        const c = ((m + 5000n) / 10000n).toString().padStart(3, '0')
        return `${c.slice(0, -2)}.${c.slice(-2)}`
      }
      const expected = live.flatMap((o) => o.lines).reduce((a: bigint, l: any) => a + micros(l.net), 0n)
      const report = await ok('GET', `${O}/reports/sales`)
      t.equal(report.orders, live.length)
      t.equal(report.total, cents(expected))
      const byProduct = await ok('GET', `${O}/reports/sales?groupBy=product`)
      const c = byProduct.groups.find((g: any) => g.key === 'C')
      const cExpected = live
        .flatMap((o) => o.lines)
        .filter((l: any) => l.sku === 'C')
        .reduce((a: bigint, l: any) => a + micros(l.net), 0n)
      t.equal(c.total, cents(cExpected))
      const invoiced = await ok('GET', `${O}/reports/sales?status=invoiced`)
      t.same([invoiced.orders, invoiced.total], [1, '266.35'])
    })

    t.test('a clerk who may place orders cannot approve their own discount', async (t) => {
      const role = await r('POST', '/v1/roles', { name: 'clerk', permissions: ['orders.read', 'orders.write'] })
      t.equal(role.status, 201, JSON.stringify(role.body))
      const user = await addPerson('clerk@dev.test', 'Clerk', 'password-of-the-clerk', 'clerk')
      t.equal(user.status, 200, JSON.stringify(user.body))
      const login = await dev.request('POST', '/v1/auth/login', {
        body: { email: 'clerk@dev.test', password: 'password-of-the-clerk' },
        token: '',
      })
      const token = (login.body as { accessToken: string }).accessToken
      const asClerk = (method: string, path: string, body?: unknown) =>
        dev.request(method, path, { token, ...(body === undefined ? {} : { body }) }) as Promise<{
          status: number
          body: any
        }>

      const placed = await asClerk('POST', `${O}/orders`, {
        number: 'SO-50',
        customer: 'ALFKI',
        lines: [{ sku: 'C', quantity: 10, discount: 0.3 }],
      })
      t.equal(placed.status, 201)
      t.equal(placed.body.exceptions[0].kind, 'price_approval')
      const approve = await asClerk('POST', `${O}/orders/SO-50/exceptions/price_approval/resolve`, {
        decision: 'approve',
        reason: 'trust me',
      })
      t.equal(approve.status, 403)
      t.equal(approve.body.code, 'AUTH_ERR_FORBIDDEN')
      t.equal((await asClerk('POST', `${O}/orders/SO-50/confirm`)).body.code, 'ORD_ERR_OPEN_EXCEPTIONS')
      t.equal(
        (
          await asClerk('POST', '/v1/x/pricing/prices', {
            kind: 'customer',
            sku: 'C',
            customer: 'ALFKI',
            price: '0.01',
          })
        ).status,
        403,
        'nor set a contract price instead',
      )
      t.match((await r('GET', `${O}/orders/SO-50`)).body, {
        status: 'placed',
        exceptions: [{ kind: 'price_approval', status: 'open' }],
      })
    })

    t.test(
      'another plugin deciding through the action: as a workflow step may, for a person without orders.approve may not',
      async (t) => {
        const built = await buildPlugin({ dir: join(import.meta.dirname, 'fixtures', 'approver'), write: false })
        const { default: manifest } = await import('./fixtures/approver/trellis.plugin.json', {
          with: { type: 'json' },
        })
        await dev.install({ manifest, code: built.code, sourceMap: built.sourceMap })
        await ok('POST', `${O}/orders`, {
          number: 'SO-60',
          customer: 'ALFKI',
          lines: [{ sku: 'C', quantity: 2, discount: 0.4 }],
        })
        await ok('POST', `${O}/orders`, {
          number: 'SO-61',
          customer: 'ALFKI',
          lines: [{ sku: 'C', quantity: 2, discount: 0.4 }],
        })

        t.equal((await addPerson('clerk2@dev.test', 'Clerk 2', 'password-of-clerk-two', 'clerk')).status, 200)
        const login = await dev.request('POST', '/v1/auth/login', {
          body: { email: 'clerk2@dev.test', password: 'password-of-clerk-two' },
          token: '',
        })
        const token = (login.body as { accessToken: string }).accessToken
        const viaClerk = await dev.request('POST', '/v1/x/approver/decide', {
          token,
          body: { order: 'SO-60', kind: 'price_approval', decision: 'approve', reason: 'sneaky' },
        })
        t.same(viaClerk.body, {
          ok: false,
          code: 'ORD_ERR_FORBIDDEN',
          detail: 'resolving an order exception needs the orders.approve permission',
        })
        t.match((await ok('GET', `${O}/orders/SO-60`)).exceptions[0], { status: 'open' }, 'still waiting')

        const asStep = (await dev.invoke('@test/approver', 'action', 'decide', {
          order: 'SO-61',
          kind: 'price_approval',
          decision: 'approve',
          reason: 'task 7 approved',
          decidedBy: 'user:boss@dev.test',
        })) as any
        t.equal(asStep.ok, true)
        t.match(asStep.order.exceptions[0], { status: 'resolved', decision: 'approved', by: 'user:boss@dev.test' })
      },
    )

    t.test(
      "a discount over the threshold opens a pricing-exception task; the approver's decision is applied",
      async (t) => {
        t.equal(
          (await r('POST', '/v1/roles', { name: 'pricing_manager', permissions: ['orders.approve'] })).status,
          201,
        )
        t.equal(
          (await addPerson('pm@dev.test', 'Pricing manager', 'password-of-pricing-manager', 'pricing_manager')).status,
          200,
        )
        const pm = (
          (
            await dev.request('POST', '/v1/auth/login', {
              body: { email: 'pm@dev.test', password: 'password-of-pricing-manager' },
            })
          ).body as { accessToken: string }
        ).accessToken
        const asPm = (method: string, path: string, body?: unknown) =>
          dev.request(method, path, { token: pm, ...(body === undefined ? {} : { body }) }) as Promise<{
            status: number
            body: any
          }>
        const placed = await ok('POST', `${O}/orders`, {
          number: 'SO-TASK-1',
          customer: 'ALFKI',
          lines: [{ sku: 'C', quantity: 10, discount: 0.3 }],
        })
        const started = placed.started.find((s: any) => s.kind === 'price_approval')
        t.match(started.workflow, { plugin: '@trellis/orders', name: 'priceException', instanceId: /^[0-9a-f-]{36}$/ })
        const { instanceId } = started.workflow
        const instance = (await ok('GET', `/v1/workflows/instances/${instanceId}`)) as any
        t.match(instance, { plugin: '@trellis/orders', workflow: 'priceException' }, 'the instance exists at once')
        let task: any
        for (let i = 0; i < 200 && !task; i++) {
          task = (await asPm('GET', '/v1/tasks')).body.items.find((x: any) => x.data?.order === 'SO-TASK-1')
          if (!task) await new Promise((done) => setTimeout(done, 100))
        }
        t.ok(task, 'the pricing manager has a task for the order')
        t.equal(task.instanceId, instanceId, "the task belongs to the instance the order's answer named")
        t.match(task, {
          title: 'Approve the discount on order SO-TASK-1 (ALFKI)',
          role: 'pricing_manager',
          outcomes: ['approve', 'reject'],
        })
        t.same(task.data.lines, [{ sku: 'C', quantity: 10, discount: '0.30' }])
        t.equal(
          (await r('POST', `${O}/orders/SO-TASK-1/confirm`)).body.code,
          'ORD_ERR_OPEN_EXCEPTIONS',
          'the order waits for the decision',
        )
        t.equal(
          (await asPm('POST', `/v1/tasks/${task.id}/complete`, { outcome: 'approve', data: {} })).body.code,
          'WFL_ERR_FORM_INVALID',
          'a decision needs a reason',
        )
        t.equal(
          (
            await asPm('POST', `/v1/tasks/${task.id}/complete`, {
              outcome: 'approve',
              data: { reason: 'volume customer' },
            })
          ).status,
          200,
        )
        let order: any
        for (let i = 0; i < 200; i++) {
          order = await ok('GET', `${O}/orders/SO-TASK-1`)
          if (order.exceptions[0].status === 'resolved') break
          await new Promise((done) => setTimeout(done, 100))
        }
        t.match(order.exceptions[0], {
          kind: 'price_approval',
          status: 'resolved',
          decision: 'approved',
          resolution: 'volume customer',
        })
        t.equal(order.total, '53.90', '10 × 7.70 × 0.70: the discount stands')
        t.equal((await ok('POST', `${O}/orders/SO-TASK-1/confirm`)).status, 'confirmed')
      },
    )
  })
