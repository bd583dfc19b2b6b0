/**
 * Single sign-on through the console, in Chromium, against a real OpenID provider on loopback
 * (oidc-provider): the tenant admin sets up the provider on the Single sign-on page (the client
 * secret write-only: never shown back, kept when a later save leaves it empty); a person of the
 * SSO organisation clicks "Sign in with SSO", names the
 * organisation, signs in at the provider and lands back in the console signed in — a member
 * made just in time with the role the provider's groups map to — and a reload keeps the session
 * (the HttpOnly refresh cookie the hand-over set). The SSO-only organisation's password sign-in
 * is refused on the page with the kernel's error; a replayed or forged hand-over code is refused.
 * axe-core on the new pages.
 */
import { createServer } from 'node:net'
import t from 'tap'
import { consoleExtension } from '@trellis/platform'
import { DB_KINDS, createTenantWithAdmin, startTestKernel } from '../../core/test/helpers/test-kernel.js'
import { startOidcProvider } from '../../core/test/helpers/oidc-provider.js'
import { eventually } from '../../core/test/helpers/receiver.js'
import { consoleUser, openBrowser } from './browser.js'

/** A loopback port nothing listens on: the kernel's public URL (the provider's redirect URI) must be known first. */
const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })

t.test('single sign-on through the console, in Chromium', async (t) => {
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const idp = await startOidcProvider(`${base}/v1/auth/sso/callback`)
  t.teardown(idp.close)
  const k = await startTestKernel(t, DB_KINDS[0]!, {
    extensions: [consoleExtension()],
    env: { TRELLIS_PUBLIC_URL: base },
    events: { egressAllow: ['127.0.0.1'] },
  })
  await k.kernel.app.listen({ port, host: '127.0.0.1' })
  const shop = await createTenantWithAdmin(k, 'sso-console-shop')
  const domain = 'sso-console-shop.test'
  const email = `ada@${domain}`
  idp.accounts.set('ada', { email, name: 'Ada Lovelace', groups: ['erp-admins'] })

  const page = await openBrowser(t)
  const { check, failing, signIn, signOut } = consoleUser(page, base)
  const exchanged: string[] = []
  page.on('request', (r) => {
    if (r.url().endsWith('/v1/auth/sso/exchange')) exchanged.push(JSON.parse(r.postData() ?? '{}').code)
  })

  await t.test('the tenant admin sets up the provider on the Single sign-on page', async (t) => {
    await signIn(shop.email, shop.password)
    await page.getByRole('link', { name: 'Single sign-on' }).click()
    await page.getByText('No identity provider: people sign in with a password.').waitFor()
    t.equal(await page.getByTestId('sso-link').innerText(), `${base}/console/?org=${shop.orgId}`)
    await page.getByLabel('Issuer URL').fill(idp.issuer)
    await page.getByLabel('Client ID').fill(idp.clientId)
    await page.getByLabel('Client secret').fill(idp.clientSecret)
    await page.getByLabel('E-mail domains it may vouch for (comma-separated)').fill(domain)
    await page.getByLabel('Claim holding roles or groups').fill('groups')
    await page.getByLabel('Claim values to roles').fill('erp-admins = tenant_admin')
    await page.getByLabel('Role when no value maps').selectOption('tenant_member')
    await check('sso settings')
    await page.getByRole('button', { name: 'Save provider' }).click()
    await page.getByText('Identity provider saved.').waitFor()
    await page.getByText('People of your organisation may sign in with your identity provider.').waitFor()
    t.equal(await page.getByLabel('Client secret').inputValue(), '', 'the secret is never shown back')
    t.notMatch(await page.locator('main').innerText(), idp.clientSecret)
    t.match(await page.getByTestId('sso-secret-hint').innerText(), /A secret is stored/)
    // Made SSO-only in a second save, the secret left empty: the stored one is kept (the
    // sign-in below exchanges the provider's code with it).
    await page.getByLabel('Only single sign-on (refuse password sign-ins)').check()
    await page.getByRole('button', { name: 'Save provider' }).click()
    await eventually(
      async () =>
        (await page.getByLabel('Only single sign-on (refuse password sign-ins)').isChecked()) &&
        (await k.req('GET', '/v1/identity/sso', { token: shop.token })).body.ssoOnly,
    )
    const saved = await k.req('GET', '/v1/identity/sso', { token: shop.token })
    t.same(saved.body, {
      issuer: idp.issuer.replace(/\/+$/, ''),
      clientId: idp.clientId,
      allowedDomains: [domain],
      roleClaim: 'groups',
      roleMap: { 'erp-admins': 'tenant_admin' },
      defaultRole: 'tenant_member',
      ssoOnly: true,
      enabled: true,
    })
    await signOut()
  })

  await t.test('the SSO-only organisation refuses a password sign-in on the page', async (t) => {
    await page.goto(`${base}/console/`)
    await page.getByLabel('Email').fill(shop.email)
    await page.getByLabel('Password').fill(shop.password)
    await page.getByRole('button', { name: 'Sign in', exact: true }).click()
    const alert = page.getByRole('alert')
    await alert.waitFor()
    t.match(await alert.textContent(), /this organisation signs in only with its identity provider/)
    t.equal(await page.getByRole('button', { name: 'Sign out' }).count(), 0, 'not signed in')
  })

  await t.test('sign in with SSO: to the provider and back, a member just in time', async (t) => {
    await page.goto(`${base}/console/`)
    await page.getByRole('button', { name: 'Sign in with SSO' }).click()
    await page.getByLabel('Organisation ID').fill('not-an-organisation')
    await page.getByRole('button', { name: 'Continue to your identity provider' }).click()
    await page.getByText('An organisation ID looks like').waitFor()
    await check('sso sign-in')
    await page.getByLabel('Organisation ID').fill(shop.orgId)
    await page.getByRole('button', { name: 'Continue to your identity provider' }).click()

    // At the provider: its own sign-in page, then its consent page.
    await page.locator('input[name="login"]').waitFor()
    t.ok(page.url().startsWith(idp.issuer), `at the provider: ${page.url()}`)
    await page.locator('input[name="login"]').fill('ada')
    await page.locator('input[name="password"]').fill('any')
    await page.locator('button[type="submit"]').first().click()
    await page.getByRole('button', { name: 'Continue' }).click()

    await page.getByRole('button', { name: 'Sign out' }).waitFor()
    t.match(new URL(page.url()).pathname, /^\/console\/(?!sso-callback)/, `back in the console: ${page.url()}`)
    t.equal(new URL(page.url()).hash, '', 'the code is gone from the address')
    await page.getByText(`Signed in as ${email} (sso-console-shop)`).waitFor()
    const [member] = await k.ownerSql(
      `select r.name as role from memberships m join users u on u.id = m.user_id join roles r on r.id = m.role_id
        where lower(u.email) = lower(?) and m.tenant_id = ?::uuid`,
      [email, shop.orgId],
    )
    t.equal(member?.role, 'tenant_admin', "a member just in time, with the role the provider's groups map to")
    const cookies = await page.context().cookies(`${base}/v1/auth/refresh`)
    const refresh = cookies.find((c) => c.name === 'trellis_refresh')
    t.ok(refresh?.httpOnly, 'the refresh token is in an HttpOnly cookie')
    t.equal(refresh?.sameSite, 'Strict')
    t.ok(
      cookies.find((c) => c.name === 'trellis_csrf'),
      'with its double-submit CSRF token',
    )

    await page.reload()
    await page.getByText(`Signed in as ${email} (sso-console-shop)`).waitFor()
    t.pass('a reload keeps the session')
  })

  await t.test('a replayed or forged hand-over code is refused', async (t) => {
    t.equal(exchanged.length, 1, 'the console exchanged the code once')
    const replay = await k.req('POST', '/v1/auth/sso/exchange', {
      body: { code: exchanged[0] },
      headers: { 'x-trellis-session': 'cookie' },
    })
    t.equal(replay.status, 401)
    t.equal(replay.body.code, 'AUTH_ERR_SSO_CODE_INVALID')
    t.notOk(replay.headers['set-cookie'], 'no session cookie for a refused code')
    const forgedCode = `trs_${shop.orgId.replace(/-/g, '')}_${'A'.repeat(43)}`
    const forged = await k.req('POST', '/v1/auth/sso/exchange', { body: { code: forgedCode } })
    t.equal(forged.body.code, 'AUTH_ERR_SSO_CODE_INVALID')

    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.getByRole('button', { name: 'Sign in', exact: true }).waitFor()
    await page.goto(`${base}/console/sso-callback#sso_code=${forgedCode}`)
    const alert = page.getByRole('alert')
    await alert.waitFor()
    t.match(await alert.textContent(), /Single sign-on failed: .+/)
    t.notOk(new URL(page.url()).hash, 'the code left the address bar')
    await check('sso callback error')
    await page.getByRole('link', { name: 'Back to sign-in' }).click()
    await page.getByRole('button', { name: 'Sign in with SSO' }).waitFor()
  })

  await t.test('an address the organisation does not accept: the console says the sign-in was refused', async (t) => {
    idp.accounts.set('eve', { email: 'eve@elsewhere.test', groups: ['erp-admins'] })
    await page.context().clearCookies() // the provider's own session too: sign in there afresh
    await page.goto(`${base}/console/?org=${shop.orgId}`)
    await page.getByRole('button', { name: 'Continue to your identity provider' }).click()
    await page.locator('input[name="login"]').fill('eve')
    await page.locator('input[name="password"]').fill('any')
    await page.locator('button[type="submit"]').first().click()
    await page.getByRole('button', { name: 'Continue' }).click()
    const alert = page.getByRole('alert')
    await alert.waitFor()
    t.match(await alert.textContent(), /Single sign-on failed: the sign-in was refused/)
    t.equal(new URL(page.url()).pathname, '/console/sso-callback')
    t.equal(
      (await k.ownerSql('select count(*)::int as n from users where email = ?', ['eve@elsewhere.test']))[0].n,
      0,
      'no account was made',
    )
  })

  await t.test("the organisation's sign-in link opens single sign-on with the organisation filled in", async (t) => {
    await page.goto(`${base}/console/?org=${shop.orgId}`)
    t.equal(await page.getByLabel('Organisation ID').inputValue(), shop.orgId)
  })

  t.same(failing(), {}, 'no serious or critical axe violation on the sign-in and callback pages')
})
