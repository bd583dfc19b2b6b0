/**
 * The console in a real browser (Debian's Chromium through playwright-core), against one kernel
 * serving the built console: the platform admin approves a version from the review queue, and
 * creates, suspends and resumes a partner beside the system's health; the
 * tenant admin installs it with consent, meets a re-consent upgrade and rolls back, and sets an
 * installation's settings (the secret one write-only); the pricing
 * manager claims and completes a task from the inbox; the partner admin brands its tenants and
 * the tenant's console shows it; the partner admin creates, suspends and resumes a tenant; the
 * audit page shows these acts and the chain's verification (intact, then broken where an
 * attacker edited an entry). axe-core runs on every page
 * (no serious or critical violation); the login page's JavaScript stays under 200 kB gzipped.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { buildPlugin } from '@trellis/plugin-sdk'
import { createMarketplace } from '@trellis/marketplace'
import { consoleDist, consoleExtension, CONSOLE_CSP } from '@trellis/platform'
import {
  ADMIN,
  DB_KINDS,
  addUser,
  createTenantWithAdmin,
  startTestKernel,
} from '../../core/test/helpers/test-kernel.js'
import { registerVersion } from '../../core/test/helpers/plugin-versions.js'
import { eventually, startReceiver } from '../../core/test/helpers/receiver.js'
import { auditAttacks } from '../../core/test/helpers/audit-attacks.js'
import { consoleUser, openBrowser } from './browser.js'

const dir = join(import.meta.dirname, '../../core/test/fixtures/plugins/flows')
const manifest = JSON.parse(readFileSync(join(dir, 'trellis.plugin.json'), 'utf8'))
const built = await buildPlugin({ dir, write: false })

t.test('the console in Chromium', async (t) => {
  const k = await startTestKernel(t, DB_KINDS[0]!, {
    extensions: [createMarketplace(), consoleExtension()],
    plugins: { sandboxWorkers: 1 },
    events: { egressAllow: ['127.0.0.1'] },
  })
  const address = await k.kernel.app.listen({ port: 0, host: '127.0.0.1' })
  const base = address.replace('[::1]', '127.0.0.1')

  // Data: a partner with its admin, a tenant it manages, a pricing manager, and @acme/flows
  // 1.0.0 waiting in the review queue.
  const partner = await k.req('POST', '/v1/partners', {
    token: k.adminToken,
    body: {
      name: 'Acme Partner',
      slug: 'acme-partner',
      admin: { email: 'partner@acme.test', name: 'Partner admin', password: 'partner-password-1' },
    },
  })
  t.equal(partner.status, 201, 'partner created')
  const tenant = await createTenantWithAdmin(k, 'shop', { partnerId: partner.body.id })
  const v1 = await registerVersion(k, { manifest, code: built.code, sourceMap: built.sourceMap }, 'in_review')
  t.ok(v1)
  await k.req('POST', '/v1/roles', {
    token: tenant.token,
    body: { name: 'pricing_manager', permissions: ['users.read'] },
  })
  const pricing = await addUser(k, tenant.token, 'pricing@shop.test', 'pricing_manager')

  const page = await openBrowser(t)
  const { check, signIn, signOut, failing } = consoleUser(page, base)

  await t.test('served with a strict CSP, hashed assets cached for a year, / redirects', async (t) => {
    const root = await fetch(`${base}/`, { redirect: 'manual' })
    t.equal(root.status, 302)
    t.equal(root.headers.get('location'), '/console/')
    const html = await fetch(`${base}/console/inbox`)
    t.equal(html.status, 200, 'a client-side route answers the app')
    t.equal(html.headers.get('content-security-policy'), CONSOLE_CSP)
    t.notMatch(CONSOLE_CSP, /unsafe/)
    const body = await html.text()
    t.notMatch(body, /<script>(?!<\/script>)/, 'no inline script')
    const asset = /src="(\/console\/assets\/[^"]+\.js)"/.exec(body)?.[1]
    const js = await fetch(`${base}${asset}`)
    t.equal(js.status, 200)
    t.match(js.headers.get('cache-control'), /max-age=31536000, immutable/)
  })

  await t.test('the login page loads at most 200 kB of gzipped JavaScript', async (t) => {
    const html = readFileSync(join(consoleDist(), 'index.html'), 'utf8')
    const scripts = [...html.matchAll(/(?:src|href)="\/console\/(assets\/[^"]+\.js)"/g)].map((m) => m[1]!)
    t.ok(scripts.length >= 1)
    const bytes = scripts.reduce((n, s) => n + gzipSync(readFileSync(join(consoleDist(), s))).length, 0)
    t.ok(bytes <= 200 * 1024, `${(bytes / 1024).toFixed(1)} kB gzipped`)
    await page.goto(`${base}/console/`)
    await page.getByRole('heading', { name: /Sign in to Trellis/ }).waitFor()
    await check('login')
  })

  await t.test('platform admin approves from the review queue', async (t) => {
    await signIn(ADMIN.email, ADMIN.password)
    await page.getByRole('link', { name: 'Review queue' }).click()
    await page.getByRole('button', { name: /Open @acme\/flows 1\.0\.0/ }).click()
    await page.getByRole('dialog').waitFor()
    await check('review dialog')
    await page.getByLabel('Reason (shown to the publisher)').fill('Checked by hand')
    await page.getByRole('button', { name: 'Approve' }).click()
    await page.getByText('Approved @acme/flows 1.0.0.').waitFor()
    const [row] = await k.ownerSql('select status from plugin_versions where id = ?', [v1.id])
    t.equal(row.status, 'approved')
    // The kill switch: blocked everywhere with a reason, then unblocked.
    const status = async () => (await k.ownerSql('select status from plugin_versions where id = ?', [v1.id]))[0].status
    await page.getByLabel('Plugin', { exact: true }).selectOption('@acme/flows')
    await page.getByLabel('Reason for blocking').fill('Sends data where it should not')
    await page.getByRole('button', { name: 'Block 1.0.0 everywhere' }).click()
    await page.getByText('Blocked @acme/flows 1.0.0.').waitFor()
    t.equal(await status(), 'blocked')
    await check('kill switch')
    await page.getByRole('button', { name: 'Unblock 1.0.0' }).click()
    await page.getByText('Unblocked @acme/flows 1.0.0.').waitFor()
    t.equal(await status(), 'approved')

    // Partners and the system's health: a partner created with its admin, suspended, resumed.
    await page.getByRole('link', { name: 'Partners and system' }).click()
    await page
      .getByTestId('readiness')
      .getByText(/^Ready/)
      .waitFor()
    await page.getByRole('cell', { name: 'Acme Partner', exact: true }).waitFor()
    await page.getByLabel('Name', { exact: true }).fill('Beta Partner')
    await page.getByLabel('Slug', { exact: true }).fill('beta-partner')
    await page.getByLabel("Admin's email").fill('admin@beta.test')
    await page.getByLabel("Admin's name").fill('Beta admin')
    await page.getByLabel("Admin's first password").fill('beta-password-1')
    await page.getByRole('button', { name: 'Create partner' }).click()
    await page.getByText('Created Beta Partner.').waitFor()
    const beta = await k.login('admin@beta.test', 'beta-password-1')
    const betaMe = () => k.req('GET', '/v1/me', { token: beta.token })
    t.equal((await betaMe()).status, 200)
    await page.getByRole('button', { name: 'Suspend Beta Partner' }).click()
    await page
      .getByRole('dialog', { name: 'Suspend Beta Partner?' })
      .getByRole('button', { name: 'Suspend', exact: true })
      .click()
    await page.getByText('Suspended Beta Partner.').waitFor()
    const refused = await betaMe()
    t.equal(refused.status, 403, "the partner's admin is refused at once")
    t.match(refused.body.code, /^KRN_ERR_(PARTNER|TENANT)_SUSPENDED$/)
    await check('partners and system')
    await page.getByRole('button', { name: 'Resume Beta Partner' }).click()
    await page.getByText('Resumed Beta Partner.').waitFor()
    t.equal((await betaMe()).status, 200, 'and let in again')
    await signOut()
  })

  await t.test('tenant admin installs with consent, re-consents to an upgrade, rolls back', async (t) => {
    await signIn(tenant.email, tenant.password)
    await page.getByRole('link', { name: 'Marketplace' }).click()
    await page.getByRole('link', { name: '@acme/flows' }).click()
    await page.getByRole('heading', { name: '@acme/flows' }).waitFor()
    await check('plugin page')
    await page.getByRole('button', { name: 'Install 1.0.0' }).click()
    const dialog = page.getByRole('dialog')
    await dialog.getByText('Run workflows with tasks for your people').waitFor()
    await check('consent dialog')
    await dialog.getByRole('button', { name: 'Allow and install' }).click()
    await page.getByText('Installed @acme/flows 1.0.0.').waitFor()

    // 1.1.0 asks for one more capability: the upgrade waits for re-consent.
    const m2 = { ...manifest, version: '1.1.0', capabilities: [...manifest.capabilities, 'secrets'] }
    await registerVersion(k, { manifest: m2, code: built.code, sourceMap: built.sourceMap })
    const inst = (await k.req('GET', '/v1/installations', { token: tenant.token })).body.items[0]
    const up = await k.req('POST', `/v1/installations/${inst.id}/upgrade`, {
      token: tenant.token,
      body: { version: '1.1.0' },
    })
    t.ok(up.status < 300, `upgrade requested (${up.status})`)
    await page.getByRole('link', { name: 'Installed plugins' }).click()
    await page.getByText('Version 1.1.0 waits for your consent').waitFor()
    await check('installations')
    await page.getByRole('button', { name: 'Review and upgrade' }).click()
    await page.getByRole('dialog').getByText('New: Keep secret settings').waitFor()
    await page.getByRole('button', { name: 'Allow and upgrade' }).click()
    await page.getByText('Version 1.1.0', { exact: true }).waitFor()
    await page.getByRole('button', { name: 'Roll back to 1.0.0' }).click()
    await page.getByText('Version 1.0.0', { exact: true }).waitFor()
    t.equal((await k.req('GET', '/v1/installations', { token: tenant.token })).body.items[0].version, '1.0.0')
    await signOut()
  })

  await t.test('the pricing manager claims and completes a task from the inbox', async (t) => {
    const started = await k.req('POST', '/v1/workflows/instances', {
      token: tenant.token,
      body: { plugin: '@acme/flows', workflow: 'order', input: { orderId: 'O-1', discount: 0.3, slaMs: 3_600_000 } },
    })
    t.equal(started.status, 201)
    const task = await eventually(async () => {
      const [row] = await k.ownerSql('select * from workflow_tasks where instance_id = ?', [started.body.id])
      return row
    }, 20_000)
    await signIn(pricing.user.email, pricing.password)
    await page.getByRole('heading', { name: 'Task inbox' }).waitFor()
    await page.getByRole('button', { name: new RegExp(`Open ${task.title}`) }).click()
    await check('task dialog')
    await page.getByRole('button', { name: 'Claim' }).click()
    await page.getByLabel(/note/).fill('Margin is fine')
    await page.getByRole('button', { name: /Complete as/ }).click()
    await page.getByText(/Task completed:/).waitFor()
    const [done] = await k.ownerSql('select status, completed_by from workflow_tasks where id = ?', [task.id])
    t.equal(done.status, 'completed')
    t.equal(done.completed_by, pricing.user.id)
    await check('inbox')
    await signOut()
  })

  await t.test('a plugin screen declared in its manifest: list, create form, detail', async (t) => {
    const notesDir = join(import.meta.dirname, '../../core/test/fixtures/plugins/notes')
    const notes = JSON.parse(readFileSync(join(notesDir, 'trellis.plugin.json'), 'utf8'))
    notes.console = {
      pages: [
        {
          id: 'notes',
          title: 'Notes',
          list: {
            route: 'GET /notes',
            columns: [{ field: 'title', label: 'Title' }],
            filters: [{ param: 'tag', label: 'Tag' }],
          },
          detail: { route: 'GET /notes/:id' },
          create: { label: 'New note', route: 'POST /notes' },
        },
      ],
    }
    const nb = await buildPlugin({ dir: notesDir, write: false })
    await registerVersion(k, { manifest: notes, code: nb.code, sourceMap: nb.sourceMap })
    const installed = await k.req('POST', '/v1/installations', {
      token: tenant.token,
      body: { plugin: notes.name, version: notes.version, capabilities: notes.capabilities },
    })
    t.equal(installed.status, 201)
    await signIn(tenant.email, tenant.password)
    await page.getByRole('link', { name: 'Notes' }).click()
    await page.getByRole('heading', { name: 'Notes' }).waitFor()
    await page.getByRole('button', { name: 'New note' }).click()
    await page.getByRole('dialog').getByLabel(/title/).fill('Call the supplier')
    await page.getByRole('dialog').getByRole('button', { name: 'New note' }).click()
    await page.getByRole('cell', { name: 'Call the supplier' }).waitFor()
    await check('plugin screen')
    await page
      .getByRole('button', { name: /^Open / })
      .first()
      .click()
    await page
      .getByTestId('plugin-item')
      .getByText(/Call the supplier/)
      .waitFor()
    await page.keyboard.press('Escape')
    await signOut()
  })

  await t.test('installation settings: a secret setting is write-only', async (t) => {
    await signIn(tenant.email, tenant.password)
    await page.getByRole('link', { name: 'Installed plugins' }).click()
    const open = () => page.getByRole('button', { name: 'Settings @acme/notes' }).click()
    await open()
    const dialog = page.getByRole('dialog', { name: 'Settings of @acme/notes' })
    await dialog.getByTestId('setting-apiToken-note').getByText('No value yet.').waitFor()
    await dialog.getByLabel('greeting').fill('Hello from the shop')
    await dialog.getByLabel('apiToken').fill('tok-never-shown-123')
    await dialog.getByRole('button', { name: 'Save settings' }).click()
    await page.getByText('Settings of @acme/notes saved.').waitFor()
    const inst = async () =>
      (await k.req('GET', '/v1/installations', { token: tenant.token })).body.items.find(
        (i: { plugin: string }) => i.plugin === '@acme/notes',
      )
    t.same((await inst()).settings, { greeting: 'Hello from the shop' }, 'the secret is not answered')
    t.same((await inst()).secrets, ['apiToken'], 'but it is kept')

    await open()
    await dialog
      .getByTestId('setting-apiToken-note')
      .getByText(/A value is kept/)
      .waitFor()
    t.equal(await dialog.getByLabel('greeting').inputValue(), 'Hello from the shop')
    t.equal(await dialog.getByLabel('apiToken').inputValue(), '', 'the secret field starts empty')
    t.notMatch(await page.content(), /tok-never-shown-123/, 'and its value is nowhere in the page')
    await check('installation settings')
    // The first save's notice went when the dialog opened: the next notice is the second save's.
    await page.getByText('Settings of @acme/notes saved.').waitFor({ state: 'detached' })
    await dialog.getByLabel('greeting').fill('Hello again')
    await dialog.getByRole('button', { name: 'Save settings' }).click()
    await page.getByText('Settings of @acme/notes saved.').waitFor()
    t.same((await inst()).secrets, ['apiToken'], 'saving without typing a secret keeps it')
    t.equal((await inst()).settings.greeting, 'Hello again')
    await signOut()
  })

  await t.test("the partner admin brands its tenants and the tenant's console shows it", async (t) => {
    await signIn('partner@acme.test', 'partner-password-1')
    await page.getByRole('link', { name: 'Tenants' }).click()
    await page.getByRole('cell', { name: 'shop', exact: true }).first().waitFor()
    await page.getByLabel('Display name').fill('Acme Wholesale')
    await page.getByLabel('Primary colour').fill('#1d4f91')
    await page.getByRole('button', { name: 'Save branding' }).click()
    await page.getByText('Branding saved.').waitFor()
    await check('tenants')
    await signOut()
    await signIn(tenant.email, tenant.password)
    t.equal(await page.getByTestId('brand-name').textContent(), 'Acme Wholesale')
    t.equal(await page.title(), 'Acme Wholesale')
    t.notMatch(await page.locator('body').innerText(), /Trellis/, "no trace of the platform's name")
  })

  await t.test('the partner admin creates a tenant, suspends it (its access stops) and resumes it', async (t) => {
    await signOut()
    await signIn('partner@acme.test', 'partner-password-1')
    await page.getByRole('link', { name: 'Tenants' }).click()
    await page.getByLabel('Name', { exact: true }).fill('Acme Outlet')
    await page.getByLabel('Slug', { exact: true }).fill('acme-outlet')
    await page.getByLabel("Admin's email").fill('admin@outlet.test')
    await page.getByLabel("Admin's name").fill('Outlet admin')
    await page.getByLabel("Admin's first password").fill('outlet-password-1')
    await page.getByRole('button', { name: 'Create tenant' }).click()
    await page.getByText('Created Acme Outlet.').waitFor()
    const status = async () =>
      (await k.ownerSql(`select partner_id, status from tenants where slug = 'acme-outlet'`))[0] as {
        partner_id: string
        status: string
      }
    t.same(await status(), { partner_id: partner.body.id, status: 'active' }, 'a tenant of the partner')
    const outlet = await k.login('admin@outlet.test', 'outlet-password-1')
    const me = () => k.req('GET', '/v1/me', { token: outlet.token })
    t.equal((await me()).status, 200, "its admin's session works")

    await page.getByRole('button', { name: 'Suspend Acme Outlet' }).click()
    const dialog = page.getByRole('dialog', { name: 'Suspend Acme Outlet?' })
    await dialog.getByText('All of its access stops at once').waitFor()
    await check('suspend dialog')
    await dialog.getByRole('button', { name: 'Suspend', exact: true }).click()
    await page.getByText('Suspended Acme Outlet.').waitFor()
    await page.getByRole('button', { name: 'Resume Acme Outlet' }).waitFor()
    t.equal((await status()).status, 'suspended')
    const refused = await me()
    t.equal(refused.status, 403)
    t.equal(refused.body.code, 'KRN_ERR_TENANT_SUSPENDED', 'its admin is refused at once')

    await page.getByRole('button', { name: 'Resume Acme Outlet' }).click()
    await page.getByText('Resumed Acme Outlet.').waitFor()
    t.equal((await status()).status, 'active')
    t.equal((await me()).status, 200, 'and let in again')
    await signOut()
    await signIn(tenant.email, tenant.password)
  })

  await t.test('the tenant admin creates an API key, shown once', async (t) => {
    await page.getByRole('link', { name: 'Users, keys and webhooks' }).click()
    await page.getByRole('cell', { name: tenant.email, exact: true }).waitFor()
    await page.getByLabel('Key name').fill('reporting')
    await page.getByLabel('Permissions (comma-separated)').fill('audit.read')
    await page.getByRole('button', { name: 'Create key' }).click()
    const key = (await page.getByTestId('new-api-key').textContent()) ?? ''
    t.ok(key.length > 20, 'the key is shown')
    await check('access')
    await page.keyboard.press('Escape')
    await page.getByRole('button', { name: 'Revoke reporting' }).waitFor()
    t.notMatch(await page.locator('main').innerText(), key, 'and never again')
    const me = await fetch(`${base}/v1/me`, { headers: { authorization: `Bearer ${key}` } })
    t.equal(me.status, 200, 'the key works')
  })

  await t.test('the tenant admin makes a custom role, gives it to a member, and a webhook tells of it', async (t) => {
    const rx = await startReceiver()
    t.teardown(rx.close)
    await page.getByLabel('Endpoint URL').fill(rx.url)
    await page.getByLabel('Event types (comma-separated)').fill('kernel.role.created')
    await page.getByRole('button', { name: 'Add webhook' }).click()
    const secret = (await page.getByTestId('new-webhook-secret').textContent()) ?? ''
    t.match(secret, /^whsec_/, 'the signing secret is shown')
    await page.keyboard.press('Escape')
    t.notMatch(await page.locator('main').innerText(), secret, 'and never again')

    await page.getByLabel('Role name').fill('auditor')
    await page.getByLabel('Description').fill('Reads the audit trail')
    await page.getByLabel('Permissions of the role (comma-separated)').fill('audit.read, users.read')
    await page.getByRole('button', { name: 'Create role' }).click()
    await page.getByText('Created the role auditor.').waitFor()
    await page.getByRole('cell', { name: 'audit.read, users.read' }).waitFor()
    const member = await addUser(k, tenant.token, 'member@shop.test', 'pricing_manager')
    await page.reload()
    await page.getByLabel('Role of member@shop.test').selectOption('auditor')
    await page.getByRole('button', { name: 'Change role member@shop.test' }).click()
    await page.getByText('member@shop.test is now auditor.').waitFor()
    const users = (await k.req('GET', '/v1/users', { token: tenant.token })).body.items
    t.equal(users.find((u: { email: string }) => u.email === 'member@shop.test').role, 'auditor')
    const fresh = await k.login(member.user.email, member.password, tenant.tenant.id)
    t.equal((await k.req('GET', '/v1/audit', { token: fresh.token })).status, 200, 'the role grants what it lists')

    // The webhook received the role's creation; its delivery log shows it, and it is delivered again on request.
    const [first] = await rx.until((r) => r.some((x) => x.body.includes('"auditor"')))
    t.ok(first)
    await page.getByRole('button', { name: `Deliveries ${rx.url}` }).click()
    const log = page.getByRole('dialog', { name: 'Deliveries' })
    await log.getByRole('cell', { name: 'kernel.role.created' }).first().waitFor()
    await check('webhook deliveries')
    const before = rx.received.length
    await log.getByRole('button', { name: 'Redeliver' }).first().click()
    await page.getByText('Delivery queued again.').waitFor()
    const again = await rx.until((r) => r.length > before)
    t.equal(
      again.at(-1)!.headers['webhook-id'],
      rx.received[before - 1]!.headers['webhook-id'],
      'the same message again',
    )
    await page.keyboard.press('Escape')
  })

  await t.test('the audit page shows what was done', async (t) => {
    await page.getByRole('link', { name: 'Audit trail' }).click()
    await page.getByRole('heading', { name: 'Audit trail' }).waitFor()
    for (const action of ['plugin.installed', 'auth.login.succeeded']) {
      await page.getByLabel('Action (or prefix ending in “.”)').fill(`${action.split('.')[0]}.`)
      await page.getByRole('button', { name: 'Filter' }).click()
      await page
        .getByRole('cell', { name: new RegExp(`^${action.split('.')[0]}\\.`) })
        .first()
        .waitFor()
    }
    const text = await page.locator('table').innerText()
    t.match(text, /auth\.login\.succeeded/)
    await check('audit')

    // The chain's verification: intact, then — after an attacker with owner access edits an
    // entry — broken at that entry.
    await k.kernel.ctx.sealer.flush()
    await page.getByRole('button', { name: 'Verify the chain' }).click()
    await page.getByText(/^Chain intact: [1-9]\d* sealed entries verified, head #\d+/).waitFor()
    const { tamper } = auditAttacks(t, k)
    await tamper(`update audit_log set data = '{"name":"innocent"}' where tenant_id = ?::uuid and seq = 2`, [
      tenant.tenant.id,
    ])
    await page.getByRole('button', { name: 'Verify the chain' }).click()
    await page
      .getByRole('alert')
      .getByText(/^Chain broken at entry #2: /)
      .waitFor()
    await check('audit verified')
    const notAuditor = await k.req('GET', '/v1/audit/verify', { token: pricing.token })
    t.equal(notAuditor.body.code, 'AUTH_ERR_FORBIDDEN', 'verifying needs audit.read')
  })

  t.same(failing(), {}, 'axe: no serious or critical violation on any page')
})
