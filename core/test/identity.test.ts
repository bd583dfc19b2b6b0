import t from 'tap'
import { DB_KINDS, startTestKernel, createTenantWithAdmin, addUser } from './helpers/test-kernel.js'

for (const kind of DB_KINDS) {
  t.test(`users, roles and API keys on ${kind}`, async (t) => {
    const k = await startTestKernel(t, kind)
    const a = await createTenantWithAdmin(k, `id-a-${kind}`)
    const b = await createTenantWithAdmin(k, `id-b-${kind}`)
    const member = await addUser(k, a.token, `member@id-a-${kind}.test`, 'tenant_member')
    const bUser = await addUser(k, b.token, `member@id-b-${kind}.test`, 'tenant_member')
    const bRole = await k.req('POST', '/v1/roles', {
      token: b.token,
      body: { name: 'b-role', permissions: ['users.read'] },
    })
    const bKey = await k.req('POST', '/v1/api-keys', {
      token: b.token,
      body: { name: 'b-key', permissions: ['users.read'] },
    })
    const count = async (table: string) => (await k.ownerSql(`select count(*)::int as n from ${table}`))[0].n

    t.test("tenant A cannot read or change tenant B's users, roles, keys or audit by id", async (t) => {
      const bUserId = bUser.user.id
      t.equal((await k.req('GET', `/v1/users/${bUserId}`, { token: a.token })).status, 404)
      t.equal(
        (await k.req('PUT', `/v1/users/${bUserId}/role`, { token: a.token, body: { role: 'tenant_admin' } })).status,
        404,
      )
      t.equal((await k.req('DELETE', `/v1/users/${bUserId}`, { token: a.token })).status, 404)
      t.equal((await k.req('DELETE', `/v1/roles/${bRole.body.id}`, { token: a.token })).status, 404)
      t.equal((await k.req('DELETE', `/v1/api-keys/${bKey.body.id}`, { token: a.token })).status, 404)
      t.notOk((await k.req('GET', '/v1/users', { token: a.token })).body.items.some((u: any) => u.id === bUserId))
      t.notOk((await k.req('GET', '/v1/roles', { token: a.token })).body.items.some((r: any) => r.id === bRole.body.id))
      t.notOk(
        (await k.req('GET', '/v1/api-keys', { token: a.token })).body.items.some((x: any) => x.id === bKey.body.id),
      )
      const audit = await k.req(
        'GET',
        `/v1/audit?actor=${(await k.req('GET', '/v1/me', { token: b.token })).body.user.id}`,
        { token: a.token },
      )
      t.equal(audit.body.items.length, 0, "B's admin's acts are not in A's audit")
      t.equal(
        (await k.req('GET', '/v1/users', { token: bKey.body.key })).body.items.length,
        2,
        "B's key still works and sees only B",
      )
      const [still] = await k.ownerSql('select revoked_at from api_keys where id = ?::uuid', [bKey.body.id])
      t.equal(still.revoked_at, null)
    })

    t.test('a tenantId in a body is rejected, never honoured', async (t) => {
      const before = await count('roles')
      const r = await k.req('POST', '/v1/roles', {
        token: a.token,
        body: { name: 'planted', permissions: ['users.read'], tenantId: b.orgId },
      })
      t.equal(r.status, 400)
      t.equal(r.body.code, 'KRN_ERR_VALIDATION_FAILED')
      const u = await k.req('POST', '/v1/invitations', {
        token: a.token,
        body: { email: 'x@x.test', role: 'tenant_member', tenantId: b.orgId },
      })
      t.equal(u.body.code, 'KRN_ERR_VALIDATION_FAILED')
      t.equal(await count('roles'), before)
    })

    t.test('a tenant member cannot create roles or keys, add users or grant itself more', async (t) => {
      const before = [await count('roles'), await count('api_keys'), await count('memberships')]
      t.equal(
        (await k.req('POST', '/v1/roles', { token: member.token, body: { name: 'mine', permissions: ['users.read'] } }))
          .body.code,
        'AUTH_ERR_FORBIDDEN',
      )
      t.equal(
        (
          await k.req('POST', '/v1/api-keys', {
            token: member.token,
            body: { name: 'mine', permissions: ['users.read'] },
          })
        ).body.code,
        'AUTH_ERR_FORBIDDEN',
      )
      t.equal(
        (
          await k.req('PUT', `/v1/users/${member.user.id}/role`, {
            token: member.token,
            body: { role: 'tenant_admin' },
          })
        ).body.code,
        'AUTH_ERR_FORBIDDEN',
      )
      t.equal(
        (
          await k.req('POST', '/v1/invitations', {
            token: member.token,
            body: { email: 'y@y.test', role: 'tenant_admin' },
          })
        ).body.code,
        'AUTH_ERR_FORBIDDEN',
      )
      t.equal((await k.req('GET', '/v1/audit', { token: member.token })).body.code, 'AUTH_ERR_FORBIDDEN')
      t.same([await count('roles'), await count('api_keys'), await count('memberships')], before, 'nothing was written')
    })

    t.test('nobody grants permissions they do not hold', async (t) => {
      const r = await k.req('POST', '/v1/roles', {
        token: a.token,
        body: { name: 'god', permissions: ['platform.admin', 'users.read'] },
      })
      t.equal(r.status, 403)
      t.equal(r.body.code, 'AUTH_ERR_PERMISSION_ESCALATION')
      t.equal(
        (
          await k.req('POST', '/v1/api-keys', {
            token: a.token,
            body: { name: 'god', permissions: ['marketplace.review'] },
          })
        ).body.code,
        'AUTH_ERR_PERMISSION_ESCALATION',
      )
      t.equal(
        (await k.req('PUT', `/v1/users/${member.user.id}/role`, { token: a.token, body: { role: 'platform_admin' } }))
          .status,
        404,
        'platform roles do not exist in a tenant',
      )
      // A delegated user-manager cannot hand out the admin role it does not itself have.
      const mgrRole = await k.req('POST', '/v1/roles', {
        token: a.token,
        body: { name: 'user-manager', permissions: ['users.read', 'users.manage'] },
      })
      t.equal(mgrRole.status, 201)
      const mgr = await addUser(k, a.token, `mgr@id-a-${kind}.test`, 'user-manager')
      const esc = await k.req('PUT', `/v1/users/${mgr.user.id}/role`, {
        token: mgr.token,
        body: { role: 'tenant_admin' },
      })
      t.equal(esc.body.code, 'AUTH_ERR_PERMISSION_ESCALATION')
      t.equal((await k.req('GET', `/v1/users/${mgr.user.id}`, { token: a.token })).body.role, 'user-manager')
      const changed = await k.req('PUT', `/v1/users/${member.user.id}/role`, {
        token: mgr.token,
        body: { role: 'user-manager' },
      })
      t.equal(changed.status, 200, 'within its own permissions it may')
      t.same(
        changed.body,
        (await k.req('GET', `/v1/users/${member.user.id}`, { token: a.token })).body,
        'the answer is the member as stored, with the new role',
      )
      t.equal(changed.body.role, 'user-manager')
      t.equal(
        (
          await k.req('PUT', '/v1/users/01900000-0000-7000-8000-00000000dead/role', {
            token: a.token,
            body: { role: 'no-such-role' },
          })
        ).body.code,
        'KRN_ERR_NOT_FOUND',
        'an unknown member is not found, whatever the role',
      )
      t.equal(
        (await k.req('PUT', `/v1/users/${member.user.id}/role`, { token: a.token, body: { role: 'tenant_member' } }))
          .status,
        200,
      )
    })

    t.test('an API key does no more than its scope, and stops at revocation and expiry', async (t) => {
      const key = await k.req('POST', '/v1/api-keys', {
        token: a.token,
        body: { name: 'reader', permissions: ['users.read'] },
      })
      t.equal(key.status, 201)
      t.match(key.body.key, /^trk_[0-9a-f]{32}_/)
      t.equal((await k.req('GET', '/v1/users', { token: key.body.key })).status, 200)
      t.equal(
        (
          await k.req('POST', '/v1/roles', {
            token: key.body.key,
            body: { name: 'via-key', permissions: ['users.read'] },
          })
        ).body.code,
        'AUTH_ERR_FORBIDDEN',
      )
      t.equal((await k.req('GET', '/v1/audit', { token: key.body.key })).body.code, 'AUTH_ERR_FORBIDDEN')
      const listed = await k.req('GET', '/v1/api-keys', { token: a.token })
      t.notOk(
        JSON.stringify(listed.body).includes(key.body.key.slice('trk_'.length + 33)),
        'the secret is never shown again',
      )
      const [stored] = await k.ownerSql('select secret_hash from api_keys where id = ?::uuid', [key.body.id])
      t.notOk(key.body.key.includes(stored.secret_hash), 'stored hashed')
      const forged = key.body.key.slice(0, -4) + (key.body.key.endsWith('AAAA') ? 'BBBB' : 'AAAA')
      t.equal((await k.req('GET', '/v1/users', { token: forged })).body.code, 'AUTH_ERR_INVALID_API_KEY')
      t.equal((await k.req('GET', '/v1/users', { token: "trk_'or/**/1=1--" })).body.code, 'AUTH_ERR_INVALID_API_KEY')
      t.equal((await k.req('DELETE', `/v1/api-keys/${key.body.id}`, { token: a.token })).status, 204)
      t.equal((await k.req('GET', '/v1/users', { token: key.body.key })).body.code, 'AUTH_ERR_INVALID_API_KEY')
      const expiresAt = new Date(Date.now() + 3_600_000).toISOString()
      const soon = await k.req('POST', '/v1/api-keys', {
        token: a.token,
        body: { name: 'short', permissions: ['users.read'], expiresAt },
      })
      t.equal(soon.body.expiresAt, expiresAt)
      t.equal((await k.req('GET', '/v1/users', { token: soon.body.key })).status, 200)
      // Its expiry passes: the stored moment is moved into the past instead of waited for.
      await k.ownerSql(`update api_keys set expires_at = now() - interval '1 second' where id = ?::uuid`, [
        soon.body.id,
      ])
      t.equal((await k.req('GET', '/v1/users', { token: soon.body.key })).body.code, 'AUTH_ERR_INVALID_API_KEY')
      t.equal(
        (
          await k.req('POST', '/v1/api-keys', {
            token: a.token,
            body: { name: 'past', permissions: ['users.read'], expiresAt: '2001-01-01T00:00:00Z' },
          })
        ).body.code,
        'KRN_ERR_VALIDATION_FAILED',
      )
    })

    t.test("a key never outlives its creator's permissions", async (t) => {
      const keyAdmin = await addUser(k, a.token, `keys@id-a-${kind}.test`, 'tenant_admin')
      const key = await k.req('POST', '/v1/api-keys', {
        token: keyAdmin.token,
        body: { name: 'auditor', permissions: ['audit.read'] },
      })
      t.equal((await k.req('GET', '/v1/audit', { token: key.body.key })).status, 200)
      t.equal(
        (await k.req('PUT', `/v1/users/${keyAdmin.user.id}/role`, { token: a.token, body: { role: 'tenant_member' } }))
          .status,
        200,
      )
      t.equal((await k.req('GET', '/v1/audit', { token: key.body.key })).body.code, 'AUTH_ERR_FORBIDDEN')
    })

    t.test('role changes, keys and memberships are audited', async (t) => {
      await k.kernel.ctx.sealer.flush()
      const audit = await k.req('GET', '/v1/audit?limit=200', { token: a.token })
      const actions = new Set(audit.body.items.map((e: any) => e.action))
      for (const a of [
        'membership.created',
        'membership.role_changed',
        'role.created',
        'api_key.created',
        'api_key.revoked',
        'auth.login.succeeded',
        'tenant.created',
      ])
        t.ok(actions.has(a), a)
      const unsealed = audit.body.items.filter((e: any) => e.seq === null || !/^[0-9a-f]{64}$/.test(e.hash))
      t.same(unsealed, [], 'all sealed into the chain')
    })
  })
}
