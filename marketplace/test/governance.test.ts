// Review, listings, channel catalogs and the kill switch, through the API. Versions enter the
// review queue here by registration (publishing.test.ts covers the upload and its checks).
import t from 'tap'
import { join } from 'node:path'
import { readFile } from 'node:fs/promises'
import { buildPlugin } from '@trellis/plugin-sdk'
import { DB_KINDS, createTenantWithAdmin, addUser } from '../../core/test/helpers/test-kernel.js'
import { startMarketKernel } from './fixtures/kernel.js'
import { registerVersion } from '../../core/test/helpers/plugin-versions.js'

const dir = join(import.meta.dirname, '..', '..', 'core', 'test', 'fixtures', 'plugins', 'notes')
const manifest = JSON.parse(await readFile(join(dir, 'trellis.plugin.json'), 'utf8'))
const built = await buildPlugin({ dir, write: false })
const bundle = (version: string, extra: Record<string, unknown> = {}) => ({
  manifest: { ...manifest, version, categories: ['notes', 'productivity'], ...extra },
  code: built.code,
  sourceMap: built.sourceMap,
})

for (const kind of DB_KINDS)
  t.test(`marketplace governance (${kind})`, async (t) => {
    const k = await startMarketKernel(t, kind, { plugins: { sandboxWorkers: 1 } })
    const partner = await k.req('POST', '/v1/partners', {
      token: k.adminToken,
      body: {
        name: 'Acme Channel',
        slug: 'acme',
        admin: { email: 'admin@acme.test', name: 'Acme admin', password: 'password-of-acme-admin' },
      },
    })
    const partnerToken = (await k.login('admin@acme.test', 'password-of-acme-admin')).token
    const managed = await createTenantWithAdmin(k, 'managed', { token: partnerToken })
    const direct = await createTenantWithAdmin(k, 'direct')
    const v1 = await registerVersion(k, { ...bundle('1.0.0'), publisherId: partner.body.id }, 'in_review')
    const v2 = await registerVersion(k, { ...bundle('1.1.0'), publisherId: partner.body.id }, 'in_review')
    const install = (token: string, version: string, query = '') =>
      k.req('POST', `/v1/installations${query}`, {
        token,
        body: { plugin: '@acme/notes', version, capabilities: manifest.capabilities },
      })

    await t.test(
      'the review queue and decisions: platform reviewers only, with a reason, never the publisher',
      async (t) => {
        const queue = await k.req('GET', '/v1/marketplace/reviews', { token: k.adminToken })
        t.equal(queue.status, 200)
        t.same(
          queue.body.items.map((v: any) => v.version),
          ['1.0.0', '1.1.0'],
        )
        t.equal(queue.body.items[0].publisherName, 'Acme Channel')
        t.same(queue.body.items[0].capabilities, manifest.capabilities)
        t.equal(
          (await k.req('GET', '/v1/marketplace/reviews', { token: partnerToken })).status,
          403,
          'partners do not see the queue',
        )
        t.equal(
          (await install(direct.token, '1.0.0')).body.code,
          'PLG_ERR_VERSION_NOT_APPROVED',
          'nothing installs before approval',
        )
        const noReason = await k.req('POST', `/v1/marketplace/versions/${v1.id}/approve`, {
          token: k.adminToken,
          body: {},
        })
        t.equal(noReason.status, 400, 'a decision needs a reason')
        t.equal(
          (
            await k.req('POST', `/v1/marketplace/versions/${v1.id}/approve`, {
              token: partnerToken,
              body: { reason: 'looks good to me' },
            })
          ).status,
          403,
          'a publisher cannot approve',
        )
        // A platform admin who is also a member of the publishing partner.
        const invite = await k.req('POST', '/v1/invitations', {
          token: k.adminToken,
          body: { email: 'admin@acme.test', role: 'platform_admin' },
        })
        t.equal(invite.status, 201, JSON.stringify(invite.body))
        const both = await k.req('POST', '/v1/invitations/accept', {
          body: { token: invite.body.acceptToken, password: 'password-of-acme-admin' },
        })
        t.equal(both.status, 200, JSON.stringify(both.body))
        const asPlatform = await k.login(
          'admin@acme.test',
          'password-of-acme-admin',
          '00000000-0000-0000-0000-000000000000',
        )
        const self = await k.req('POST', `/v1/marketplace/versions/${v1.id}/approve`, {
          token: asPlatform.token,
          body: { reason: 'my own work is fine' },
        })
        t.equal(self.body.code, 'MKT_ERR_SELF_REVIEW')
        const approved = await k.req('POST', `/v1/marketplace/versions/${v1.id}/approve`, {
          token: k.adminToken,
          body: { reason: 'checks pass, capabilities fit a notes plugin' },
        })
        t.equal(approved.status, 200, JSON.stringify(approved.body))
        t.equal(approved.body.status, 'approved')
        t.equal(approved.body.review.reason, 'checks pass, capabilities fit a notes plugin')
        t.equal(
          (
            await k.req('POST', `/v1/marketplace/versions/${v1.id}/approve`, {
              token: k.adminToken,
              body: { reason: 'again' },
            })
          ).body.code,
          'MKT_ERR_NOT_IN_REVIEW',
        )
        const rejected = await k.req('POST', `/v1/marketplace/versions/${v2.id}/reject`, {
          token: k.adminToken,
          body: { reason: 'changelog missing' },
        })
        t.equal(rejected.body.status, 'rejected')
        t.equal(
          (await install(direct.token, '1.1.0')).body.code,
          'PLG_ERR_VERSION_NOT_APPROVED',
          'a rejected version does not install',
        )
        const events = await k.ownerSql(
          `select tenant_id, type from events where type in ('marketplace.version.approved', 'marketplace.version.rejected') order by id`,
        )
        t.same(
          events.map((e: any) => [e.tenant_id, e.type]),
          [
            ['00000000-0000-0000-0000-000000000000', 'marketplace.version.approved'],
            [partner.body.id, 'marketplace.version.approved'],
            ['00000000-0000-0000-0000-000000000000', 'marketplace.version.rejected'],
            [partner.body.id, 'marketplace.version.rejected'],
          ],
        )
        const audit = await k.ownerSql(
          `select action, data from audit_log where action like 'marketplace.version.%' order by id`,
        )
        t.same(
          audit.map((a: any) => a.action),
          ['marketplace.version.approved', 'marketplace.version.rejected'],
        )
      },
    )

    await t.test(
      'listings: approved versions, search, category, publisher, install counts; details by audience',
      async (t) => {
        t.equal((await install(direct.token, '1.0.0')).status, 201)
        const list = await k.req('GET', '/v1/marketplace/plugins', { token: direct.token })
        t.equal(list.status, 200)
        t.same(
          list.body.items.map((p: any) => [p.name, p.version, p.installs]),
          [['@acme/notes', '1.0.0', 1]],
        )
        t.same(list.body.items[0].publisher, { id: partner.body.id, name: 'Acme Channel' })
        t.equal((await k.req('GET', '/v1/marketplace/plugins?q=notes', { token: direct.token })).body.items.length, 1)
        t.equal(
          (await k.req('GET', '/v1/marketplace/plugins?q=invoices', { token: direct.token })).body.items.length,
          0,
        )
        t.equal(
          (await k.req('GET', '/v1/marketplace/plugins?category=productivity', { token: direct.token })).body.items
            .length,
          1,
        )
        t.equal(
          (await k.req('GET', '/v1/marketplace/plugins?category=erp', { token: direct.token })).body.items.length,
          0,
        )
        t.equal(
          (await k.req('GET', `/v1/marketplace/plugins?publisher=${direct.orgId}`, { token: direct.token })).body.items
            .length,
          0,
        )
        t.equal(
          (
            await k.req('GET', '/v1/marketplace/plugins?q=%27%3B%20drop%20table%20plugin_versions%3B--', {
              token: direct.token,
            })
          ).status,
          200,
          'SQL in a search is just text',
        )
        const tenantView = await k.req('GET', '/v1/marketplace/plugins/@acme/notes', { token: direct.token })
        t.same(
          tenantView.body.versions.map((v: any) => v.version),
          ['1.0.0'],
          'tenants see approved versions only',
        )
        const publisherView = await k.req('GET', '/v1/marketplace/plugins/@acme/notes', { token: partnerToken })
        t.same(
          publisherView.body.versions.map((v: any) => [v.version, v.status]),
          [
            ['1.1.0', 'rejected'],
            ['1.0.0', 'approved'],
          ],
          'the publisher sees every version',
        )
        t.equal(
          (await k.req('GET', '/v1/marketplace/plugins/@acme/nothing', { token: direct.token })).body.code,
          'MKT_ERR_PLUGIN_NOT_FOUND',
        )
      },
    )

    await t.test('channel catalogs: a partner restricts what its tenants install, under its own name', async (t) => {
      const set = await k.req('PUT', '/v1/marketplace/catalog', {
        token: partnerToken,
        body: { displayName: 'Acme App Store', mode: 'allow_list', plugins: ['@acme/other'] },
      })
      t.equal(set.status, 200)
      t.equal(
        (
          await k.req('PUT', '/v1/marketplace/catalog', {
            token: managed.token,
            body: { displayName: 'x', mode: 'all', plugins: [] },
          })
        ).status,
        403,
        'tenants cannot set it',
      )
      const seen = await k.req('GET', '/v1/marketplace/plugins', { token: managed.token })
      t.same(seen.body.catalog, { displayName: 'Acme App Store' })
      t.same(seen.body.items, [], 'the plugin is not in the catalog')
      const refused = await install(managed.token, '1.0.0')
      t.equal(refused.body.code, 'MKT_ERR_NOT_IN_CATALOG')
      t.equal(
        (await install(partnerToken, '1.0.0', `?tenantId=${managed.orgId}`)).body.code,
        'MKT_ERR_NOT_IN_CATALOG',
        'not even by the partner',
      )
      await k.req('PUT', '/v1/marketplace/catalog', {
        token: partnerToken,
        body: { displayName: 'Acme App Store', mode: 'allow_list', plugins: ['@acme/notes'] },
      })
      t.equal((await k.req('GET', '/v1/marketplace/plugins', { token: managed.token })).body.items.length, 1)
      const byPartner = await install(partnerToken, '1.0.0', `?tenantId=${managed.orgId}`)
      t.equal(byPartner.status, 201, 'a partner admin installs for a tenant it manages')
      t.equal(
        (await install(partnerToken, '1.0.0', `?tenantId=${direct.orgId}`)).status,
        404,
        'but not for one it does not manage',
      )
      t.equal(
        (await k.req('GET', '/v1/marketplace/plugins', { token: direct.token })).body.catalog,
        null,
        'a direct tenant has no partner catalog',
      )
    })

    await t.test(
      'the kill switch: a blocked version stops serving everywhere, tenants are told, it is audited',
      async (t) => {
        const member = await addUser(k, direct.token, 'member@direct.test', 'tenant_member')
        t.equal(
          (
            await k.req('POST', `/v1/marketplace/versions/${v1.id}/block`, {
              token: direct.token,
              body: { reason: 'nope' },
            })
          ).status,
          403,
        )
        t.equal(
          (
            await k.req('POST', `/v1/marketplace/versions/${v2.id}/block`, {
              token: k.adminToken,
              body: { reason: 'rejected anyway' },
            })
          ).body.code,
          'MKT_ERR_NOT_BLOCKABLE',
        )
        t.equal((await k.req('GET', '/v1/x/notes/notes', { token: direct.token })).status, 200)
        const blocked = await k.req('POST', `/v1/marketplace/versions/${v1.id}/block`, {
          token: k.adminToken,
          body: { reason: 'leaks data through its notes route' },
        })
        t.equal(blocked.status, 200)
        t.equal(blocked.body.blockedReason, 'leaks data through its notes route')
        for (const token of [direct.token, managed.token, member.token]) {
          const r = await k.req('GET', '/v1/x/notes/notes', { token })
          t.equal(r.status, 403)
          t.equal(r.body.code, 'PLG_ERR_VERSION_BLOCKED')
        }
        t.equal((await install(direct.token, '1.0.0')).body.code, 'PLG_ERR_VERSION_BLOCKED', 'nor can it be installed')
        for (const org of [direct.orgId, managed.orgId]) {
          const told = await k.ownerSql(
            `select data from events where tenant_id = ? and type = 'marketplace.version.blocked'`,
            [org],
          )
          t.equal(told.length, 1, 'each tenant running it is told')
          t.equal(told[0].data.reason, 'leaks data through its notes route')
          const audited = await k.ownerSql(
            `select count(*)::int as n from audit_log where tenant_id = ? and action = 'marketplace.version.blocked'`,
            [org],
          )
          t.equal(audited[0].n, 1)
        }
        t.equal(
          (await k.req('GET', '/v1/marketplace/plugins', { token: direct.token })).body.items.length,
          0,
          'it is no longer listed',
        )
        t.equal(
          (await k.req('POST', `/v1/marketplace/versions/${v1.id}/unblock`, { token: k.adminToken, body: {} })).status,
          200,
        )
        t.equal(
          (await k.req('GET', '/v1/x/notes/notes', { token: direct.token })).status,
          200,
          'unblocked, it serves again',
        )
      },
    )
  })
