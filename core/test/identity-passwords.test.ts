import t from 'tap'
import { DB_KINDS, startTestKernel, createTenantWithAdmin, type TestKernel } from './helpers/test-kernel.js'
import { startSmtpServer, textOf, tokenIn } from './helpers/smtp-server.js'
import { parseMailConfig } from '../src/mail/config.js'

// Account basics: changing your password (other sessions end), resetting a forgotten one by a
// single-use link mailed over real SMTP (a server on loopback), and invitations by e-mail.
t.test('mail configuration is read from the environment and checked', async (t) => {
  t.equal(parseMailConfig({}), undefined, 'no TRELLIS_SMTP_URL: no mail')
  t.same(
    parseMailConfig({ TRELLIS_SMTP_URL: 'smtps://u:p@mail.example:465', TRELLIS_MAIL_FROM: 'T <t@example.com>' }),
    {
      smtpUrl: 'smtps://u:p@mail.example:465',
      from: 'T <t@example.com>',
    },
  )
  t.throws(() => parseMailConfig({ TRELLIS_SMTP_URL: 'http://x', TRELLIS_MAIL_FROM: 'a@b' }), /TRELLIS_SMTP_URL/)
  t.throws(() => parseMailConfig({ TRELLIS_SMTP_URL: 'smtp://x' }), /TRELLIS_MAIL_FROM/)
})

const auditActions = async (k: TestKernel, userId: string) =>
  (
    await k.ownerSql<{ action: string }>('select action from audit_log where target_id = ? order by at, id', [userId])
  ).map((r) => r.action)

