import t from 'tap'
import { QUEUE_MATRIX, startTestKernel, createTenantWithAdmin, addUser } from './helpers/test-kernel.js'
import { eventually } from './helpers/receiver.js'
import { emitEvents, kernelEvent } from '../src/events/outbox.js'
import { orgTx } from '../src/kernel-context.js'
import type { TrellisEvent } from '../src/events/catalogue.js'
import type { PluginEventSink } from '../src/events/subscribers.js'

for (const setup of QUEUE_MATRIX) {
  const kind = `${setup.db}-${setup.queue}`
  t.test(`events on ${setup.name}`, async (t) => {
    const k = await startTestKernel(t, setup, { events: { sweepMs: 200, staleMs: 2000 } })
    const a = await createTenantWithAdmin(k, `ev-a-${kind}`)
    const b = await createTenantWithAdmin(k, `ev-b-${kind}`)
    const events = k.kernel.ctx.events
    const seen: TrellisEvent[] = []
    events.on('kernel.role.*', (e) => {
      seen.push(e)
    })
    // A stand-in for the plugin host: one plugin installed for tenant A, granted kernel.role.created only.
    const pluginGot: Array<{ tenantId: string; pluginId: string; event: TrellisEvent }> = []
    const sink: PluginEventSink = {
      async subscriptions(tenantId) {
        return tenantId === a.orgId ? [{ pluginId: '@acme/orders', patterns: ['kernel.role.created'] }] : []
      },
      async deliver(tenantId, pluginId, event) {
        pluginGot.push({ tenantId, pluginId, event })
      },
    }
    events.setPluginSink(sink)
    const list = async (token: string, query = '') => (await k.req('GET', `/v1/events${query}`, { token })).body

    await t.test('a change emits its event in the same transaction, tenant from the transaction', async (t) => {
      const r = await k.req('POST', '/v1/roles', {
        token: a.token,
        body: { name: 'buyer', permissions: ['users.read'] },
      })
      t.equal(r.status, 201)
      const page = await list(a.token, '?type=kernel.role.created')
      t.equal(page.items.length, 1)
      const [e] = page.items
      t.match(e, {
        tenantId: a.orgId,
        type: 'kernel.role.created',
        source: 'trellis/kernel',
        subject: `role/${r.body.id}`,
        data: { roleId: r.body.id, name: 'buyer', permissions: ['users.read'] },
      })
      t.match(e.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7/, 'a UUIDv7')
      t.equal((await list(b.token, '?type=kernel.role.created')).items.length, 0, 'tenant B sees none of it')
      await eventually(async () => seen.some((s) => s.id === e.id))
      await eventually(async () => pluginGot.length === 1)
      t.same(
        pluginGot.map((p) => [p.tenantId, p.pluginId, p.event.id]),
        [[a.orgId, '@acme/orders', e.id]],
        'the plugin got its tenant’s subscribed event',
      )
    })

    await t.test('a rolled-back change emits nothing', async (t) => {
      const before = (await list(a.token, '?limit=200')).items.length
      const dup = await k.req('POST', '/v1/roles', {
        token: a.token,
        body: { name: 'buyer', permissions: ['users.read'] },
      })
      t.equal(dup.body.code, 'KRN_ERR_CONFLICT')
      const member = await addUser(k, a.token, `m@${kind}.ev`, 'buyer')
      const del = await k.req(
        'DELETE',
        `/v1/roles/${(await k.req('GET', '/v1/roles', { token: a.token })).body.items.find((r: any) => r.name === 'buyer').id}`,
        { token: a.token },
      )
      t.equal(del.body.code, 'KRN_ERR_CONFLICT', 'a role still held is not deleted')
      await t.rejects(
        orgTx(k.kernel.ctx, a.orgId, async (tx) => {
          await emitEvents(
            tx,
            kernelEvent('kernel.role.deleted', 'role/x', { roleId: '00000000-0000-0000-0000-000000000001', name: 'x' }),
          )
          throw new Error('change failed')
        }),
      )
      const after = (await list(a.token, '?limit=200')).items
      t.equal(after.length, before + 1, 'only the membership event was written')
      t.equal(after.at(-1).type, 'kernel.membership.created')
      t.equal(after.at(-1).data.userId, member.user.id)
    })

    await t.test('the tenant cannot be chosen by the emitter', async (t) => {
      await t.rejects(
        k.appSql(
          a.orgId,
          `insert into events (id, tenant_id, type, source, subject) values ('018f0000-0000-7000-8000-000000000001', ?::uuid, 'kernel.role.created', 'x', 'y')`,
          [b.orgId],
        ),
        /row-level security/,
      )
      await t.rejects(
        k.appSql(
          null,
          `insert into events (id, type, source, subject) values ('018f0000-0000-7000-8000-000000000002', 'kernel.role.created', 'x', 'y')`,
        ),
        /null value|row-level security/,
      )
      await t.rejects(k.appSql(a.orgId, `update events set dispatched_at = now()`), /permission denied/)
      t.equal((await k.ownerSql(`select count(*)::int as n from events where id::text like '018f0000%'`))[0].n, 0)
      const err = await orgTx(k.kernel.ctx, a.orgId, (tx) =>
        emitEvents(tx, { type: 'Not A Type', subject: 's', data: {} }),
      ).catch((e) => e)
      t.equal(err.code, 'EVT_ERR_EVENT_TYPE_INVALID')
    })

    await t.test('GET /v1/events filters by type and time and pages with a cursor', async (t) => {
      for (let i = 0; i < 5; i++)
        t.equal(
          (await k.req('POST', '/v1/roles', { token: a.token, body: { name: `page-${i}`, permissions: [] } })).status,
          201,
        )
      const all = (await list(a.token, '?type=kernel.role.created&limit=200')).items
      t.equal(all.length, 6)
      const first = await list(a.token, '?type=kernel.role.created&limit=4')
      t.equal(first.items.length, 4)
      const second = await list(a.token, `?type=kernel.role.created&limit=4&cursor=${first.nextCursor}`)
      t.same(
        [...first.items, ...second.items].map((e: any) => e.id),
        all.map((e: any) => e.id),
      )
      t.equal(second.nextCursor, null)
      const future = new Date(Date.now() + 60_000).toISOString()
      t.equal((await list(a.token, `?since=${encodeURIComponent(future)}`)).items.length, 0)
      t.equal((await list(a.token, `?until=${encodeURIComponent(future)}&type=kernel.role.created`)).items.length, 6)
      t.equal((await k.req('GET', '/v1/events?cursor=nope', { token: a.token })).body.code, 'KRN_ERR_INVALID_CURSOR')
      t.equal(
        (await k.req('GET', '/v1/events?since=yesterday', { token: a.token })).body.code,
        'KRN_ERR_VALIDATION_FAILED',
      )
      const member = await k.login(`m@${kind}.ev`, `password-of-m@${kind}.ev`)
      t.equal((await k.req('GET', '/v1/events', { token: member.token })).body.code, 'AUTH_ERR_FORBIDDEN')
      t.equal((await k.req('GET', '/v1/events')).body.code, 'AUTH_ERR_UNAUTHENTICATED')
    })

    await t.test('the catalogue lists types with JSON Schemas of their payloads', async (t) => {
      const r = await k.req('GET', '/v1/events/types', { token: a.token })
      t.equal(r.status, 200)
      const role = r.body.items.find((i: any) => i.type === 'kernel.role.created')
      t.match(role.schema, {
        type: 'object',
        properties: { roleId: { type: 'string', format: 'uuid' } },
        required: ['roleId', 'name', 'permissions'],
      })
      // The kernel's namespaces, and insights.* (the kernel's insights pass writes in the namespace
      // @trellis/insights subscribes to).
      for (const i of r.body.items) t.match(i.type, /^(kernel|marketplace|workflow|insights)\.[a-z_]+\.[a-z_]+$/)
    })

    await t.test(
      'every event reaches in-process handlers at least once, and plugins only their own tenant’s granted types',
      async (t) => {
        const ids = (await list(a.token, '?type=kernel.role.created&limit=200')).items.map((e: any) => e.id)
        await eventually(async () => ids.every((id: string) => seen.some((s) => s.id === id)))
        t.pass('all handled')
        await eventually(
          async () => (await k.ownerSql('select count(*)::int as n from events where processed_at is null'))[0].n === 0,
        )
        t.equal(pluginGot.filter((p) => p.tenantId !== a.orgId).length, 0, 'no other tenant’s event reached the plugin')
        t.ok(
          pluginGot.every((p) => p.event.type === 'kernel.role.created'),
          'only the granted type',
        )
      },
    )

    await t.test('events about one subject reach handlers in the order they were emitted', async (t) => {
      const subjectEvents = async (subject: string) => seen.filter((e) => e.subject === subject).map((e) => e.type)
      for (let i = 0; i < 3; i++) {
        const r = await k.req('POST', '/v1/roles', { token: a.token, body: { name: `ordered-${i}`, permissions: [] } })
        t.equal((await k.req('DELETE', `/v1/roles/${r.body.id}`, { token: a.token })).status, 204)
        const subject = `role/${r.body.id}`
        await eventually(async () => (await subjectEvents(subject)).length >= 2)
        t.same([...new Set(await subjectEvents(subject))], ['kernel.role.created', 'kernel.role.deleted'], subject)
      }
    })
  })
}
