import t, { type Test } from 'tap'
import { createKernel } from '../src/kernel.js'
import { DB_KINDS, startTestKernel, createTenantWithAdmin, addUser, type TestKernel } from './helpers/test-kernel.js'

// A member removed from an organisation, or demoted, must lose what they could do there at
// once: not when their access token expires. The attack: the old tenant admin's token creates a
// webhook to an outside receiver, invites a new admin, mints an API key.
const HOOK = { url: 'https://receiver.example.net/hook', types: ['*'] }

async function tryEverything(k: TestKernel, token: string, tag: string) {
  return {
    webhook: await k.req('POST', '/v1/webhooks', { token, body: HOOK }),
    invite: await k.req('POST', '/v1/invitations', {
      token,
      body: { email: `planted-${tag}@evil.test`, role: 'tenant_admin' },
    }),
    key: await k.req('POST', '/v1/api-keys', { token, body: { name: `planted-${tag}`, permissions: ['users.read'] } }),
    read: await k.req('GET', '/v1/users', { token }),
  }
}

async function nothingWritten(t: Test, k: TestKernel, orgId: string, tag: string) {
  const [w] = await k.ownerSql('select count(*)::int as n from webhook_endpoints where tenant_id = ?::uuid', [orgId])
  const [i] = await k.ownerSql('select count(*)::int as n from invitations where email = ?', [
    `planted-${tag}@evil.test`,
  ])
  const [a] = await k.ownerSql('select count(*)::int as n from api_keys where name = ?', [`planted-${tag}`])
  const [u] = await k.ownerSql('select count(*)::int as n from users where email = ?', [`planted-${tag}@evil.test`])
  t.same([w.n, i.n, a.n, u.n], [0, 0, 0, 0], 'no webhook, invitation, key or account was written')
}

function refusedAll(t: Test, r: Awaited<ReturnType<typeof tryEverything>>) {
  for (const [what, reply] of Object.entries(r)) {
    t.equal(reply.status, 401, `${what}: refused`)
    t.equal(reply.body.code, 'AUTH_ERR_INVALID_TOKEN', `${what}: stable code`)
  }
}

