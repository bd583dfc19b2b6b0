/**
 * Governance in the console, in Chromium. The periodic access review where a tenant's admin works: after 90 days (by the
 * kernel's clock) the daily pass opens a review; the "Access review" page lists the stale
 * memberships and API keys, and its Keep and Remove buttons decide them through the decisions
 * API — a removed member's session and a removed key stop working at once. A member without
 * users.manage is not offered the page. The "Data governance" page sets a retention, places
 * and releases a legal hold, and erases a data subject (a contact in the CRM plugin) with the
 * report shown. axe-core on each page.
 */
import t from 'tap'
import { consoleExtension } from '@trellis/platform'
import { ManualClock } from '../../core/src/workflows/clock.js'
import { DB_KINDS, addUser, createTenantWithAdmin, startTestKernel } from '../../core/test/helpers/test-kernel.js'
import {
  installSubjectPlugins,
  plant,
  readBack,
  registerSubjectPlugins,
} from '../../core/test/helpers/subject-plugins.js'
import { consoleUser, openBrowser } from './browser.js'

const DAY = 86_400_000

t.test('governance in the console, in Chromium', async (t) => {
  const clock = new ManualClock(Date.now())
  const k = await startTestKernel(t, DB_KINDS[0]!, {
    extensions: [consoleExtension()],
    workflows: { clock },
    plugins: { sandboxWorkers: 1 },
    retention: { intervalMs: 0 },
  })
  const address = await k.kernel.app.listen({ port: 0, host: '127.0.0.1' })
  const base = address.replace('[::1]', '127.0.0.1')
  const shop = await createTenantWithAdmin(k, 'review-shop')
  const other = await createTenantWithAdmin(k, 'review-other')
  const clerk = await addUser(k, shop.token, 'clerk@review-shop.test', 'tenant_member')
  const key = await k.req('POST', '/v1/api-keys', {
    token: shop.token,
    body: { name: 'erp-sync', permissions: ['users.read'] },
  })
  t.equal(key.status, 201, JSON.stringify(key.body))
  const reviews = async () => (await k.req('GET', '/v1/governance/access-reviews', { token: shop.token })).body.items

  const page = await openBrowser(t)
  const { check, signIn, signOut, failing } = consoleUser(page, base)

  await t.test('no review before 90 days without use', async (t) => {
    await clock.advance(89 * DAY)
    t.same(await reviews(), [], 'the daily passes opened nothing yet')
    await signIn(shop.email, shop.password)
    await page.getByRole('link', { name: 'Access review' }).click()
    await page.getByText('No access review is open').waitFor()
    t.pass('the page says there is nothing to review')
  })

  await t.test('the review lists stale access; Keep and Remove decide it', async (t) => {
    await clock.advance(2 * DAY)
    const [review] = await reviews()
    t.match(review, { status: 'open', staleDays: 90 }, 'the daily pass opened a review')
    await page.reload()
    await page.getByRole('heading', { name: 'Access review' }).waitFor()
    const rows = page.getByRole('row')
    await rows.filter({ hasText: 'erp-sync' }).waitFor()
    t.same(
      (await rows.allInnerTexts()).slice(1).map((r) => r.split('\t').slice(0, 2).join(' | ')),
      [
        'API key: erp-sync | users.read',
        `Member: ${shop.email} | tenant_admin`,
        'Member: clerk@review-shop.test | tenant_member',
      ],
      'the stale key and memberships, with their permissions and roles',
    )
    await check('access review')

    await page.getByRole('button', { name: 'Remove clerk@review-shop.test' }).click()
    await page.getByRole('status').getByText('Removed clerk@review-shop.test: its access has ended.').waitFor()
    const gone = await k.req('GET', '/v1/users', { token: clerk.token })
    t.ok(gone.status === 401 || gone.status === 403, `the removed member's session no longer works (${gone.status})`)
    const clerkRow = rows.filter({ hasText: 'clerk@review-shop.test' })
    await clerkRow.getByText(/^Removed on \d{4}-\d\d-\d\d$/).waitFor()
    t.equal(await clerkRow.getByRole('button').count(), 0, 'the row shows the decision instead of its buttons')

    await page.getByRole('button', { name: 'Remove erp-sync' }).click()
    await page.getByRole('status').getByText('Removed erp-sync: its access has ended.').waitFor()
    t.equal(
      (await k.req('GET', '/v1/users', { token: key.body.key })).body.code,
      'AUTH_ERR_INVALID_API_KEY',
      'the removed key is revoked',
    )

    await page.getByRole('button', { name: `Keep ${shop.email}` }).click()
    await page.getByRole('status').getByText(`Kept ${shop.email}. The review is complete.`).waitFor()
    await page.getByText('No access review is open').waitFor()
    const [done] = await reviews()
    t.match(done, { id: review.id, status: 'completed', completedBy: /^user:/ }, 'the API shows it completed')
    t.same(
      done.items.map((i: { label: string; decision: string }) => `${i.label}:${i.decision}`).sort(),
      [`${shop.email}:keep`, 'clerk@review-shop.test:remove', 'erp-sync:remove'],
      'each decision recorded as clicked',
    )
    const otherReview = (await k.req('GET', '/v1/governance/access-reviews', { token: other.token })).body.items
    t.equal(otherReview[0]?.status, 'open', "the other tenant's review is untouched")
    await check('access review completed')
  })

  await t.test('data governance: retention, a legal hold, erasure of a contact', async (t) => {
    await registerSubjectPlugins(k)
    await installSubjectPlugins(k, shop.token, ['@acme/crm'])
    const ada = await plant(k, shop.token, '@acme/crm', {
      email: 'ada@example.test',
      name: 'Ada Lovelace',
      phone: '+44 20 7946 0018',
      tier: 'gold',
    })
    await page.getByRole('link', { name: 'Data governance' }).click()
    await page.getByRole('heading', { name: 'Data governance', level: 1 }).waitFor()
    const retention = async () =>
      (await k.req('GET', '/v1/governance/retention', { token: shop.token })).body.items.find(
        (r: { target: string }) => r.target === 'invocation-logs',
      )

    await page.getByLabel('Days to keep invocation-logs').fill('30')
    await page.getByRole('button', { name: 'Save invocation-logs' }).click()
    await page.getByRole('status').getByText('invocation-logs is now kept for 30 days.').waitFor()
    await page.getByRole('row').filter({ hasText: 'invocation-logs' }).getByText('30 days').waitFor()
    t.match(await retention(), { days: 30, effectiveDays: 30 }, 'the API keeps the days set on the page')

    await page.getByLabel('Reason').fill('Litigation 2026-114')
    await page.getByRole('button', { name: 'Place hold' }).click()
    const holdRow = page.getByRole('row').filter({ hasText: 'Litigation 2026-114' })
    await holdRow.getByText('the whole tenant').waitFor()
    const holds = async () => (await k.req('GET', '/v1/governance/legal-holds', { token: shop.token })).body.items
    t.match(await holds(), [{ target: null, reason: 'Litigation 2026-114', releasedAt: null }], 'the hold is placed')
    await check('data governance')
    await holdRow.getByRole('button', { name: 'Release Litigation 2026-114' }).click()
    await holdRow.getByText(/^Released on \d{4}-\d\d-\d\d$/).waitFor()
    t.match((await holds())[0].releasedAt, /^\d{4}-/, 'and released')

    await page.getByLabel('Subject kind').fill('supplier')
    await page.getByLabel('Identifier (e.g. an e-mail address)').fill('ada@example.test')
    await page.getByRole('button', { name: 'Erase' }).click()
    await page
      .getByRole('alert')
      .getByText(/no installed plugin has a collection field that identifies a "supplier"/)
      .waitFor()
    t.equal((await readBack(k, shop.token, '@acme/crm', ada.id)).body.name, 'Ada Lovelace', 'nothing erased')

    await page.getByLabel('Subject kind').fill('contact')
    await page.getByLabel('Identifier (e.g. an e-mail address)').fill('ada@example.test')
    await page.getByRole('button', { name: 'Erase' }).click()
    await page.getByRole('status').getByText('Erased: 1 records.').waitFor()
    await page.getByRole('cell', { name: '1 in @acme/crm/contacts' }).waitFor()
    const after = await readBack(k, shop.token, '@acme/crm', ada.id)
    t.same(
      Object.keys(after.body)
        .filter((f) => !['id', 'version', 'createdAt', 'updatedAt'].includes(f))
        .sort(),
      ['tier'],
      'her personal fields are gone; the internal one stays',
    )
    t.equal(
      (await page.getByLabel('Identifier (e.g. an e-mail address)').inputValue()) ?? '',
      '',
      'the form is cleared',
    )
    await check('data governance after erasure')
  })

  await t.test('a member without users.manage or governance.manage is not offered the pages', async (t) => {
    const viewer = await addUser(k, shop.token, 'viewer@review-shop.test', 'tenant_member')
    await signOut()
    await signIn('viewer@review-shop.test', viewer.password)
    await page.getByRole('link', { name: 'Task inbox' }).waitFor()
    t.equal(await page.getByRole('link', { name: 'Access review' }).count(), 0, 'no link to the page')
    t.equal(await page.getByRole('link', { name: 'Data governance' }).count(), 0, 'nor to data governance')
    const refused = await k.req('GET', '/v1/governance/access-reviews', { token: viewer.token })
    t.equal(refused.body.code, 'AUTH_ERR_FORBIDDEN', 'and the API refuses them')
  })

  t.same(failing(), {}, 'axe: no serious or critical violation on any page')
})
