import t from 'tap'
import { Secret, TOTP } from 'otpauth'
import { DB_KINDS, startTestKernel, createTenantWithAdmin, addUser } from './helpers/test-kernel.js'

// TOTP as a second factor of password sign-ins: enrolment (secret and recovery codes shown
// once), the sign-in step, replayed codes refused, and an organisation that requires it.
const code = (secret: string, at = Date.now()) =>
  TOTP.generate({ secret: Secret.fromBase32(secret), period: 30, digits: 6, timestamp: at })

for (const kind of DB_KINDS) {
  t.test(`TOTP on ${kind}`, async (t) => {
    const k = await startTestKernel(t, kind)
    const a = await createTenantWithAdmin(k, `mfa-a-${kind}`)
    const login = (email: string, password: string, extra: Record<string, string> = {}) =>
      k.req('POST', '/v1/auth/login', { body: { email, password, ...extra } })

    t.test('enrol, confirm, then every sign-in needs a fresh code', async (t) => {
      const email = `totp@mfa-${kind}.test`
      const u = await addUser(k, a.token, email, 'tenant_member')
      const enrolled = await k.req('POST', '/v1/me/mfa/totp', { token: u.token })
      t.equal(enrolled.status, 201)
      const { secret, otpauthUri, recoveryCodes } = enrolled.body
      t.match(otpauthUri, /^otpauth:\/\/totp\/Trellis:/)
      t.equal(recoveryCodes.length, 10)
      const [stored] = await k.ownerSql('select secret_sealed from mfa_factors where user_id = ?::uuid', [u.user.id])
      t.notOk(stored.secret_sealed.includes(secret), 'the secret is sealed at rest')
      t.equal((await k.req('GET', '/v1/me/mfa', { token: u.token })).body.totp, 'pending')
      t.equal((await login(email, u.password)).status, 200, 'a pending authenticator is not asked for yet')

      const wrong = await k.req('POST', '/v1/me/mfa/totp/confirm', { token: u.token, body: { code: '000000' } })
      t.equal(wrong.body.code, 'AUTH_ERR_MFA_CODE_INVALID')
      const now = code(secret)
      t.equal((await k.req('POST', '/v1/me/mfa/totp/confirm', { token: u.token, body: { code: now } })).status, 204)
      t.equal((await k.req('GET', '/v1/me/mfa', { token: u.token })).body.totp, 'enrolled')
      const again = await k.req('POST', '/v1/me/mfa/totp', { token: u.token })
      t.equal(again.status, 409, 'a confirmed authenticator is not silently replaced')

      const bare = await login(email, u.password)
      t.equal(bare.status, 401)
      t.equal(bare.body.code, 'AUTH_ERR_MFA_REQUIRED', 'the password alone is not enough')
      t.notOk(bare.body.accessToken)
      const replayed = await login(email, u.password, { totpCode: now })
      t.equal(replayed.body.code, 'AUTH_ERR_MFA_CODE_INVALID', 'the code used to confirm is spent')
      const badPassword = await login(email, 'wrong-password-here', { totpCode: code(secret, Date.now() + 30_000) })
      t.equal(badPassword.body.code, 'AUTH_ERR_INVALID_CREDENTIALS', 'a good code does not excuse a bad password')
      const next = code(secret, Date.now() + 30_000)
      const ok = await login(email, u.password, { totpCode: next })
      t.equal(ok.status, 200, 'the next code signs in')
      t.ok(ok.body.accessToken)
      const replay = await login(email, u.password, { totpCode: next })
      t.equal(replay.body.code, 'AUTH_ERR_MFA_CODE_INVALID', 'and is refused the second time')

      const recovered = await login(email, u.password, { recoveryCode: recoveryCodes[0] })
      t.equal(recovered.status, 200, 'a recovery code signs in')
      const recoveredAgain = await login(email, u.password, { recoveryCode: recoveryCodes[0] })
      t.equal(recoveredAgain.body.code, 'AUTH_ERR_MFA_CODE_INVALID', 'once')

      const audit = await k.ownerSql<{ action: string; data: any }>(
        `select action, data from audit_log where target_id = ? and action in ('auth.mfa.failed', 'auth.login.succeeded', 'auth.mfa.enrolled')`,
        [u.user.id],
      )
      t.ok(audit.some((r) => r.action === 'auth.mfa.enrolled'))
      t.ok(
        audit.some((r) => r.action === 'auth.mfa.failed'),
        'failed codes are audited',
      )
      t.ok(
        audit.some((r) => r.action === 'auth.login.succeeded' && r.data?.mfa === 'recovery'),
        'and how they signed in',
      )

      const remove = await k.req('DELETE', '/v1/me/mfa/totp', { token: ok.body.accessToken, body: { code: '123456' } })
      t.equal(remove.body.code, 'AUTH_ERR_MFA_CODE_INVALID', 'removing needs proof')
      const removed = await k.req('DELETE', '/v1/me/mfa/totp', {
        token: ok.body.accessToken,
        body: { recoveryCode: recoveryCodes[1] },
      })
      t.equal(removed.status, 204)
      t.equal((await login(email, u.password)).status, 200, 'the password alone works again')
    })

    t.test('an organisation that requires MFA makes its members enrol at sign-in', async (t) => {
      const email = `forced@mfa-${kind}.test`
      const v = await addUser(k, a.token, email, 'tenant_member')
      const byMember = await k.req('PUT', '/v1/identity/policy', { token: v.token, body: { mfaRequired: true } })
      t.equal(byMember.status, 403, 'a member cannot set the policy')
      const set = await k.req('PUT', '/v1/identity/policy', { token: a.token, body: { mfaRequired: true } })
      t.same(set.body, { mfaRequired: true })
      t.same((await k.req('GET', '/v1/identity/policy', { token: a.token })).body, { mfaRequired: true })

      const refused = await login(email, v.password)
      t.equal(refused.status, 403)
      t.equal(refused.body.code, 'AUTH_ERR_MFA_ENROLMENT_REQUIRED')
      const wrongPw = await k.req('POST', '/v1/auth/mfa/enrol', { body: { email, password: 'not-the-password' } })
      t.equal(wrongPw.body.code, 'AUTH_ERR_INVALID_CREDENTIALS', 'enrolling at sign-in needs the password')
      const enrol = await k.req('POST', '/v1/auth/mfa/enrol', { body: { email, password: v.password } })
      t.equal(enrol.status, 201)
      t.equal((await login(email, v.password)).body.code, 'AUTH_ERR_MFA_ENROLMENT_REQUIRED', 'until confirmed')
      const first = await login(email, v.password, { totpCode: code(enrol.body.secret) })
      t.equal(first.status, 200, 'the first code confirms the authenticator and signs in')
      t.equal((await login(email, v.password)).body.code, 'AUTH_ERR_MFA_REQUIRED', 'from now on a code is asked')

      await k.req('PUT', '/v1/identity/policy', { token: a.token, body: { mfaRequired: false } })
      const b = await createTenantWithAdmin(k, `mfa-b-${kind}`)
      t.same(
        (await k.req('GET', '/v1/identity/policy', { token: b.token })).body,
        { mfaRequired: false },
        "another organisation's policy is its own",
      )
    })
  })
}
