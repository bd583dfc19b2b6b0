/**
 * The tenant user's ERP journey in Chromium, on a kernel with the catalog, pricing, inventory
 * and orders plugins installed through the marketplace: an order clerk places an order through
 * the orders plugin's declared screen; its discount needs approval, so the order shows the
 * open exception and the pricing manager's task; the pricing manager approves it from the task
 * inbox; the clerk then sees the exception resolved and the task completed, confirms, ships and
 * invoices the order, finds it invoiced with its invoice number, and sees it counted on the
 * insights plugin's sales dashboard (charted with uPlot). Beside it, the API the
 * order's task list reads (GET /v1/tasks/about) is attacked: no caller, a caller without any of
 * the plugin's permissions, another tenant.
 */
import t from 'tap'
import { createMarketplace } from '@trellis/marketplace'
import { consoleExtension } from '@trellis/platform'
import { DB_KINDS, addUser, createTenantWithAdmin, startTestKernel } from '../../core/test/helpers/test-kernel.js'
import { registerVersion } from '../../core/test/helpers/plugin-versions.js'
import { eventually } from '../../core/test/helpers/receiver.js'
import { bundleOf, ERP_PLUGINS } from '../../plugins/support/kernel.js'
import { consoleUser, openBrowser } from './browser.js'

