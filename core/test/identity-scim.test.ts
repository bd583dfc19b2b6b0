import t from 'tap'
import { DB_KINDS, startTestKernel, createTenantWithAdmin, addUser } from './helpers/test-kernel.js'
import { hashPassword } from '../src/identity/passwords.js'

// SCIM 2.0 provisioning with the protocol's own requests (RFC 7644 shapes, application/scim+json,
// PatchOp as Azure AD and Okta send it): create, find by userName, deactivate (sessions end),
// reactivate, groups that carry a role, and another organisation's key seeing nothing.
const USER = 'urn:ietf:params:scim:schemas:core:2.0:User'
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group'
const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp'

for (const kind of DB_KINDS) {
  t.test(`SCIM provisioning on ${kind}`, async (t) => {
    const k = await startTestKernel(t, kind)
    const a = await createTenantWithAdmin(k, `scim-a-${kind}`)
    const b = await createTenantWithAdmin(k, `scim-b-${kind}`)
    const keyOf = async (token: string) =>
      (
        await k.req('POST', '/v1/api-keys', {
          token,
          body: { name: 'scim', permissions: ['users.manage', 'users.read'] },
        })
      ).body.key as string
    const aKey = await keyOf(a.token)
    const bKey = await keyOf(b.token)
    const scim = (method: string, path: string, body?: unknown, key = aKey) =>
      k.req(method, `/v1/scim/v2${path}`, {
        token: key,
        ...(body === undefined ? {} : { raw: JSON.stringify(body) }),
        headers: body === undefined ? {} : { 'content-type': 'application/scim+json' },
      })
    await k.req('PUT', '/v1/identity/sso', {
      token: a.token,
      body: {
        issuer: 'https://idp.example',
        clientId: 'c',
        clientSecret: 's',
        allowedDomains: ['scim.test'],
        roleMap: { 'erp-admins': 'tenant_admin' },
        defaultRole: 'tenant_member',
      },
    })
    const email = `sam.${kind}@scim.test`

    t.test('a user is created, found by userName, and unique', async (t) => {
      const created = await scim('POST', '/Users', {
        schemas: [USER],
        userName: email,
        externalId: 'ext-sam',
        name: { givenName: 'Sam', familyName: 'Provisioned' },
        emails: [{ value: email, primary: true, type: 'work' }],
        active: true,
      })
      t.equal(created.status, 201, JSON.stringify(created.body))
      t.match(String(created.headers['content-type']), /application\/scim\+json/)
      t.same(created.body.schemas, [USER])
      t.equal(created.body.userName, email)
      t.equal(created.body.active, true)
      t.match(created.body.meta.location, new RegExp(`/v1/scim/v2/Users/${created.body.id}$`))
      const again = await scim('POST', '/Users', { schemas: [USER], userName: email, active: true })
      t.equal(again.status, 409)
      t.same(again.body.schemas, ['urn:ietf:params:scim:api:messages:2.0:Error'])
      t.equal(again.body.scimType, 'uniqueness')

      const found = await scim('GET', `/Users?filter=${encodeURIComponent(`userName eq "${email.toUpperCase()}"`)}`)
      t.equal(found.body.totalResults, 1)
      t.equal(found.body.Resources[0].id, created.body.id)
      const none = await scim('GET', `/Users?filter=${encodeURIComponent('userName eq "nobody@scim.test"')}`)
      t.same([none.body.totalResults, none.body.Resources], [0, []])
      const bad = await scim('GET', `/Users?filter=${encodeURIComponent('emails co "x"')}`)
      t.equal(bad.status, 400)
      t.equal(bad.body.status, '400')
      const members = await k.req('GET', '/v1/users', { token: a.token })
      t.ok(
        members.body.items.some((m: any) => m.id === created.body.id && m.role === 'tenant_member'),
        'a member with the default role',
      )
    })

    t.test('deactivating ends the membership and every session at once; reactivating restores it', async (t) => {
      const [row] = await k.ownerSql('select user_id from scim_users where user_name = ?', [email])
      const id = row.user_id as string
      await k.ownerSql('update users set password_hash = ? where id = ?::uuid', [
        await hashPassword('sams-own-password'),
        id,
      ])
      const session = await k.login(email, 'sams-own-password')
      t.equal((await k.req('GET', '/v1/me', { token: session.token })).status, 200)
      const off = await scim('PATCH', `/Users/${id}`, {
        schemas: [PATCH],
        Operations: [{ op: 'Replace', path: 'active', value: 'False' }],
      })
      t.equal(off.status, 200, JSON.stringify(off.body))
      t.equal(off.body.active, false)
      t.equal((await k.req('GET', '/v1/me', { token: session.token })).status, 401, 'the session ended at once')
      const refresh = await k.req('POST', '/v1/auth/refresh', { body: { refreshToken: session.refreshToken } })
      t.equal(refresh.status, 401, 'and cannot be refreshed')
      const login = await k.req('POST', '/v1/auth/login', { body: { email, password: 'sams-own-password' } })
      t.equal(login.body.code, 'AUTH_ERR_NO_MEMBERSHIP', 'nor can they sign in to the organisation')
      t.equal((await scim('GET', `/Users/${id}`)).body.active, false, 'the SCIM record stays, inactive')

      const on = await scim('PATCH', `/Users/${id}`, {
        schemas: [PATCH],
        Operations: [{ op: 'replace', value: { active: true, 'name.givenName': 'Samuel' } }],
      })
      t.equal(on.body.active, true)
      t.equal(on.body.name.givenName, 'Samuel')
      t.ok(await k.login(email, 'sams-own-password'), 'reactivated: signs in again')
      const audit = await k.ownerSql(
        `select action from audit_log where tenant_id = ?::uuid and target_id = ? and action like 'scim.%'`,
        [a.orgId, id],
      )
      t.ok(audit.length >= 3, 'provisioning is audited')
    })

    t.test('groups: members join, a mapped group gives its role, members leave', async (t) => {
      const [row] = await k.ownerSql('select user_id from scim_users where user_name = ?', [email])
      const id = row.user_id as string
      const g = await scim('POST', '/Groups', { schemas: [GROUP], displayName: 'erp-admins', members: [{ value: id }] })
      t.equal(g.status, 201, JSON.stringify(g.body))
      t.same(
        g.body.members.map((m: any) => m.value),
        [id],
      )
      const user = await k.req('GET', `/v1/users/${id}`, { token: a.token })
      t.equal(user.body.role, 'tenant_admin', 'the group carries the role the SSO map names')
      const byName = await scim('GET', `/Groups?filter=${encodeURIComponent('displayName eq "ERP-Admins"')}`)
      t.equal(byName.body.totalResults, 1)
      const removed = await scim('PATCH', `/Groups/${g.body.id}`, {
        schemas: [PATCH],
        Operations: [{ op: 'remove', path: `members[value eq "${id}"]` }],
      })
      t.same(removed.body.members, [])
      t.equal((await scim('DELETE', `/Groups/${g.body.id}`)).status, 204)
      t.equal((await scim('GET', `/Groups/${g.body.id}`)).status, 404)
    })

    t.test('another organisation, or a caller without users.manage, gets nothing', async (t) => {
      const [row] = await k.ownerSql('select user_id from scim_users where user_name = ?', [email])
      t.equal((await scim('GET', `/Users/${row.user_id}`, undefined, bKey)).status, 404)
      t.equal((await scim('GET', '/Users', undefined, bKey)).body.totalResults, 0)
      const member = await addUser(k, a.token, `plain.${kind}@scim-a.test`, 'tenant_member')
      const refused = await scim('GET', '/Users', undefined, member.token)
      t.equal(refused.status, 403)
      t.equal((await scim('GET', '/Users', undefined, 'not-a-key')).status, 401)
    })
  })
}
