/**
 * The partner admin's pages in Chromium, against one kernel with the marketplace: on Publishing
 * it claims a scope and registers its signing key; the versions it publishes show their check
 * results and the reviewer's decisions (approved, rejected, with the reasons); its plugin's
 * health across tenants shows invocations, errors and latency once a tenant runs it (never to a
 * tenant or another partner); a revoked key no longer publishes. On Channel catalog it offers its
 * tenants one plugin of the two listed, and the tenant's marketplace shows only that one under
 * the catalog's name. axe-core on every page.
 */
import t from 'tap'
import { createMarketplace } from '@trellis/marketplace'
import { consoleExtension } from '@trellis/platform'
import { DB_KINDS, createTenantWithAdmin, startTestKernel } from '../../core/test/helpers/test-kernel.js'
import { eventually } from '../../core/test/helpers/receiver.js'
import { builtFixture, registerVersion } from '../../core/test/helpers/plugin-versions.js'
import { checked, createPartner, publish } from '../../marketplace/test/fixtures/publishing-suite.js'
import { manifestOf, newSigner, realPackage } from '../../marketplace/test/fixtures/packages.js'
import { consoleUser, openBrowser } from './browser.js'

t.test('the partner admin publishes and curates, in Chromium', async (t) => {
  const market = createMarketplace()
  const k = Object.assign(
    await startTestKernel(t, DB_KINDS[0]!, {
      extensions: [market, consoleExtension()],
      plugins: { sandboxWorkers: 1 },
    }),
    { market },
  )
  const address = await k.kernel.app.listen({ port: 0, host: '127.0.0.1' })
  const base = address.replace('[::1]', '127.0.0.1')
  const acme = await createPartner(k, 'acme-publisher')
  const other = await createPartner(k, 'other-publisher')
  const shop = await createTenantWithAdmin(k, 'acme-shop', { partnerId: acme.id })
  // Another listed plugin, which the catalog will leave out.
  const tools = await builtFixture('notes')
  await registerVersion(k, { ...tools, manifest: { ...tools.manifest, name: '@other/tools', version: '2.0.0' } })
  const signer = await newSigner()
  const old = await newSigner()

  const page = await openBrowser(t)
  const { check, signIn, failing } = consoleUser(page, base)
  await signIn('admin@acme-publisher.test', 'password-of-acme-publisher')

  await t.test('a scope claimed and signing keys registered on the Publishing page', async (t) => {
    await page.getByRole('link', { name: 'Publishing' }).click()
    await page.getByText('No scope yet').waitFor()
    await page.getByLabel('Scope (@name)').fill('@acme')
    await page.getByRole('button', { name: 'Claim scope' }).click()
    await page.getByText('Scope @acme is yours.').waitFor()
    await page.getByTestId('scopes').getByText('@acme').waitFor()
    for (const [name, key] of [
      ['old-laptop', old],
      ['release-2026', signer],
    ] as const) {
      await page.getByLabel('Key name').fill(name)
      await page.getByLabel('Public key (PEM)').fill(key.publicKeyPem)
      await page.getByRole('button', { name: 'Register key' }).click()
      await page.getByText(`Key ${name} registered (${key.fingerprint}).`).waitFor()
    }
    const keys = await k.req('GET', '/v1/marketplace/keys', { token: acme.token })
    t.same(
      keys.body.items.map((x: { name: string; fingerprint: string; status: string }) => [
        x.name,
        x.fingerprint,
        x.status,
      ]),
      [
        ['old-laptop', old.fingerprint, 'active'],
        ['release-2026', signer.fingerprint, 'active'],
      ],
    )
    // The old key is revoked after a confirmation; a package signed with it no longer publishes.
    await page.getByRole('button', { name: 'Revoke old-laptop' }).click()
    await page.getByRole('dialog', { name: 'Revoke old-laptop?' }).waitFor()
    await page.getByRole('button', { name: 'Revoke the key' }).click()
    await page.getByText('Key old-laptop revoked.').waitFor()
    const refused = await publish(
      k,
      acme.token,
      '@acme/notes',
      await realPackage(old, await manifestOf('@acme/notes', '0.9.0')),
    )
    t.equal(refused.body?.code, 'MKT_ERR_KEY_REVOKED', 'the revoked key signs nothing more')
  })

  await t.test('versions with their check results and review decisions', async (t) => {
    const decide = async (version: string, decision: 'approve' | 'reject', reason: string, edit = (_: any) => {}) => {
      const sent = await publish(
        k,
        acme.token,
        '@acme/notes',
        await realPackage(signer, await manifestOf('@acme/notes', version, edit)),
      )
      t.equal(sent.status, 202, JSON.stringify(sent.body))
      t.equal((await checked(k, sent.body.id)).status, 'in_review')
      const r = await k.req('POST', `/v1/marketplace/versions/${sent.body.id}/${decision}`, {
        token: k.adminToken,
        body: { reason },
      })
      t.equal(r.status, 200, JSON.stringify(r.body))
    }
    await decide('1.0.0', 'approve', 'clear and small')
    await decide('1.1.0', 'reject', 'the new egress host is not explained', (m) => {
      m.capabilities = [...m.capabilities, 'http:fetch:api.example.com']
    })
    await page.reload()
    const v1 = page.getByTestId('version-@acme/notes@1.0.0')
    const v11 = page.getByTestId('version-@acme/notes@1.1.0')
    await v1.getByText('Approved: clear and small').waitFor()
    await v11.getByText('Rejected: the new egress host is not explained').waitFor()
    t.match(await v11.innerText(), /Rejected/, 'the state is in words')
    t.match(await v1.innerText(), /\d+ passed, \d+ warnings, 0 failed/, "the checks' outcome in one line")
    await v1.locator('summary').click()
    await v1.getByText('signature: passed').waitFor()
    const rows = await page.getByTestId('published-versions').locator('tbody tr').allInnerTexts()
    t.match(rows[0], /1\.1\.0/, 'newest first')
    await check('publishing')
  })

  await t.test("the plugin's health across tenants: invocations, errors, latency", async (t) => {
    const manifest = await manifestOf('@acme/notes', '1.0.0')
    const install = await k.req('POST', '/v1/installations', {
      token: shop.token,
      body: { plugin: '@acme/notes', version: '1.0.0', capabilities: manifest.capabilities },
    })
    t.equal(install.status, 201, JSON.stringify(install.body))
    t.equal((await k.req('POST', '/v1/x/notes/notes', { token: shop.token, body: { title: 'a' } })).status, 201)
    const failed = await k.req('POST', '/v1/x/notes/notes', { token: shop.token, body: { title: 'b', fail: true } })
    t.equal(failed.body.code, 'SBX_ERR_PLUGIN_ERROR', 'the plugin failed this one')
    // Three invocations: the two routes, and the plugin's handler of the event the first one emitted.
    const health = async (token: string, query = '') =>
      (await k.req('GET', `/v1/plugins/@acme/notes/health${query}`, { token })).body
    await eventually(async () => (await health(acme.token)).versions?.[0]?.invocations === 3)
    await page.reload()
    const table = page.getByTestId('plugin-health')
    await table.waitFor()
    const [row] = await table.locator('tbody tr').allInnerTexts()
    t.match(row, /^1\.0\.0\s+3\s+1 \(33\.3 %\)\s+[\d.]+ ms\s+[\d.]+ ms\s+[\d.]+ ms\s+1$/, JSON.stringify(row))
    await check('plugin health')
    // Only its publisher (and the platform) reads it: not the tenant running it, not another partner.
    for (const token of [shop.token, other.token]) t.equal((await health(token)).code, 'KRN_ERR_NOT_FOUND')
    const platform = await health(k.adminToken, '?hours=1')
    t.same(
      platform.versions.map((v: { version: string; invocations: number; errors: number }) => [
        v.version,
        v.invocations,
        v.errors,
      ]),
      [['1.0.0', 3, 1]],
    )
    t.notMatch(JSON.stringify(platform), shop.tenant.id, 'no tenant named')
  })

  await t.test('the channel catalog offers one plugin; the tenant sees only it', async (t) => {
    await page.getByRole('link', { name: 'Channel catalog' }).click()
    await page.getByLabel('Catalog name (empty: the platform’s)').fill('Acme apps')
    await page.getByLabel('Only the plugins chosen below').check()
    t.ok(await page.getByLabel('@other/tools').isVisible(), 'plugins outside the catalog are offered to choose')
    await page.getByLabel('@acme/notes').check()
    await check('channel catalog')
    await page.getByRole('button', { name: 'Save catalog' }).click()
    await page.getByText('Saved: your tenants may install 1 chosen plugins.').waitFor()
    const catalog = await k.req('GET', '/v1/marketplace/catalog', { token: shop.token })
    t.same(catalog.body, { partnerId: acme.id, displayName: 'Acme apps', mode: 'allow_list', plugins: ['@acme/notes'] })
    // The tenant cannot look past its partner's catalog, even by asking.
    for (const q of ['', '?uncurated=true']) {
      const listed = await k.req('GET', `/v1/marketplace/plugins${q}`, { token: shop.token })
      t.same(listed.body.catalog, { displayName: 'Acme apps' })
      t.same(
        listed.body.items.map((p: { name: string }) => p.name),
        ['@acme/notes'],
      )
    }
    // The partner's page keeps its choice.
    await page.reload()
    t.ok(await page.getByLabel('@acme/notes').isChecked(), 'the chosen plugin stays chosen')
    t.notOk(await page.getByLabel('@other/tools').isChecked())
  })

  t.same(failing(), {}, 'axe: no serious or critical violation on any page')
})