t.test('the tenant user places an order and sees it invoiced, in Chromium', async (t) => {
  const k = await startTestKernel(t, DB_KINDS[0]!, {
    extensions: [createMarketplace(), consoleExtension()],
    plugins: { sandboxWorkers: 1 },
  })
  const address = await k.kernel.app.listen({ port: 0, host: '127.0.0.1' })
  const base = address.replace('[::1]', '127.0.0.1')

  // The ERP plugins, approved and installed (dependencies first) for two tenants.
  const shop = await createTenantWithAdmin(k, 'northwind')
  const other = await createTenantWithAdmin(k, 'elsewhere')
  for (const id of [...ERP_PLUGINS, 'insights'] as const) {
    const b = await bundleOf(id)
    await registerVersion(k, { manifest: b.manifest, code: b.code, sourceMap: b.sourceMap })
    for (const tenant of [shop, other]) {
      const r = await k.req('POST', '/v1/installations', {
        token: tenant.token,
        body: { plugin: b.manifest.name, version: b.manifest.version, capabilities: b.manifest.capabilities },
      })
      t.equal(r.status, 201, `${b.manifest.name} installed for ${tenant.email}`)
    }
  }
  const as = async (token: string, method: string, path: string, body?: unknown) => {
    const r = await k.req(method, path, { token, ...(body === undefined ? {} : { body }) })
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`)
    return r.body
  }
  await as(shop.token, 'POST', '/v1/x/catalog/categories', { code: 'BEV', name: 'Beverages' })
  await as(shop.token, 'POST', '/v1/x/catalog/suppliers', { code: 'EXO', name: 'Exotic Liquids' })
  await as(shop.token, 'POST', '/v1/x/catalog/products', {
    sku: 'CHAI',
    name: 'Chai',
    category: 'BEV',
    supplier: 'EXO',
  })
  await as(shop.token, 'POST', '/v1/x/pricing/prices/import', { rules: [{ kind: 'list', sku: 'CHAI', price: '18' }] })
  await as(shop.token, 'POST', '/v1/x/inventory/stock/import', { rows: [{ sku: 'CHAI', onHand: 100 }] })
  await as(shop.token, 'POST', '/v1/x/orders/customers', { code: 'ALFKI', name: 'Alfreds Futterkiste' })

  // The people: an order clerk, the pricing manager the price-exception workflow asks, a viewer.
  const role = (name: string, permissions: string[]) =>
    as(shop.token, 'POST', '/v1/roles', { name, description: name, permissions })
  await role('order_clerk', ['orders.read', 'orders.write'])
  await role('pricing_manager', ['orders.approve', 'users.read'])
  await role('viewer', ['users.read'])
  const clerk = await addUser(k, shop.token, 'clerk@northwind.test', 'order_clerk')
  const pricing = await addUser(k, shop.token, 'pricing@northwind.test', 'pricing_manager')
  const viewer = await addUser(k, shop.token, 'viewer@northwind.test', 'viewer')

  const page = await openBrowser(t)
  const { check, signIn, signOut, failing } = consoleUser(page, base)
  const ordersPage = async () => {
    await page.getByRole('link', { name: 'Orders', exact: true }).click()
    await page.getByRole('heading', { name: 'Orders' }).waitFor()
  }
  const openOrder = async (number: string) => {
    await page.getByRole('button', { name: `Open ${number}` }).click()
    return page.getByRole('dialog', { name: `Orders: ${number}` })
  }
  /** Runs an action on the open order from its detail dialog, confirming it. */
  const act = async (number: string, label: string) => {
    const detail = await openOrder(number)
    await detail.getByRole('button', { name: label, exact: true }).click()
    const confirm = page.getByRole('dialog', { name: label, exact: true })
    await confirm.getByRole('button', { name: 'Confirm', exact: true }).click()
    await page.getByRole('status').getByText(`Done: ${label} ${number}`).waitFor()
  }
  const taskOf = (number: string) =>
    eventually(async () => {
      const [row] = await k.ownerSql(
        `select * from workflow_tasks where plugin = '@trellis/orders' and data->>'order' = ?`,
        [number],
      )
      return row
    }, 20_000)

  await t.test('the clerk places an order through the plugin screen; it waits for a price approval', async (t) => {
    await signIn(clerk.user.email, clerk.password)
    await ordersPage()
    await page.getByRole('button', { name: 'Place an order' }).click()
    const form = page.getByRole('dialog', { name: 'Place an order' })
    await form.locator('#root_number').fill('SO-100')
    await form.locator('#root_customer').fill('ALFKI')
    // The order needs one line at least: the form shows the first one.
    await form.locator('#root_lines_0_sku').fill('CHAI')
    await form.locator('#root_lines_0_quantity').fill('10')
    await form.locator('#root_lines_0_discount').fill('0.25')
    await check('order form')
    await form.getByRole('button', { name: 'Place an order' }).click()
    await page.getByRole('status').getByText('Done: Place an order').waitFor()
    await page.getByRole('cell', { name: 'SO-100', exact: true }).waitFor()

    const order = await as(shop.token, 'GET', '/v1/x/orders/orders/SO-100')
    t.equal(order.status, 'placed')
    t.equal(order.total, '135.00', '10 × 18.00 less 25 %')
    t.same(
      order.exceptions.map((e: { kind: string; status: string }) => [e.kind, e.status]),
      [['price_approval', 'open']],
    )
    const task = await taskOf('SO-100')
    t.equal(task.role, 'pricing_manager')

    // The order shows its exception and the task that decides it (who, in which state).
    const detail = await openOrder('SO-100')
    const exceptions = detail.getByRole('table', { name: 'Exceptions' })
    await exceptions.getByRole('cell', { name: 'price_approval', exact: true }).waitFor()
    t.match(await exceptions.innerText(), /exceeds the 10% approval threshold/)
    t.match(await exceptions.innerText(), /open/)
    const tasks = detail.getByRole('table', { name: 'Tasks about this order' })
    await tasks.getByRole('cell', { name: 'Approve the discount on order SO-100 (ALFKI)', exact: true }).waitFor()
    t.match(await tasks.innerText(), /pricing_manager\s+open/)
    t.match(await detail.getByRole('table', { name: 'Lines' }).innerText(), /CHAI\s+Chai\s+10\s+18\.00\s+0\.25/)
    await check('order detail')
    // Confirming is refused while the exception is open: the answer shows, nothing changes.
    await detail.getByRole('button', { name: 'Confirm', exact: true }).click()
    const confirm = page.getByRole('dialog', { name: 'Confirm', exact: true })
    await confirm.getByRole('button', { name: 'Confirm', exact: true }).click()
    await confirm.getByRole('alert').waitFor()
    t.equal((await as(shop.token, 'GET', '/v1/x/orders/orders/SO-100')).status, 'placed')
    await page.keyboard.press('Escape')
    await page.keyboard.press('Escape')
    await signOut()
  })

  await t.test('the pricing manager approves the price exception from the inbox', async (t) => {
    const task = await taskOf('SO-100')
    await signIn(pricing.user.email, pricing.password)
    await page.getByRole('heading', { name: 'Task inbox' }).waitFor()
    await page.getByRole('button', { name: `Open ${task.title}` }).click()
    const dialog = page.getByRole('dialog', { name: task.title })
    t.match(await dialog.innerText(), /"order": "SO-100"/, 'the task shows the order it is about')
    await dialog.getByRole('button', { name: 'Claim' }).click()
    await dialog.getByLabel('Outcome').selectOption('approve')
    await dialog.getByLabel(/reason/).fill('A long-standing customer: the margin holds')
    await dialog.getByRole('button', { name: 'Complete as “approve”' }).click()
    await page.getByText('Task completed: approve').waitFor()
    const resolved = await eventually(async () => {
      const o = await as(shop.token, 'GET', '/v1/x/orders/orders/SO-100')
      return o.exceptions[0].status === 'resolved' && o
    }, 20_000)
    t.match(resolved.exceptions[0], { decision: 'approved', resolution: 'A long-standing customer: the margin holds' })
    t.equal(resolved.total, '135.00', 'the discount is kept')
    await signOut()
  })

  await t.test('the clerk sees the decision, then confirms, ships and invoices the order', async (t) => {
    await signIn(clerk.user.email, clerk.password)
    await ordersPage()
    const detail = await openOrder('SO-100')
    const exceptions = detail.getByRole('table', { name: 'Exceptions' })
    await exceptions.getByRole('cell', { name: 'approved', exact: true }).waitFor()
    t.match(await exceptions.innerText(), /resolved/)
    const tasks = detail.getByRole('table', { name: 'Tasks about this order' })
    await tasks.getByRole('cell', { name: 'completed: approve', exact: true }).waitFor()
    await page.keyboard.press('Escape')

    await act('SO-100', 'Confirm')
    await act('SO-100', 'Ship')
    await act('SO-100', 'Invoice')
    await page.getByLabel('Status').selectOption('invoiced')
    const row = page.getByRole('row').filter({ has: page.getByRole('cell', { name: 'SO-100', exact: true }) })
    await row.getByRole('cell', { name: 'INV-SO-100', exact: true }).waitFor()
    t.match(await row.innerText(), /invoiced/)
    await check('orders')
    const order = await as(shop.token, 'GET', '/v1/x/orders/orders/SO-100')
    t.same(
      order.history.map((h: { status: string }) => h.status),
      ['placed', 'confirmed', 'shipped', 'invoiced'],
    )
    t.equal(order.invoiceNumber, 'INV-SO-100')

    // The insights plugin's sales dashboard counts it: a number, a series drawn by uPlot, tables.
    await page.getByRole('link', { name: 'Dashboards' }).click()
    const sales = page.getByRole('region', { name: 'Sales', exact: true })
    await sales
      .getByRole('figure', { name: 'Net sales, last 12 months' })
      .getByText(/^135\.00/)
      .waitFor()
    const series = sales.getByRole('figure', { name: 'Net sales by month' })
    await series.locator('canvas').first().waitFor()
    t.match(await series.locator('table').innerText(), /135/, 'the month of the order holds its net sales')
    await sales.getByRole('figure', { name: 'By category' }).getByRole('cell', { name: 'BEV', exact: true }).waitFor()
    await check('dashboards')
    await signOut()
  })

  await t.test("GET /v1/tasks/about: the tasks' state for the plugin's users, nothing more", async (t) => {
    const about = '/v1/tasks/about?plugin=@trellis/orders&field=order&value=SO-100'
    const seen = await k.req('GET', about, { token: clerk.token })
    t.equal(seen.status, 200)
    t.equal(seen.body.items.length, 1)
    t.match(seen.body.items[0], { role: 'pricing_manager', status: 'completed', outcome: 'approve' })
    t.same(
      Object.keys(seen.body.items[0]).sort(),
      ['completedAt', 'createdAt', 'dueAt', 'id', 'outcome', 'role', 'status', 'title', 'workflow'],
      "not the task's data, form or result",
    )

    const anonymous = await k.req('GET', `${about.replace('field=order', 'field=bad%20field')}`)
    t.equal(anonymous.status, 401, 'no caller: refused before the query is read')
    t.equal(anonymous.body.code, 'AUTH_ERR_UNAUTHENTICATED')
    const notOurs = await k.req('GET', about, { token: viewer.token })
    t.equal(notOurs.status, 403, "a caller holding none of the orders plugin's permissions")
    t.equal(notOurs.body.code, 'AUTH_ERR_FORBIDDEN')
    const elsewhere = await k.req('GET', about, { token: other.token })
    t.equal(elsewhere.status, 200)
    t.same(elsewhere.body.items, [], "another tenant's admin finds none of this tenant's tasks")
    const notInstalled = await k.req('GET', about.replace('@trellis/orders', '@trellis/returns'), {
      token: shop.token,
    })
    t.equal(notInstalled.body.code, 'PLG_ERR_NOT_INSTALLED')
    const bad = await k.req('GET', about.replace('field=order', "field=order'--"), { token: shop.token })
    t.equal(bad.status, 400)
    t.equal(bad.body.code, 'KRN_ERR_VALIDATION_FAILED')
  })

  t.same(failing(), {}, 'axe: no serious or critical violation on any page')
})
