/**
 * The webhook delivery log's filters in Chromium: an endpoint refuses one event until its
 * retries run out; the tenant admin narrows the log to dead letters and finds exactly that
 * delivery, mends the endpoint, redelivers it, and it leaves the dead letters for the delivered
 * ones. axe-core on the log.
 */
import t from 'tap'
import { consoleExtension } from '@trellis/platform'
import { DB_KINDS, createTenantWithAdmin, startTestKernel } from '../../core/test/helpers/test-kernel.js'
import { eventually, startReceiver } from '../../core/test/helpers/receiver.js'
import { consoleUser, openBrowser } from './browser.js'

t.test('dead letters found by the delivery log filter and redelivered, in Chromium', async (t) => {
  const k = await startTestKernel(t, DB_KINDS[0]!, {
    extensions: [consoleExtension()],
    events: { egressAllow: ['127.0.0.1'], retryScheduleMs: [100, 200], sweepMs: 200, totalTimeoutMs: 2000 },
  })
  const address = await k.kernel.app.listen({ port: 0, host: '127.0.0.1' })
  const base = address.replace('[::1]', '127.0.0.1')
  const shop = await createTenantWithAdmin(k, 'hooks-shop')
  // The endpoint refuses the news of the role "lost" (until it is mended), and takes the rest.
  let mended = false
  const rx = await startReceiver((r) => (r.body.includes('"lost"') && !mended ? 500 : 200))
  t.teardown(rx.close)
  const hook = await k.req('POST', '/v1/webhooks', {
    token: shop.token,
    body: { url: rx.url, types: ['kernel.role.created'] },
  })
  t.equal(hook.status, 201)
  for (const name of ['kept', 'lost'])
    t.equal((await k.req('POST', '/v1/roles', { token: shop.token, body: { name, permissions: [] } })).status, 201)
  const deliveries = async (status: string) =>
    (await k.req('GET', `/v1/webhooks/${hook.body.id}/deliveries?status=${status}`, { token: shop.token })).body
      .items as Array<{ id: string; status: string }>
  const [dead] = await eventually(async () => {
    const items = await deliveries('dead_letter')
    return items.length > 0 && items
  })
  await eventually(async () => (await deliveries('delivered')).length === 1)

  const page = await openBrowser(t)
  const { check, signIn, failing } = consoleUser(page, base)
  await signIn(shop.email, shop.password)
  await page.getByRole('link', { name: 'Users, keys and webhooks' }).click()
  await page.getByRole('button', { name: `Deliveries ${rx.url}` }).click()
  const log = page.getByRole('dialog', { name: 'Deliveries' })
  const rows = log.locator('tbody tr')
  await eventually(async () => (await rows.count()) === 2)

  await t.test('the dead letters alone', async (t) => {
    await log.getByLabel('Show').selectOption({ label: 'Dead letters (every retry failed)' })
    await log.getByRole('cell', { name: 'failed (dead_letter)' }).waitFor()
    await eventually(async () => (await rows.count()) === 1)
    t.match(
      await rows.first().innerText(),
      /kernel\.role\.created\s+failed \(dead_letter\)\s+\d+ attempts, last status 500/,
    )
    await check('webhook dead letters')
  })

  await t.test('mended and redelivered: it leaves the dead letters', async (t) => {
    mended = true
    await log.getByRole('button', { name: 'Redeliver' }).click()
    await page.getByText('Delivery queued again.').waitFor()
    await eventually(async () => (await deliveries('delivered')).some((d) => d.id === dead!.id))
    await log.getByLabel('Show').selectOption({ label: 'Delivered' })
    await eventually(async () => (await rows.count()) === 2)
    await log.getByLabel('Show').selectOption({ label: 'Dead letters (every retry failed)' })
    await log.getByText('No delivery matches.').waitFor()
    t.equal(await rows.count(), 0)
  })

  t.same(failing(), {}, 'axe: no serious or critical violation')
})