for (const kind of DB_KINDS) {
  t.test(`removing or demoting a member ends their access at once on ${kind}`, async (t) => {
    const k = await startTestKernel(t, kind)
    const a = await createTenantWithAdmin(k, `rev-${kind}`)

    t.test(
      'a removed tenant admin: the old access token and refresh token stop working, nothing is written',
      async (t) => {
        const victim = await addUser(k, a.token, `gone@rev-${kind}.test`, 'tenant_admin')
        // Warm every cache a later request could take the fast path through.
        t.equal((await k.req('GET', '/v1/users', { token: victim.token })).status, 200)
        t.equal((await k.req('GET', '/v1/auth/session', { token: victim.token })).status, 200)
        const keyBefore = await k.req('POST', '/v1/api-keys', {
          token: victim.token,
          body: { name: 'made-before', permissions: ['users.read'] },
        })
        t.equal(keyBefore.status, 201)

        t.equal((await k.req('DELETE', `/v1/users/${victim.user.id}`, { token: a.token })).status, 204)

        refusedAll(t, await tryEverything(k, victim.token, `removed-${kind}`))
        const session = await k.req('GET', '/v1/auth/session', { token: victim.token })
        t.equal(session.status, 401, 'the cached fast path refuses too')
        const refreshed = await k.req('POST', '/v1/auth/refresh', { body: { refreshToken: victim.refreshToken } })
        t.equal(refreshed.status, 401)
        t.equal(refreshed.body.code, 'AUTH_ERR_INVALID_REFRESH_TOKEN')
        t.equal(
          (await k.req('GET', '/v1/users', { token: keyBefore.body.key })).body.code,
          'AUTH_ERR_INVALID_API_KEY',
          'keys they made in the organisation are revoked',
        )
        await nothingWritten(t, k, a.orgId, `removed-${kind}`)
        const [ended] = await k.ownerSql(
          'select count(*)::int as n from sessions where user_id = ?::uuid and revoked_at is null',
          [victim.user.id],
        )
        t.equal(ended.n, 0, 'every session of theirs in the organisation is ended')
      },
    )

    t.test('a demoted tenant admin: refused at once, and a fresh sign-in has only the new role', async (t) => {
      const victim = await addUser(k, a.token, `demoted@rev-${kind}.test`, 'tenant_admin')
      t.equal((await k.req('GET', '/v1/auth/session', { token: victim.token })).status, 200)

      t.equal(
        (await k.req('PUT', `/v1/users/${victim.user.id}/role`, { token: a.token, body: { role: 'tenant_member' } }))
          .status,
        200,
      )

      refusedAll(t, await tryEverything(k, victim.token, `demoted-${kind}`))
      const refreshed = await k.req('POST', '/v1/auth/refresh', { body: { refreshToken: victim.refreshToken } })
      t.equal(refreshed.body.code, 'AUTH_ERR_INVALID_REFRESH_TOKEN')
      await nothingWritten(t, k, a.orgId, `demoted-${kind}`)

      const again = await k.login(victim.user.email, victim.password)
      const hook = await k.req('POST', '/v1/webhooks', { token: again.token, body: HOOK })
      t.equal(hook.body.code, 'AUTH_ERR_FORBIDDEN', 'signed in again: a member, not an admin')
      t.equal((await k.req('GET', '/v1/users', { token: again.token })).status, 200)
    })

    t.test('the refusal rests on the database, not on the memory of the process that removed the member', async (t) => {
      const victim = await addUser(k, a.token, `elsewhere@rev-${kind}.test`, 'tenant_admin')
      t.equal((await k.req('GET', '/v1/auth/session', { token: victim.token })).status, 200)
      t.equal((await k.req('DELETE', `/v1/users/${victim.user.id}`, { token: a.token })).status, 204)
      // A process that did not do the removal has none of it in memory.
      k.kernel.ctx.revokedSessions.clear()
      k.kernel.ctx.orgStatus.forget()
      refusedAll(t, await tryEverything(k, victim.token, `elsewhere-${kind}`))
      await nothingWritten(t, k, a.orgId, `elsewhere-${kind}`)
    })

    if (kind === 'postgres') {
      t.test('a second kernel process with the token cached refuses it once its status entry is re-read', async (t) => {
        const other = await createKernel({ config: k.kernel.ctx.config, migrate: false, rateLimitPerMinute: 100_000 })
        t.teardown(() => other.close())
        const victim = await addUser(k, a.token, `second@rev-${kind}.test`, 'tenant_admin')
        const onOther = (token: string) =>
          other.app.inject({ method: 'GET', url: '/v1/auth/session', headers: { authorization: `Bearer ${token}` } })
        t.equal((await onOther(victim.token)).statusCode, 200, 'the other process has verified and cached the token')
        t.equal((await k.req('DELETE', `/v1/users/${victim.user.id}`, { token: a.token })).status, 204)
        // The other process re-reads the organisation within its status TTL (1 s); allow far more on a loaded machine.
        const deadline = Date.now() + 20_000
        let last = 200
        while (Date.now() < deadline && (last = (await onOther(victim.token)).statusCode) === 200)
          await new Promise((r) => setTimeout(r, 100))
        t.equal(last, 401, 'refused by the other process')
        const hook = await other.app.inject({
          method: 'POST',
          url: '/v1/webhooks',
          headers: { authorization: `Bearer ${victim.token}` },
          payload: HOOK,
        })
        t.equal(hook.statusCode, 401)
        const [w] = await k.ownerSql('select count(*)::int as n from webhook_endpoints where tenant_id = ?::uuid', [
          a.orgId,
        ])
        t.equal(w.n, 0)
      })
    }
  })
}
