import t from 'tap'
import { Webhook } from 'standardwebhooks'
import { QUEUE_MATRIX, startTestKernel, createTenantWithAdmin } from './helpers/test-kernel.js'
import { startReceiver, eventually } from './helpers/receiver.js'
import { PLATFORM_ORG } from '../src/db/database.js'
import type { TrellisEvent } from '../src/events/catalogue.js'

// Tenancy and identity changes are events: written in the change's transaction, to the
// organisations they belong to (docs/adr/0004-events-outbox-and-webhooks.md, "Whose event is it"), listed in the
// catalogue, readable at /v1/events and delivered to webhooks.
for (const setup of QUEUE_MATRIX) {
  const kind = `${setup.db}-${setup.queue}`
  t.test(`tenancy events on ${setup.name}`, async (t) => {
    const k = await startTestKernel(t, setup, {
      events: { egressAllow: ['127.0.0.1'], retryScheduleMs: [100], sweepMs: 200, staleMs: 2000 },
    })
    const handled: TrellisEvent[] = []
    k.kernel.ctx.events.on(['kernel.partner.*', 'kernel.tenant.*'], (e) => {
      handled.push(e)
    })
    const outbox = (org: string, like = 'kernel.%') =>
      k.ownerSql<{ type: string; subject: string; data: any }>(
        `select type, subject, data from events where tenant_id = ?::uuid and type like ? order by id`,
        [org, like],
      )

    const partner = await k.req('POST', '/v1/partners', {
      token: k.adminToken,
      body: {
        name: 'Acme',
        slug: `acme-ev-${kind}`,
        admin: { email: `pa@acme-ev-${kind}.test`, name: 'PA', password: 'partner-admin-password' },
      },
    })
    t.equal(partner.status, 201)
    const pid = partner.body.id as string
    const pa = await k.login(`pa@acme-ev-${kind}.test`, 'partner-admin-password')

    await t.test('a new partner is the platform’s event and the first of the partner’s own stream', async (t) => {
      t.same(
        (await outbox(PLATFORM_ORG, 'kernel.partner.%')).map((e) => [e.type, e.subject, e.data]),
        [['kernel.partner.created', `partner/${pid}`, { partnerId: pid, name: 'Acme', slug: `acme-ev-${kind}` }]],
      )
      const own = await outbox(pid)
      t.same(
        own.map((e) => e.type),
        ['kernel.partner.created', 'kernel.membership.created'],
      )
      t.match(own[1]!.data, { email: `pa@acme-ev-${kind}.test`, role: 'partner_admin' })
      await eventually(async () => handled.filter((e) => e.type === 'kernel.partner.created').length === 2)
      t.same(
        new Set(handled.filter((e) => e.type === 'kernel.partner.created').map((e) => e.tenantId)),
        new Set([PLATFORM_ORG, pid]),
        'both copies are dispatched',
      )
    })

    await t.test(
      'a new tenant: its own events start with its creation; its partner is told; a failed creation writes nothing',
      async (t) => {
        const shop = await createTenantWithAdmin(k, `shop-ev-${kind}`, { token: pa.token })
        const page = (await k.req('GET', '/v1/events', { token: shop.token })).body
        t.same(
          page.items.map((e: any) => e.type),
          ['kernel.tenant.created', 'kernel.membership.created'],
          'what the tenant admin sees at /v1/events',
        )
        t.match(page.items[0], {
          tenantId: shop.orgId,
          subject: `tenant/${shop.orgId}`,
          data: { tenantId: shop.orgId, name: `shop-ev-${kind}`, slug: `shop-ev-${kind}`, partnerId: pid },
        })
        t.match(page.items[1].data, { email: `admin@shop-ev-${kind}.test`, role: 'tenant_admin' })
        t.same(
          (await outbox(pid, 'kernel.tenant.%')).map((e) => [e.type, e.data.tenantId]),
          [['kernel.tenant.created', shop.orgId]],
          'the partner that created it',
        )
        t.same(await outbox(PLATFORM_ORG, 'kernel.tenant.%'), [], 'the platform neither manages nor created it')
        const direct = await createTenantWithAdmin(k, `direct-ev-${kind}`)
        t.same(
          (await outbox(PLATFORM_ORG, 'kernel.tenant.%')).map((e) => [e.type, e.data.tenantId, e.data.partnerId]),
          [['kernel.tenant.created', direct.orgId, null]],
          'the platform created this one',
        )

        const before = (await k.ownerSql('select count(*)::int as n from events'))[0].n
        const dup = await k.req('POST', '/v1/tenants', {
          token: pa.token,
          body: { name: 'again', slug: `shop-ev-${kind}` },
        })
        t.equal(dup.body.code, 'KRN_ERR_CONFLICT')
        const weak = await k.req('POST', '/v1/tenants', {
          token: pa.token,
          body: { name: 'x', slug: `weak-ev-${kind}`, admin: { email: 'w@x.test', name: 'w', password: 'short' } },
        })
        t.equal(weak.status, 400)
        t.equal(
          (await k.ownerSql('select count(*)::int as n from events'))[0].n,
          before,
          'no event from a creation that did not happen',
        )
      },
    )

    await t.test(
      'suspension is the tenant’s own event: its webhook hears of it, signed; the partner and the acting organisation too',
      async (t) => {
        const rx = await startReceiver()
        t.teardown(rx.close)
        const shop = await createTenantWithAdmin(k, `susp-ev-${kind}`, { token: pa.token })
        const hook = await k.req('POST', '/v1/webhooks', {
          token: shop.token,
          body: { url: rx.url, types: ['kernel.tenant.*'] },
        })
        t.equal(hook.status, 201)
        t.equal((await k.req('POST', `/v1/tenants/${shop.orgId}/suspend`, { token: pa.token })).status, 200)
        // The webhook may also hear of the tenant's creation when the dispatcher reaches that event
        // after the webhook exists; what is asserted is the suspension's delivery.
        const typeOf = (d: { body: string }) => JSON.parse(d.body).type as string
        const got = (await rx.until((all) => all.some((d) => typeOf(d) === 'kernel.tenant.suspended'))).find(
          (d) => typeOf(d) === 'kernel.tenant.suspended',
        )
        const payload = new Webhook(hook.body.secret).verify(got!.body, got!.headers as Record<string, string>) as any
        t.match(payload, {
          type: 'kernel.tenant.suspended',
          tenantId: shop.orgId,
          subject: `tenant/${shop.orgId}`,
          data: { tenantId: shop.orgId, partnerId: pid },
        })
        t.equal(
          (await k.req('GET', '/v1/events', { token: shop.token })).body.code,
          'KRN_ERR_TENANT_SUSPENDED',
          'the tenant itself is shut out meanwhile',
        )
        t.equal((await k.req('POST', `/v1/tenants/${shop.orgId}/resume`, { token: k.adminToken })).status, 200)
        const after = await rx.until((all) => all.some((d) => typeOf(d) === 'kernel.tenant.resumed'))
        t.same(
          after.map(typeOf).filter((type) => type !== 'kernel.tenant.created'),
          ['kernel.tenant.suspended', 'kernel.tenant.resumed'],
          'the suspension, then the resumption',
        )
        const seen = (await k.req('GET', '/v1/events?type=kernel.tenant.suspended', { token: shop.token })).body.items
        t.equal(seen.length, 1, 'after resuming, the tenant reads its suspension at /v1/events')
        const types = async (org: string) =>
          (await outbox(org, 'kernel.tenant.%')).filter((e) => e.data.tenantId === shop.orgId).map((e) => e.type)
        t.same(
          await types(pid),
          ['kernel.tenant.created', 'kernel.tenant.suspended', 'kernel.tenant.resumed'],
          'the managing partner hears of both',
        )
        t.same(await types(PLATFORM_ORG), ['kernel.tenant.resumed'], 'the platform only of the act it did')
        await k.req('DELETE', `/v1/webhooks/${hook.body.id}`, { token: shop.token })
      },
    )

    await t.test('partner changes: the partner’s and the platform’s events', async (t) => {
      t.equal(
        (
          await k.req('PATCH', `/v1/partners/${pid}`, {
            token: pa.token,
            body: { branding: { displayName: 'Acme Cloud' } },
          })
        ).status,
        200,
      )
      t.equal((await k.req('POST', `/v1/partners/${pid}/suspend`, { token: k.adminToken })).status, 200)
      t.equal((await k.req('POST', `/v1/partners/${pid}/resume`, { token: k.adminToken })).status, 200)
      for (const org of [pid, PLATFORM_ORG]) {
        const rows = (await outbox(org, 'kernel.partner.%')).map((e) => [e.type, e.data])
        t.same(
          rows.slice(-3),
          [
            ['kernel.partner.updated', { partnerId: pid, changes: ['branding'] }],
            ['kernel.partner.suspended', { partnerId: pid }],
            ['kernel.partner.resumed', { partnerId: pid }],
          ],
          org === pid ? 'in the partner' : 'in the platform',
        )
      }
      const refused = await k.req('POST', `/v1/partners/${pid}/suspend`, { token: pa.token })
      t.equal(refused.body.code, 'AUTH_ERR_FORBIDDEN')
      t.equal((await outbox(pid, 'kernel.partner.suspended')).length, 1, 'a refused act emits nothing')
    })

    await t.test('the catalogue lists the tenancy events with payload schemas', async (t) => {
      const shop = await createTenantWithAdmin(k, `cat-ev-${kind}`)
      const items = (await k.req('GET', '/v1/events/types', { token: shop.token })).body.items
      for (const type of [
        'kernel.partner.created',
        'kernel.partner.updated',
        'kernel.partner.suspended',
        'kernel.partner.resumed',
        'kernel.tenant.created',
        'kernel.tenant.suspended',
        'kernel.tenant.resumed',
        'kernel.webhook.delivery_failed',
      ]) {
        const item = items.find((i: any) => i.type === type)
        t.ok(item, type)
        t.equal(item?.schema.type, 'object', `${type} has a payload schema`)
      }
      t.match(items.find((i: any) => i.type === 'kernel.tenant.created').schema, {
        required: ['tenantId', 'name', 'slug', 'partnerId'],
      })
    })
  })
}