for (const kind of DB_KINDS) {
  t.test(`passwords and mail on ${kind}`, async (t) => {
    const smtp = await startSmtpServer()
    t.teardown(smtp.close)
    const k = await startTestKernel(t, kind, {
      env: {
        TRELLIS_SMTP_URL: smtp.url,
        TRELLIS_MAIL_FROM: 'Trellis <no-reply@trellis.test>',
        TRELLIS_MAIL_LINK_URL: 'https://console.trellis.test',
      },
    })
    const mailer = k.kernel.ctx.mailer
    const a = await createTenantWithAdmin(k, `pw-a-${kind}`)
    const resetMails = (email: string) => smtp.to(email).filter((m) => m.raw.includes('Subject: Reset your'))
    /** A new member, invited by mail: the token comes from the mail, as it would for a person. */
    const addUser = async (email: string) => {
      const password = `password-of-${email}`
      const inv = await k.req('POST', '/v1/invitations', { token: a.token, body: { email, role: 'tenant_member' } })
      await mailer.idle()
      const accepted = await k.req('POST', '/v1/invitations/accept', {
        body: { token: tokenIn(smtp.to(email).at(-1)!, 'tri'), name: email, password },
      })
      if (inv.status !== 201 || accepted.status !== 200) throw new Error(`adding ${email} failed`)
      return { user: { id: accepted.body.userId as string }, password, ...(await k.login(email, password)) }
    }

    t.test('changing a password needs the current one and ends the other sessions', async (t) => {
      const email = `changer@pw-${kind}.test`
      const u = await addUser(email)
      const other = await k.login(email, u.password)
      const wrong = await k.req('POST', '/v1/auth/password', {
        token: u.token,
        body: { currentPassword: 'not-the-password', newPassword: 'a-brand-new-password' },
      })
      t.equal(wrong.status, 403)
      t.equal(wrong.body.code, 'AUTH_ERR_WRONG_PASSWORD')
      const weak = await k.req('POST', '/v1/auth/password', {
        token: u.token,
        body: { currentPassword: u.password, newPassword: 'short' },
      })
      t.equal(weak.body.code, 'AUTH_ERR_WEAK_PASSWORD')
      t.equal((await k.req('GET', '/v1/me', { token: other.token })).status, 200, 'nothing changed yet')

      const anonymous = await k.req('POST', '/v1/auth/password', {
        body: { currentPassword: u.password, newPassword: 'a-brand-new-password' },
      })
      t.equal(anonymous.status, 401, 'signed out: refused')
      const key = await k.req('POST', '/v1/api-keys', {
        token: a.token,
        body: { name: 'k', permissions: ['users.read'] },
      })
      const byKey = await k.req('POST', '/v1/auth/password', {
        token: key.body.key,
        body: { currentPassword: a.password, newPassword: 'a-brand-new-password' },
      })
      t.equal(byKey.body.code, 'AUTH_ERR_USER_REQUIRED', 'an API key has no password')

      const changed = await k.req('POST', '/v1/auth/password', {
        token: u.token,
        body: { currentPassword: u.password, newPassword: 'a-brand-new-password' },
      })
      t.equal(changed.status, 204)
      t.equal((await k.req('GET', '/v1/me', { token: u.token })).status, 200, 'this session goes on')
      t.equal((await k.req('GET', '/v1/me', { token: other.token })).status, 401, 'the other one ended')
      const refresh = await k.req('POST', '/v1/auth/refresh', { body: { refreshToken: other.refreshToken } })
      t.equal(refresh.status, 401, 'and its refresh token with it')
      const old = await k.req('POST', '/v1/auth/login', { body: { email, password: u.password } })
      t.equal(old.body.code, 'AUTH_ERR_INVALID_CREDENTIALS', 'the old password no longer works')
      t.ok(await k.login(email, 'a-brand-new-password'), 'the new one does')
      const actions = await auditActions(k, u.user.id)
      t.ok(actions.includes('auth.password.change_failed'), 'the wrong attempt is audited')
      t.ok(actions.includes('auth.password.changed'), 'the change is audited')
    })

    t.test('a forgotten password is reset by a single-use mailed link', async (t) => {
      const email = `forgetful@pw-${kind}.test`
      const u = await addUser(email)
      const unknownEmail = `nobody@pw-${kind}.test`
      const known = await k.req('POST', '/v1/auth/password/forgot', { body: { email: email.toUpperCase() } })
      const unknown = await k.req('POST', '/v1/auth/password/forgot', { body: { email: unknownEmail } })
      t.equal(known.status, 202)
      t.same([unknown.status, unknown.body], [known.status, known.body], 'the same answer for an unknown address')
      t.same(Object.keys(unknown.headers).sort(), Object.keys(known.headers).sort(), 'with the same headers')
      await mailer.idle()
      t.equal(smtp.to(unknownEmail).length, 0, 'nothing is mailed to an address without an account')
      const [mail] = resetMails(email)
      t.ok(mail, 'the account owner got a mail')
      t.match(textOf(mail!), /https:\/\/console\.trellis\.test\/reset-password\?token=/, 'with a link into the console')
      t.match(textOf(mail!), /From: Trellis <no-reply@trellis\.test>/)
      const token = tokenIn(mail!, 'trp')
      const stored = await k.ownerSql('select token_hash from password_resets where user_id = ?::uuid', [u.user.id])
      t.equal(stored.length, 1)
      // The secret is everything after the prefix and the id (base64url may itself hold "_").
      const secret = token.split('_').slice(2).join('_')
      t.ok(secret.length >= 16, 'the mailed token carries its secret')
      t.notOk(stored[0].token_hash.includes(secret), 'only a hash of the token is stored')

      const forged = `${token.slice(0, -4)}AAAA`
      const bad = await k.req('POST', '/v1/auth/password/reset', {
        body: { token: forged, newPassword: 'reset-password-1' },
      })
      t.equal(bad.body.code, 'AUTH_ERR_RESET_TOKEN_INVALID', 'a forged secret is refused')
      const weak = await k.req('POST', '/v1/auth/password/reset', { body: { token, newPassword: 'short' } })
      t.equal(weak.body.code, 'AUTH_ERR_WEAK_PASSWORD')

      const done = await k.req('POST', '/v1/auth/password/reset', { body: { token, newPassword: 'reset-password-1' } })
      t.equal(done.status, 204)
      t.equal((await k.req('GET', '/v1/me', { token: u.token })).status, 401, 'every session ended')
      const again = await k.req('POST', '/v1/auth/password/reset', { body: { token, newPassword: 'reset-password-2' } })
      t.equal(again.body.code, 'AUTH_ERR_RESET_TOKEN_INVALID', 'the link works once')
      t.ok(await k.login(email, 'reset-password-1'), 'the new password signs in')
      const actions = await auditActions(k, u.user.id)
      t.ok(actions.includes('auth.password_reset.requested') && actions.includes('auth.password_reset.completed'))
    })

    t.test('an earlier or expired link does not work; requests per address are limited', async (t) => {
      const email = `twice@pw-${kind}.test`
      const u = await addUser(email)
      for (let i = 0; i < 2; i++)
        t.equal((await k.req('POST', '/v1/auth/password/forgot', { body: { email } })).status, 202)
      await mailer.idle()
      const [first, second] = resetMails(email).map((m) => tokenIn(m, 'trp'))
      t.ok(first && second && first !== second, 'two different links')
      const stale = await k.req('POST', '/v1/auth/password/reset', {
        body: { token: first, newPassword: 'reset-password-1' },
      })
      t.equal(stale.body.code, 'AUTH_ERR_RESET_TOKEN_INVALID', 'a newer link replaces the earlier one')
      await k.ownerSql(`update password_resets set expires_at = now() - interval '1 minute' where user_id = ?::uuid`, [
        u.user.id,
      ])
      const expired = await k.req('POST', '/v1/auth/password/reset', {
        body: { token: second, newPassword: 'reset-password-1' },
      })
      t.equal(expired.body.code, 'AUTH_ERR_RESET_TOKEN_INVALID', 'an expired link is refused')
      t.ok(await k.login(email, u.password), 'the password is unchanged')

      t.equal((await k.req('POST', '/v1/auth/password/forgot', { body: { email } })).status, 202, 'a third request')
      const limited = await k.req('POST', '/v1/auth/password/forgot', { body: { email } })
      t.equal(limited.status, 429, 'the fourth within the window is refused')
      t.equal(limited.body.code, 'AUTH_ERR_LOGIN_RATE_LIMITED')
      const ghost = `ghost@pw-${kind}.test`
      for (let i = 0; i < 3; i++) await k.req('POST', '/v1/auth/password/forgot', { body: { email: ghost } })
      const ghostLimited = await k.req('POST', '/v1/auth/password/forgot', { body: { email: ghost } })
      t.equal(ghostLimited.status, 429, 'an unknown address is limited the same way')
    })

    t.test('with mail configured an invitation is mailed, and its token is not answered to the admin', async (t) => {
      const email = `invitee@pw-${kind}.test`
      const inv = await k.req('POST', '/v1/invitations', { token: a.token, body: { email, role: 'tenant_member' } })
      t.equal(inv.status, 201)
      t.equal(inv.body.emailed, true)
      t.notOk('acceptToken' in inv.body, 'the admin never holds the token')
      await mailer.idle()
      const [mail] = smtp.to(email)
      t.ok(mail, 'the invitee got a mail')
      t.match(textOf(mail!), new RegExp(`pw-a-${kind}`), 'naming the organisation')
      t.match(textOf(mail!), /accept-invitation\?token=/)
      const accepted = await k.req('POST', '/v1/invitations/accept', {
        body: { token: tokenIn(mail!, 'tri'), name: 'Invitee', password: 'invitee-password' },
      })
      t.equal(accepted.status, 200)
      t.equal(accepted.body.org.id, a.orgId)
      t.ok(await k.login(email, 'invitee-password'))
    })
  })
}
