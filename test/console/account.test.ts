/**
 * The account pages in Chromium, against a kernel that sends mail to a real SMTP server on
 * loopback: an invited person follows the e-mailed link, joins with a new account and signs in;
 * a person who forgot their password asks for a link from the sign-in page, follows
 * the e-mailed link (the kernel's /reset-password sends it to the console), chooses a new
 * password and signs in with it (the old one no longer works); then sets up an authenticator
 * on their account page and is asked for its code at the next sign-in, and changes their password
 * there (the old one is refused from then on). axe-core on each page.
 */
import t from 'tap'
import { Secret, TOTP } from 'otpauth'
import { consoleExtension } from '@trellis/platform'
import { DB_KINDS, createTenantWithAdmin, startTestKernel } from '../../core/test/helpers/test-kernel.js'
import { startSmtpServer, textOf, tokenIn } from '../../core/test/helpers/smtp-server.js'
import { consoleUser, openBrowser } from './browser.js'

const code = (secret: string, at: number) =>
  TOTP.generate({ secret: Secret.fromBase32(secret), period: 30, digits: 6, timestamp: at })

t.test('invitation, password reset, authenticator and password change, in Chromium', async (t) => {
  const smtp = await startSmtpServer()
  t.teardown(smtp.close)
  const k = await startTestKernel(t, DB_KINDS[0]!, {
    extensions: [consoleExtension()],
    env: { TRELLIS_SMTP_URL: smtp.url, TRELLIS_MAIL_FROM: 'Trellis <no-reply@trellis.test>' },
  })
  const address = await k.kernel.app.listen({ port: 0, host: '127.0.0.1' })
  const base = address.replace('[::1]', '127.0.0.1')
  const shop = await createTenantWithAdmin(k, 'account-shop')
  const page = await openBrowser(t)
  const { check, signIn, signOut, failing } = consoleUser(page, base)

  await t.test('an invitation accepted from the e-mailed link: a new account, signed in', async (t) => {
    const invited = await k.req('POST', '/v1/invitations', {
      token: shop.token,
      body: { email: 'newcomer@account-shop.test', role: 'tenant_member' },
    })
    t.equal(invited.status, 201, JSON.stringify(invited.body))
    await k.kernel.ctx.mailer.idle()
    const [mail] = smtp.to('newcomer@account-shop.test')
    t.ok(mail, 'the invitation was mailed')
    t.match(textOf(mail!), '/accept-invitation?token=', 'its link leads to the accept page')
    const token = tokenIn(mail!, 'tri')

    await page.goto(`${base}/accept-invitation?token=${encodeURIComponent(token)}`)
    await page.getByRole('heading', { name: 'Join Trellis' }).waitFor()
    t.match(page.url(), /\/console\/accept-invitation\?token=/, 'the e-mailed link lands on the console')
    await page.getByLabel('Your name').fill('Nora Newcomer')
    await page.getByLabel('Password', { exact: true }).fill('newcomer-password-1')
    await page.getByLabel('Password again').fill('newcomer-password-2')
    await page.getByRole('button', { name: 'Accept the invitation' }).click()
    await page.getByRole('alert').getByText('The two passwords differ.').waitFor()
    await page.getByLabel('Password again').fill('newcomer-password-1')
    await page.getByRole('button', { name: 'Accept the invitation' }).click()
    await page.getByText('You have joined.').waitFor()
    await check('accept invitation')
    await page.getByRole('link', { name: 'Sign in' }).click()
    await signIn('newcomer@account-shop.test', 'newcomer-password-1')
    t.match(await page.getByText(/Signed in as/).innerText(), 'newcomer@account-shop.test (account-shop)')
    // The link is single-use.
    const again = await k.req('POST', '/v1/invitations/accept', {
      body: { token, name: 'Someone', password: 'another-password-1' },
    })
    t.equal(again.body.code, 'AUTH_ERR_INVITATION_INVALID')
    await signOut()
  })

  await t.test('forgot password: a link by e-mail, a new password, the old one refused', async (t) => {
    await page.goto(`${base}/console/`)
    await page.getByRole('link', { name: 'Forgot your password?' }).click()
    await page.getByRole('heading', { name: 'Reset your password' }).waitFor()
    await page.getByLabel('Email').fill(shop.email)
    await page.getByRole('button', { name: 'Send me a reset link' }).click()
    await page.getByText('If an account has this address, a reset link is on its way to it.').waitFor()
    await check('forgot password')
    await k.kernel.ctx.mailer.idle()
    const [mail] = smtp.to(shop.email)
    t.ok(mail, 'the reset mail was sent')
    const token = tokenIn(mail!, 'trp')

    await page.goto(`${base}/reset-password?token=${encodeURIComponent(token)}`)
    await page.getByRole('heading', { name: 'Choose a new password' }).waitFor()
    t.match(page.url(), /\/console\/reset-password\?token=/, 'the e-mailed link lands on the console')
    await page.getByLabel('New password', { exact: true }).fill('a-brand-new-password-1')
    await page.getByLabel('New password again').fill('a-brand-new-password-2')
    await page.getByRole('button', { name: 'Set the new password' }).click()
    await page.getByRole('alert').getByText('The two passwords differ.').waitFor()
    await page.getByLabel('New password again').fill('a-brand-new-password-1')
    await page.getByRole('button', { name: 'Set the new password' }).click()
    await page.getByText(/Your password is changed/).waitFor()
    await check('reset password')

    const old = await k.req('POST', '/v1/auth/login', { body: { email: shop.email, password: shop.password } })
    t.equal(old.status, 401, 'the old password no longer signs in')
    // The link is single-use.
    await page.goto(`${base}/reset-password?token=${encodeURIComponent(token)}`)
    await page.getByLabel('New password', { exact: true }).fill('yet-another-password-1')
    await page.getByLabel('New password again').fill('yet-another-password-1')
    await page.getByRole('button', { name: 'Set the new password' }).click()
    await page
      .getByRole('alert')
      .getByText(/unknown, expired or already used/)
      .waitFor()
    await signIn(shop.email, 'a-brand-new-password-1')
  })

  await t.test('an authenticator: set up on the account page, asked for at the next sign-in', async (t) => {
    await page.getByRole('link', { name: 'Your account' }).click()
    await page.getByText('No authenticator yet').waitFor()
    await page.getByRole('button', { name: 'Set up an authenticator' }).click()
    const secret = (await page.getByTestId('mfa-secret').textContent()) ?? ''
    t.match(secret, /^[A-Z2-7]+=*$/, 'the secret is shown (base32)')
    t.equal((await page.getByTestId('mfa-recovery').getByRole('listitem').count()) > 0, true, 'recovery codes shown')
    await check('account')
    await page.getByLabel('Code from the app').fill(code(secret, Date.now()))
    await page.getByRole('button', { name: 'Turn on' }).click()
    await page.getByText('An authenticator protects your account').waitFor()
    t.notMatch(await page.locator('main').innerText(), secret, 'the secret is not shown again')
    await signOut()

    await page.getByLabel('Email').fill(shop.email)
    await page.getByLabel('Password').fill('a-brand-new-password-1')
    await page.getByRole('button', { name: 'Sign in', exact: true }).click()
    await page.getByText('Your account has an authenticator: enter its current code.').waitFor()
    await check('sign-in code')
    await page.getByLabel('Authenticator code').fill('000000')
    await page.getByRole('button', { name: 'Sign in', exact: true }).click()
    await page
      .getByRole('alert')
      .getByText(/Sign-in failed/)
      .waitFor()
    // The next time step's code (the one used to confirm cannot be replayed).
    await page.getByLabel('Authenticator code').fill(code(secret, Date.now() + 30_000))
    await page.getByRole('button', { name: 'Sign in', exact: true }).click()
    await page.getByRole('button', { name: 'Sign out' }).waitFor()
    t.pass('signed in with password and code')
  })

  await t.test('the password changed on the account page: the old one no longer signs in', async (t) => {
    await page.getByRole('link', { name: 'Your account' }).click()
    await page.getByLabel('Current password').fill('not-my-password-1')
    await page.getByLabel('New password', { exact: true }).fill('changed-password-3')
    await page.getByRole('button', { name: 'Change password' }).click()
    await page.getByRole('alert').waitFor()
    await page.getByLabel('Current password').fill('a-brand-new-password-1')
    await page.getByLabel('New password', { exact: true }).fill('changed-password-3')
    await page.getByRole('button', { name: 'Change password' }).click()
    await page.getByText('Password changed.').waitFor()
    t.equal(await page.getByLabel('Current password').inputValue(), '', 'the form is emptied')
    const old = await k.req('POST', '/v1/auth/login', {
      body: { email: shop.email, password: 'a-brand-new-password-1' },
    })
    t.equal(old.body.code, 'AUTH_ERR_INVALID_CREDENTIALS', 'the old password is refused')
    const changed = await k.req('POST', '/v1/auth/login', {
      body: { email: shop.email, password: 'changed-password-3' },
    })
    t.equal(
      changed.body.code,
      'AUTH_ERR_MFA_REQUIRED',
      'the new password is right (the authenticator is asked for next)',
    )
  })

  t.same(failing(), {}, 'axe: no serious or critical violation on any page')
})
