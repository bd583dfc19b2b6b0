import t from 'tap'
import { DB_KINDS, startTestKernel, createTenantWithAdmin, addUser } from './helpers/test-kernel.js'

// People join an organisation by accepting an invitation. A tenant admin who names another
// organisation's user by e-mail neither gets that account nor learns whether it exists.
const shape = (v: unknown): unknown =>
  Array.isArray(v)
    ? v.map(shape)
    : v && typeof v === 'object'
      ? Object.fromEntries(
          Object.entries(v)
            .map(([k, x]) => [k, shape(x)])
            .sort(([a], [b]) => String(a).localeCompare(String(b))),
        )
      : typeof v

for (const kind of DB_KINDS) {
  t.test(`invitations on ${kind}`, async (t) => {
    const k = await startTestKernel(t, kind)
    const a = await createTenantWithAdmin(k, `inv-a-${kind}`)
    const b = await createTenantWithAdmin(k, `inv-b-${kind}`)
    const victimEmail = `victim@inv-b-${kind}.test`
    const victim = await addUser(k, b.token, victimEmail, 'tenant_member')
    const victimName = 'Valerie Realname'
    await k.ownerSql('update users set name = ? where id = ?::uuid', [victimName, victim.user.id])
    const membersOfA = async () =>
      (await k.ownerSql('select user_id from memberships where tenant_id = ?::uuid', [a.orgId])).map(
        (r) => r.user_id as string,
      )

    t.test(
      'naming an existing account by e-mail does not add it, and answers exactly as for an unknown address',
      async (t) => {
        const old = await k.req('POST', '/v1/users', {
          token: a.token,
          body: { email: victimEmail, name: 'anything', role: 'tenant_member' },
        })
        t.notOk(JSON.stringify(old.body).includes(victim.user.id), 'the old add-by-e-mail shows no id')
        t.notOk(JSON.stringify(old.body).includes(victimName), 'nor a name')
        t.notOk((await membersOfA()).includes(victim.user.id), 'the account was not attached')

        const existing = await k.req('POST', '/v1/invitations', {
          token: a.token,
          body: { email: victimEmail, role: 'tenant_member' },
        })
        const unknown = await k.req('POST', '/v1/invitations', {
          token: a.token,
          body: { email: `nobody@inv-${kind}.test`, role: 'tenant_member' },
        })
        t.equal(existing.status, 201)
        t.equal(unknown.status, existing.status, 'same status')
        t.same(shape(existing.body), shape(unknown.body), 'same body shape')
        t.same(Object.keys(existing.headers).sort(), Object.keys(unknown.headers).sort(), 'same headers')
        for (const secret of [victim.user.id, victimName])
          t.notOk(
            JSON.stringify(existing.body).includes(secret),
            `no ${secret === victimName ? 'name' : 'id'} of the account`,
          )
        t.equal(existing.body.invitation.status, 'pending')
        t.notOk((await membersOfA()).includes(victim.user.id), 'still not a member: only the person can accept')
        const [stored] = await k.ownerSql('select token_hash from invitations where id = ?::uuid', [
          existing.body.invitation.id,
        ])
        t.notOk(existing.body.acceptToken.includes(stored.token_hash), 'the token is stored hashed')
        t.notOk(
          JSON.stringify(await k.req('GET', '/v1/invitations', { token: a.token })).includes(
            existing.body.acceptToken.slice(-20),
          ),
          'and never shown again',
        )
      },
    )

    t.test('an existing account accepts only as itself', async (t) => {
      const inv = await k.req('POST', '/v1/invitations', {
        token: a.token,
        body: { email: victimEmail.toUpperCase(), role: 'tenant_member' },
      })
      const token = inv.body.acceptToken
      const before = await membersOfA()
      const bare = await k.req('POST', '/v1/invitations/accept', { body: { token } })
      t.equal(bare.status, 401)
      t.equal(bare.body.code, 'AUTH_ERR_INVITATION_ACCOUNT_REQUIRED', 'the token alone is not enough')
      const newPassword = await k.req('POST', '/v1/invitations/accept', {
        body: { token, name: 'Hijacker', password: 'a-password-of-my-choosing' },
      })
      t.equal(newPassword.body.code, 'AUTH_ERR_INVALID_CREDENTIALS', 'no new account is made over an existing one')
      const asOther = await k.req('POST', '/v1/invitations/accept', { token: b.token, body: { token } })
      t.equal(asOther.body.code, 'AUTH_ERR_INVITATION_ACCOUNT_REQUIRED', 'signed in as somebody else')
      t.same(await membersOfA(), before, 'nothing was written')

      const ok = await k.req('POST', '/v1/invitations/accept', { token: victim.token, body: { token } })
      t.equal(ok.status, 200)
      t.same(ok.body, { userId: victim.user.id, org: { id: a.orgId, kind: 'tenant', role: 'tenant_member' } })
      const inA = await k.login(victimEmail, victim.password, a.orgId)
      t.equal((await k.req('GET', '/v1/users', { token: inA.token })).status, 200, 'a member of both now')
      t.equal(
        (await k.req('POST', '/v1/invitations/accept', { token: victim.token, body: { token } })).body.code,
        'AUTH_ERR_INVITATION_INVALID',
        'one time only',
      )
      const listed = (await k.req('GET', '/v1/invitations', { token: a.token })).body.items.find(
        (i: any) => i.id === inv.body.invitation.id,
      )
      t.equal(listed.status, 'accepted')
      const again = await k.req('POST', '/v1/invitations', {
        token: a.token,
        body: { email: victimEmail, role: 'tenant_member' },
      })
      t.equal(
        again.body.code,
        'KRN_ERR_CONFLICT',
        'a member is not invited twice (members are visible to the admin anyway)',
      )
    })

    t.test('an existing account may accept with its password instead of a session', async (t) => {
      const other = await addUser(k, b.token, `pw@inv-b-${kind}.test`, 'tenant_member')
      const inv = await k.req('POST', '/v1/invitations', {
        token: a.token,
        body: { email: other.user.email, role: 'tenant_member' },
      })
      const ok = await k.req('POST', '/v1/invitations/accept', {
        body: { token: inv.body.acceptToken, password: other.password },
      })
      t.equal(ok.status, 200)
      t.equal(ok.body.userId, other.user.id)
    })

    t.test('a new address: the person chooses their password', async (t) => {
      const email = `newcomer@inv-${kind}.test`
      const inv = await k.req('POST', '/v1/invitations', { token: a.token, body: { email, role: 'tenant_member' } })
      t.equal(
        (
          await k.req('POST', '/v1/invitations/accept', {
            body: { token: inv.body.acceptToken, name: 'New', password: 'short' },
          })
        ).body.code,
        'AUTH_ERR_WEAK_PASSWORD',
      )
      const ok = await k.req('POST', '/v1/invitations/accept', {
        body: { token: inv.body.acceptToken, name: 'New Comer', password: 'newcomer-password' },
      })
      t.equal(ok.status, 200)
      const s = await k.login(email, 'newcomer-password')
      t.equal(s.orgId, a.orgId)
      await k.kernel.ctx.sealer.flush()
      const actions = new Set(
        (await k.req('GET', '/v1/audit?limit=200', { token: a.token })).body.items.map((e: any) => e.action),
      )
      for (const action of ['invitation.created', 'invitation.accepted', 'membership.created'])
        t.ok(actions.has(action), action)
      const [event] = await k.ownerSql(
        `select count(*)::int as n from events where tenant_id = ?::uuid and type = 'kernel.membership.created' and data->>'userId' = ?`,
        [a.orgId, ok.body.userId],
      )
      t.equal(event.n, 1, 'kernel.membership.created emitted')
    })

    t.test('revoked, expired, tampered and replaced invitations are refused', async (t) => {
      const make = async (email: string) =>
        (await k.req('POST', '/v1/invitations', { token: a.token, body: { email, role: 'tenant_member' } })).body
      const body = { name: 'X', password: 'some-long-password' }
      const revoked = await make(`revoked@inv-${kind}.test`)
      t.equal((await k.req('DELETE', `/v1/invitations/${revoked.invitation.id}`, { token: a.token })).status, 204)
      const expired = await make(`expired@inv-${kind}.test`)
      await k.ownerSql(`update invitations set expires_at = now() - interval '1 minute' where id = ?::uuid`, [
        expired.invitation.id,
      ])
      const replaced = await make(`replaced@inv-${kind}.test`)
      await make(`replaced@inv-${kind}.test`)
      const tampered = await make(`tampered@inv-${kind}.test`)
      const forged = tampered.acceptToken.slice(0, -4) + (tampered.acceptToken.endsWith('AAAA') ? 'BBBB' : 'AAAA')
      for (const [what, token] of [
        ['revoked', revoked.acceptToken],
        ['expired', expired.acceptToken],
        ['replaced', replaced.acceptToken],
        ['tampered', forged],
        ['garbage', "tri_' or 1=1 --"],
      ]) {
        const r = await k.req('POST', '/v1/invitations/accept', { body: { token, ...body } })
        t.equal(r.body.code, 'AUTH_ERR_INVITATION_INVALID', what)
      }
      const [made] = await k.ownerSql(`select count(*)::int as n from users where email like ?`, [`%@inv-${kind}.test`])
      t.equal(made.n, 1, 'only the newcomer has an account')
      const listed = (await k.req('GET', '/v1/invitations?limit=100', { token: a.token })).body.items
      t.equal(listed.find((i: any) => i.id === revoked.invitation.id).status, 'revoked')
      t.equal(listed.find((i: any) => i.id === expired.invitation.id).status, 'expired')
    })

    t.test(
      "a new organisation's first admin is a new account: an existing one is not attached by naming it",
      async (t) => {
        const slug = `inv-taken-${kind}`
        const r = await k.req('POST', '/v1/tenants', {
          token: k.adminToken,
          body: {
            name: slug,
            slug,
            admin: { email: victimEmail, name: 'Someone', password: 'a-long-enough-password' },
          },
        })
        t.equal(r.body.code, 'KRN_ERR_CONFLICT')
        t.notOk(JSON.stringify(r.body).includes(victim.user.id), 'no id of the account')
        t.same(await k.ownerSql('select id from tenants where slug = ?', [slug]), [], 'nothing was written')
        t.same(
          (await k.ownerSql('select tenant_id from memberships where user_id = ?::uuid', [victim.user.id]))
            .map((m) => m.tenant_id)
            .includes(b.orgId),
          true,
        )
        const [count] = await k.ownerSql('select count(*)::int as n from memberships where user_id = ?::uuid', [
          victim.user.id,
        ])
        t.equal(count.n, 2, 'still only in B and in A (by the invitation accepted above)')
      },
    )

    t.test(
      'inviting needs users.manage and grants nothing the inviter lacks; other tenants cannot see or revoke',
      async (t) => {
        const member = await addUser(k, a.token, `plain@inv-a-${kind}.test`, 'tenant_member')
        t.equal(
          (
            await k.req('POST', '/v1/invitations', {
              token: member.token,
              body: { email: `x@inv-${kind}.test`, role: 'tenant_admin' },
            })
          ).body.code,
          'AUTH_ERR_FORBIDDEN',
        )
        t.equal(
          (
            await k.req('POST', '/v1/roles', {
              token: a.token,
              body: { name: 'inviter', permissions: ['users.read', 'users.manage'] },
            })
          ).status,
          201,
        )
        const inviter = await addUser(k, a.token, `inviter@inv-a-${kind}.test`, 'inviter')
        t.equal(
          (
            await k.req('POST', '/v1/invitations', {
              token: inviter.token,
              body: { email: `y@inv-${kind}.test`, role: 'tenant_admin' },
            })
          ).body.code,
          'AUTH_ERR_PERMISSION_ESCALATION',
        )
        const mine = (
          await k.req('POST', '/v1/invitations', {
            token: a.token,
            body: { email: `z@inv-${kind}.test`, role: 'tenant_member' },
          })
        ).body
        t.notOk(
          (await k.req('GET', '/v1/invitations', { token: b.token })).body.items.some(
            (i: any) => i.id === mine.invitation.id,
          ),
        )
        t.equal((await k.req('DELETE', `/v1/invitations/${mine.invitation.id}`, { token: b.token })).status, 404)
        const [still] = await k.ownerSql('select revoked_at from invitations where id = ?::uuid', [mine.invitation.id])
        t.equal(still.revoked_at, null)
      },
    )
  })
}
