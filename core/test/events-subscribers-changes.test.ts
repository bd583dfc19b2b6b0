import t from 'tap'
import { DB_KINDS, createTenantWithAdmin } from './helpers/test-kernel.js'
import { eventually } from './helpers/receiver.js'
import { startSubscribersKernel } from './helpers/subscribers-kernel.js'
import { bindSubscribers, emitEvents } from '../src/events/outbox.js'
import { SubscriberIndex } from '../src/events/subscriber-index.js'
import { patternsMatching } from '../src/events/catalogue.js'

// What changed in a tenant's subscriptions since a cached generation is found without re-reading
// the rest (ADR 0105): an endpoint that wants other types leaves events processed at write; one
// that wants the type makes them pending, in whichever process it was created; a process moves
// its cache by what changed; and the fan-out finds an event's endpoints by its patterns.
t.test('patternsMatching lists what matchesAny accepts', async (t) => {
  t.same(patternsMatching('kernel.role.created'), ['*', 'kernel.role.created', 'kernel.*', 'kernel.role.*'])
})

for (const kind of DB_KINDS)
  t.test(`subscriber changes since a cache on ${kind}`, async (t) => {
    const { k, receiver, index, createRole, otherProcessEndpoint, deliveredRoles } = await startSubscribersKernel(
      t,
      kind,
    )
    const roleEvent = async (roleId: string) => {
      const [row] = await k.ownerSql<{ id: string; at_write: boolean }>(
        `select id, processed_at is not null and processed_at = time as at_write from events
          where type = 'kernel.role.created' and data ->> 'roleId' = ?`,
        [roleId],
      )
      return row!
    }
    await t.test(
      'an endpoint wanting other types, created behind the cache: events stay processed at write',
      async (t) => {
        const a = await createTenantWithAdmin(k, `sc-a-${kind}`)
        await index.load(a.orgId)
        await otherProcessEndpoint(a.orgId, ['kernel.tenant.suspended'])
        await otherProcessEndpoint(a.orgId, ['kernel.role.deleted', 'kernel.roles.*', 'kernel.role.created.*'])
        const role = await createRole(a.token)
        t.ok(
          (await roleEvent(role.id)).at_write,
          'the generation moved, but nothing changed since wants kernel.role.created',
        )
      },
    )

    await t.test('an endpoint enabled behind the cache gets every event from the first', async (t) => {
      const a = await createTenantWithAdmin(k, `sc-b-${kind}`)
      const hook = await otherProcessEndpoint(a.orgId, ['kernel.role.*'], 'disabled')
      await index.load(a.orgId)
      t.not(
        index.unsubscribedGen(a.orgId, 'kernel.role.created'),
        undefined,
        'cached: the disabled endpoint wants nothing',
      )
      await k.appSql(a.orgId, `update webhook_endpoints set status = 'active' where id = ?::uuid`, [hook])
      const role = await createRole(a.token)
      t.notOk((await roleEvent(role.id)).at_write, 'pending, though the cache said nobody subscribed')
      await receiver.until(() => deliveredRoles().includes(role.id))
      await eventually(async () => index.unsubscribedGen(a.orgId, 'kernel.role.created') === undefined)
      t.pass('delivered, and the cache read what changed')
    })

    await t.test("this process's own endpoint moves its cache with no read", async (t) => {
      const a = await createTenantWithAdmin(k, `sc-c-${kind}`)
      await otherProcessEndpoint(a.orgId, ['kernel.api_key.*'])
      await index.load(a.orgId)
      const gen = index.unsubscribedGen(a.orgId, 'kernel.role.created')
      const hook = await k.req('POST', '/v1/webhooks', {
        token: a.token,
        body: { url: receiver.url, types: ['kernel.role.created'] },
      })
      t.equal(hook.status, 201)
      t.equal(index.unsubscribedGen(a.orgId, 'kernel.role.created'), undefined, 'known the moment the answer came')
      t.equal(index.unsubscribedGen(a.orgId, 'kernel.api_key.created'), undefined, 'what it knew before, kept')
      t.equal(index.unsubscribedGen(a.orgId, 'kernel.user.created'), String(Number(gen) + 1), 'at the new generation')
      const role = await createRole(a.token)
      await receiver.until(() => deliveredRoles().includes(role.id))
      t.pass('delivered')
    })

    await t.test(
      "another process's stale cache: the event is pending, never lost, and it reads only what changed",
      async (t) => {
        const a = await createTenantWithAdmin(k, `sc-d-${kind}`)
        await otherProcessEndpoint(a.orgId, ['kernel.api_key.*'])
        const other = new SubscriberIndex(k.kernel.ctx.db.background, () => [])
        t.teardown(() => other.close())
        await other.load(a.orgId)
        const hook = await k.req('POST', '/v1/webhooks', {
          token: a.token,
          body: { url: receiver.url, types: ['other.note.*'] },
        })
        t.equal(hook.status, 201)
        const emit = (type: string) =>
          k.kernel.ctx.db.inOrg(a.orgId, (tx) => {
            bindSubscribers(tx, other, a.orgId)
            return emitEvents(tx, { type, subject: 'note/1', data: {} })
          })
        // Processed by the write itself (at its transaction's time), not later by a fan-out.
        const processed = async (id: string) =>
          (
            await k.ownerSql<{ w: boolean }>(
              'select processed_at is not null and processed_at = time as w from events where id = ?',
              [id],
            )
          )[0]!.w
        t.not(other.unsubscribedGen(a.orgId, 'other.note.created'), undefined, 'its cache does not know the endpoint')
        const [wanted] = await emit('other.note.created')
        t.notOk(await processed(wanted!), 'pending for the endpoint it did not know')
        const [unwanted] = await emit('other.task.created')
        t.ok(await processed(unwanted!), 'an event nobody wants is still processed at write')
        await eventually(async () => other.unsubscribedGen(a.orgId, 'other.note.created') === undefined)
        t.equal(other.unsubscribedGen(a.orgId, 'kernel.api_key.created'), undefined, 'and still knows what it knew')
        await eventually(async () => {
          const [d] = await k.ownerSql('select 1 from webhook_deliveries where event_id = ?', [wanted])
          return d !== undefined
        })
        t.pass('delivered to the endpoint')
      },
    )

    await t.test("fan-out finds an event's endpoints by its patterns among many", async (t) => {
      const a = await createTenantWithAdmin(k, `sc-e-${kind}`)
      const b = await createTenantWithAdmin(k, `sc-e2-${kind}`)
      await k.appSql(
        a.orgId,
        `insert into webhook_endpoints (id, url, types, secret_enc)
         select gen_random_uuid(), 'https://93.184.215.14/hooks', array['kernel.tenant.suspended', 'x' || i || '.y.z'], 'unused' from generate_series(1, 300) i`,
      )
      const wanted: string[] = []
      for (const types of [['*'], ['kernel.role.created'], ['kernel.*'], ['other.x.y', 'kernel.role.*']])
        wanted.push(await otherProcessEndpoint(a.orgId, types))
      for (const types of [['kernel.rol.*'], ['kernel.role.created.*'], ['kernel.roles.*'], ['kernel.role.deleted']])
        await otherProcessEndpoint(a.orgId, types)
      await otherProcessEndpoint(a.orgId, ['*'], 'disabled')
      await otherProcessEndpoint(b.orgId, ['*'])
      const role = await createRole(a.token)
      const ev = await roleEvent(role.id)
      const endpoints = await eventually(async () => {
        const rows = await k.ownerSql<{ endpoint_id: string }>(
          'select endpoint_id from webhook_deliveries where event_id = ?',
          [ev.id],
        )
        return rows.length >= wanted.length && rows
      })
      t.same(
        endpoints.map((r) => r.endpoint_id).sort(),
        [...wanted].sort(),
        'exactly the active endpoints whose patterns match',
      )
    })

    await t.test("attacked: a request transaction cannot list endpoints through the owner's lookup", async (t) => {
      const a = await createTenantWithAdmin(k, `sc-f-${kind}`)
      await t.rejects(
        k.appSql(a.orgId, `select * from trellis_event_endpoints('{kernel.role.created}')`),
        { code: '42501' },
        'only the event pipeline may call it',
      )
    })
  })
