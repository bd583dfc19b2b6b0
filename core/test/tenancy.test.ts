import t from 'tap'
import { DB_KINDS, startTestKernel, createTenantWithAdmin, addUser } from './helpers/test-kernel.js'

for (const kind of DB_KINDS) {
  t.test(`tenancy on ${kind}`, async (t) => {
    const k = await startTestKernel(t, kind)
    const partner = await k.req('POST', '/v1/partners', {
      token: k.adminToken,
      body: {
        name: 'Acme Distribution',
        slug: `acme-${kind}`,
        branding: { displayName: 'Acme ERP', primaryColor: '#112233', customDomain: `erp-${kind}.acme.example` },
        admin: { email: `pa@acme-${kind}.test`, name: 'PA', password: 'partner-admin-password' },
      },
    })
    t.equal(partner.status, 201)
    const pa = await k.login(`pa@acme-${kind}.test`, 'partner-admin-password')
    t.equal(pa.orgId, partner.body.id)
    const other = await k.req('POST', '/v1/partners', {
      token: k.adminToken,
      body: {
        name: 'Other',
        slug: `other-${kind}`,
        admin: { email: `pa@other-${kind}.test`, name: 'PO', password: 'other-admin-password' },
      },
    })
    const po = await k.login(`pa@other-${kind}.test`, 'other-admin-password')

    t.test('a partner admin creates tenants it is the channel for, and sees only those', async (t) => {
      const mine = await createTenantWithAdmin(k, `acme-shop-${kind}`, { token: pa.token })
      t.equal(mine.tenant.partnerId, partner.body.id)
      const theirs = await createTenantWithAdmin(k, `other-shop-${kind}`, { token: po.token })
      const direct = await createTenantWithAdmin(k, `direct-shop-${kind}`)
      t.equal(direct.tenant.partnerId, null)
      const list = await k.req('GET', '/v1/tenants', { token: pa.token })
      t.same(
        list.body.items.map((x: any) => x.slug),
        [`acme-shop-${kind}`],
      )
      t.equal((await k.req('GET', `/v1/tenants/${theirs.tenant.id}`, { token: pa.token })).status, 404)
      t.equal((await k.req('GET', `/v1/tenants/${mine.tenant.id}`, { token: pa.token })).status, 200)
      const all = await k.req('GET', '/v1/tenants', { token: k.adminToken })
      t.equal(all.body.items.length, 3, 'the platform sees every tenant')
      // A partner cannot place a tenant under another partner.
      const hijack = await k.req('POST', '/v1/tenants', {
        token: pa.token,
        body: { name: 'x', slug: `hijack-${kind}`, partnerId: other.body.id },
      })
      t.equal(hijack.status, 403)
      t.equal(hijack.body.code, 'AUTH_ERR_FORBIDDEN')
      t.equal((await k.ownerSql('select count(*)::int as n from tenants where slug = ?', [`hijack-${kind}`]))[0].n, 0)
      // A tenant admin cannot create tenants, nor partners.
      t.equal(
        (await k.req('POST', '/v1/tenants', { token: mine.token, body: { name: 'x', slug: `sub-${kind}` } })).body.code,
        'AUTH_ERR_FORBIDDEN',
      )
      t.equal(
        (await k.req('POST', '/v1/partners', { token: pa.token, body: { name: 'x', slug: `p2-${kind}` } })).body.code,
        'AUTH_ERR_FORBIDDEN',
      )
      // Partner metadata is not business data: the partner cannot read its tenants' users.
      t.equal(
        (await k.req('GET', '/v1/users', { token: pa.token })).body.items.length,
        1,
        "only the partner's own members",
      )
    })

    t.test("tenants inherit their partner's branding; the console finds it by domain before sign-in", async (t) => {
      const shop = await createTenantWithAdmin(k, `branded-${kind}`, { token: pa.token })
      const b = await k.req('GET', '/v1/branding', { token: shop.token })
      t.same(b.body, {
        source: 'partner',
        branding: { displayName: 'Acme ERP', primaryColor: '#112233', customDomain: `erp-${kind}.acme.example` },
      })
      const upd = await k.req('PATCH', `/v1/partners/${partner.body.id}`, {
        token: pa.token,
        body: { branding: { displayName: 'Acme Cloud', primaryColor: '#445566' } },
      })
      t.equal(upd.status, 200)
      t.equal((await k.req('GET', '/v1/branding', { token: shop.token })).body.branding.displayName, 'Acme Cloud')
      t.equal(
        (await k.req('PATCH', `/v1/partners/${partner.body.id}`, { token: po.token, body: { name: 'mine now' } }))
          .status,
        404,
      )
      t.equal(
        (
          await k.req('PATCH', `/v1/partners/${partner.body.id}`, {
            token: pa.token,
            body: { branding: { logoUrl: 'javascript:alert(1)' } },
          })
        ).body.code,
        'KRN_ERR_VALIDATION_FAILED',
      )
      const anon = await k.req('GET', `/v1/branding?domain=erp-${kind}.acme.example`)
      t.equal(anon.body.source, 'platform', 'the domain was dropped by the last update')
      const direct = await k.req('GET', '/v1/branding', { token: k.adminToken })
      t.equal(direct.body.source, 'platform')
    })

    t.test('suspending a tenant stops all its access at once, and resuming restores it', async (t) => {
      const shop = await createTenantWithAdmin(k, `suspend-${kind}`, { token: pa.token })
      const member = await addUser(k, shop.token, `m@suspend-${kind}.test`, 'tenant_member')
      const key = await k.req('POST', '/v1/api-keys', {
        token: shop.token,
        body: { name: 'ci', permissions: ['users.read'] },
      })
      t.equal((await k.req('GET', '/v1/users', { token: key.body.key })).status, 200)
      // Known to the kernel just before: the route that reads no table must still refuse it after.
      t.equal((await k.req('GET', '/v1/auth/session', { token: shop.token })).status, 200)
      const s = await k.req('POST', `/v1/tenants/${shop.tenant.id}/suspend`, { token: pa.token })
      t.equal(s.status, 200)
      t.equal(s.body.status, 'suspended')
      for (const [who, token] of [
        ['admin token', shop.token],
        ['member token', member.token],
        ['API key', key.body.key],
      ]) {
        for (const path of ['/v1/me', '/v1/auth/session']) {
          const r = await k.req('GET', path, { token })
          t.equal(r.status, 403, `${who} on ${path}`)
          t.equal(r.body.code, 'KRN_ERR_TENANT_SUSPENDED', `${who} on ${path}`)
        }
      }
      t.equal(
        (await k.req('POST', '/v1/auth/login', { body: { email: shop.email, password: shop.password } })).body.code,
        'KRN_ERR_TENANT_SUSPENDED',
      )
      t.equal(
        (await k.req('POST', '/v1/auth/refresh', { body: { refreshToken: shop.refreshToken } })).body.code,
        'KRN_ERR_TENANT_SUSPENDED',
      )
      t.equal(
        (await k.req('POST', `/v1/tenants/${shop.tenant.id}/suspend`, { token: po.token })).status,
        404,
        'another partner cannot touch it',
      )
      t.equal((await k.req('POST', `/v1/tenants/${shop.tenant.id}/resume`, { token: pa.token })).body.status, 'active')
      t.equal((await k.req('GET', '/v1/me', { token: shop.token })).status, 200)
      const audit = await k.req('GET', '/v1/audit?action=tenant.', { token: shop.token })
      t.same(
        audit.body.items.map((e: any) => e.action),
        ['tenant.resumed', 'tenant.suspended', 'tenant.created'],
      )
    })

    t.test('suspending a partner suspends its tenants too', async (t) => {
      const shop = await createTenantWithAdmin(k, `psusp-${kind}`, { token: po.token })
      t.equal((await k.req('POST', `/v1/partners/${other.body.id}/suspend`, { token: k.adminToken })).status, 200)
      t.equal((await k.req('GET', '/v1/me', { token: shop.token })).body.code, 'KRN_ERR_PARTNER_SUSPENDED')
      t.equal((await k.req('GET', '/v1/me', { token: po.token })).body.code, 'KRN_ERR_TENANT_SUSPENDED')
      t.equal(
        (await k.req('POST', `/v1/partners/${other.body.id}/resume`, { token: pa.token })).body.code,
        'AUTH_ERR_FORBIDDEN',
      )
      t.equal((await k.req('POST', `/v1/partners/${other.body.id}/resume`, { token: k.adminToken })).status, 200)
      t.equal((await k.req('GET', '/v1/me', { token: shop.token })).status, 200)
    })

    t.test('bad input: duplicate slugs, bad slugs, unknown fields', async (t) => {
      const dup = await k.req('POST', '/v1/tenants', {
        token: k.adminToken,
        body: { name: 'x', slug: `acme-shop-${kind}` },
      })
      t.equal(dup.status, 409)
      t.equal(dup.body.code, 'KRN_ERR_CONFLICT')
      t.equal(
        (
          await k.req('POST', '/v1/tenants', {
            token: k.adminToken,
            body: { name: 'x', slug: "x'; drop table tenants; --" },
          })
        ).body.code,
        'KRN_ERR_VALIDATION_FAILED',
      )
      t.equal(
        (
          await k.req('POST', '/v1/tenants', {
            token: k.adminToken,
            body: { name: 'x', slug: `ok-${kind}`, status: 'active' },
          })
        ).body.code,
        'KRN_ERR_VALIDATION_FAILED',
      )
      t.equal(
        (
          await k.req('POST', '/v1/tenants', {
            token: k.adminToken,
            body: { name: 'x', slug: `weak-${kind}`, admin: { email: `w@${kind}.test`, name: 'w', password: 'short' } },
          })
        ).body.code,
        'AUTH_ERR_WEAK_PASSWORD',
      )
      t.equal(
        (
          await k.ownerSql('select count(*)::int as n from tenants where slug in (?, ?)', [
            `ok-${kind}`,
            `weak-${kind}`,
          ])
        )[0].n,
        0,
        'nothing half-written',
      )
    })
  })
}
