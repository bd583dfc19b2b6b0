import t from 'tap'
import { randomBytes } from 'node:crypto'
import { QUEUE_MATRIX, startTestKernel, createTenantWithAdmin } from './helpers/test-kernel.js'
import { startReceiver, eventually } from './helpers/receiver.js'
import { uuidv7Floor } from '../src/events/event-system.js'

// Retention: processed events and finished deliveries older than the configured periods are
// purged by a periodic job running as trellis_events; unprocessed events and pending deliveries
// are never touched (the job's query and the database's policies both refuse them).
const DAY = 86_400_000
const oldId = (ms: number) => uuidv7Floor(ms).slice(0, 24) + randomBytes(6).toString('hex')

for (const setup of QUEUE_MATRIX) {
  const kind = `${setup.db}-${setup.queue}`
  t.test(`event retention on ${setup.name}`, async (t) => {
    const k = await startTestKernel(t, setup, {
      events: {
        egressAllow: ['127.0.0.1'],
        retryScheduleMs: [3_600_000],
        sweepMs: 200,
        staleMs: 1000,
        eventRetentionDays: 30,
        deliveryRetentionDays: 7,
        retentionIntervalMs: 300,
        retentionBatch: 2,
      },
    })
    const events = k.kernel.ctx.events
    // A slow subscriber: events about API keys named in `held` stay unprocessed until released.
    const held = new Set<string>(['held'])
    events.on('kernel.api_key.*', (e) => {
      if (held.has(e.data.name as string)) throw new Error('not yet')
    })
    const a = await createTenantWithAdmin(k, `ret-a-${kind}`)
    const ok = await startReceiver(() => 200)
    const down = await startReceiver(() => 500)
    t.teardown(async () => Promise.all([ok.close(), down.close()]))
    const okEp = (
      await k.req('POST', '/v1/webhooks', { token: a.token, body: { url: ok.url, types: ['kernel.role.created'] } })
    ).body
    const downEp = (
      await k.req('POST', '/v1/webhooks', { token: a.token, body: { url: down.url, types: ['kernel.role.deleted'] } })
    ).body
    const count = async (sql: string, params: unknown[] = []) =>
      (await k.ownerSql<{ n: number }>(`select count(*)::int as n from ${sql}`, params))[0]!.n

    await t.test(
      'the job purges what is old, in batches, and never an unprocessed event or a pending delivery',
      async (t) => {
        const now = Date.now()
        const tenant = a.orgId
        // Written in one transaction, so the job (already running) sees all of it or none.
        const unprocessed = oldId(now - 40 * DAY + 3)
        const pending = oldId(now - 10 * DAY + 2)
        const oldEvents = [oldId(now - 40 * DAY), oldId(now - 40 * DAY + 1), oldId(now - 40 * DAY + 2)]
        const oldDeliveries = [oldId(now - 10 * DAY), oldId(now - 10 * DAY + 1)]
        await k.kernel.ctx.db.asOwner(async (tx) => {
          // Old history, as it would be after 40 days: two processed events, each delivered (10 days ago) …
          for (const id of oldEvents) {
            await tx.sql(
              `insert into events (id, tenant_id, type, source, subject, time, processed_at, dispatched_at) values (?, ?, 'kernel.role.created', 'trellis/kernel', ?, now() - interval '40 days', now() - interval '40 days', now() - interval '40 days')`,
              [id, tenant, `role/${id}`],
            )
          }
          for (const [i, id] of oldDeliveries.entries()) {
            await tx.sql(
              `insert into webhook_deliveries (id, tenant_id, endpoint_id, event_id, event_type, status, attempts, created_at, updated_at) values (?, ?, ?, ?, 'kernel.role.created', 'delivered', 1, now() - interval '10 days', now() - interval '10 days')`,
              [id, tenant, okEp.id, oldEvents[i]],
            )
            await tx.sql(
              `insert into webhook_attempts (id, tenant_id, delivery_id, attempt, at, status_code, duration_ms) values (?, ?, ?, 1, now() - interval '10 days', 200, 5)`,
              [oldId(now - 10 * DAY), tenant, id],
            )
          }
          // … an old event still being fanned out, and an old delivery still waiting for its retry.
          await tx.sql(
            `insert into events (id, tenant_id, type, source, subject, time, data) values (?, ?, 'kernel.api_key.created', 'trellis/kernel', ?, now() - interval '40 days', '{"name":"held"}')`,
            [unprocessed, tenant, `api_key/${unprocessed}`],
          )
          await tx.sql(
            `insert into webhook_deliveries (id, tenant_id, endpoint_id, event_id, event_type, status, attempts, next_attempt_at, created_at, updated_at) values (?, ?, ?, ?, 'kernel.role.created', 'pending', 1, now() + interval '1 day', now() - interval '10 days', now() - interval '10 days')`,
            [pending, tenant, downEp.id, oldEvents[2]],
          )
          await tx.sql(
            `insert into webhook_attempts (id, tenant_id, delivery_id, attempt, at, status_code, duration_ms) values (?, ?, ?, 1, now() - interval '10 days', 500, 5)`,
            [oldId(now - 10 * DAY), tenant, pending],
          )
        })

        // The periodic job (every 300 ms here, 2 rows per statement) removes what is old.
        await eventually(
          async () =>
            (await count('webhook_deliveries where id = any(?::uuid[])', [`{${oldDeliveries.join(',')}}`])) === 0,
          10_000,
        )
        await eventually(
          async () => (await count('events where id = any(?::uuid[])', [`{${oldEvents.slice(0, 2).join(',')}}`])) === 0,
          10_000,
        )
        t.pass('old delivered deliveries and their processed events are gone')
        t.equal(
          await count('webhook_attempts where delivery_id = any(?::uuid[])', [`{${oldDeliveries.join(',')}}`]),
          0,
          'with their attempts',
        )
        t.equal(
          await count('events where id = ? and processed_at is null', [unprocessed]),
          1,
          'an unprocessed event is kept, however old',
        )
        t.equal(await count('webhook_deliveries where id = ?', [pending]), 1, 'a pending delivery is kept, however old')
        t.equal(await count('webhook_attempts where delivery_id = ?', [pending]), 1, 'with its attempts')
        t.equal(await count('events where id = ?', [oldEvents[2]]), 1, 'an event whose delivery is pending is kept')
        t.ok((await count('events where tenant_id = ?', [tenant])) > 3, 'recent events are kept')
        await k.ownerSql('delete from webhook_deliveries where id = ?', [pending])
        await k.ownerSql('delete from events where id = any(?::uuid[])', [`{${[unprocessed, oldEvents[2]].join(',')}}`])
      },
    )

    await t.test('purge by the clock: each period applies to its own rows', async (t) => {
      const role = await k.req('POST', '/v1/roles', { token: a.token, body: { name: 'kept', permissions: [] } })
      t.equal(role.status, 201)
      await ok.until((r) => r.length >= 1)
      t.equal((await k.req('DELETE', `/v1/roles/${role.body.id}`, { token: a.token })).status, 204)
      await down.until((r) => r.length >= 1)
      const key = await k.req('POST', '/v1/api-keys', {
        token: a.token,
        body: { name: 'held', permissions: ['users.read'] },
      })
      t.equal(key.status, 201)
      await eventually(
        async () => (await count(`webhook_deliveries where endpoint_id = ? and status = 'delivered'`, [okEp.id])) >= 1,
      )
      await eventually(
        async () =>
          (await count(`webhook_deliveries where endpoint_id = ? and status = 'pending' and attempts >= 1`, [
            downEp.id,
          ])) === 1,
      )
      const [keyEvent] = (
        await k.req('GET', '/v1/events?type=kernel.api_key.created', { token: a.token })
      ).body.items.filter((e: any) => e.subject === `api_key/${key.body.id}`)
      const metricsText = (await k.req('GET', '/metrics')).body as string
      t.ok(
        Number(/^trellis_events_outbox_backlog (\d+)$/m.exec(metricsText)?.[1]) >= 1,
        'the held event shows in the outbox backlog on /metrics',
      )

      // On a loaded machine the dispatcher may still be working through the earlier events.
      await eventually(
        async () =>
          (await count(`events where tenant_id = ? and processed_at is null and subject <> ?`, [
            a.orgId,
            `api_key/${key.body.id}`,
          ])) === 0,
      )
      t.same(await events.purge(), { events: 0, deliveries: 0 }, 'nothing is old yet')
      // Eight days on: deliveries (7 days) go, events (30 days) stay.
      const eight = await events.purge(new Date(Date.now() + 8 * DAY))
      t.ok(eight.deliveries >= 1 && eight.events === 0, JSON.stringify(eight))
      t.equal(await count(`webhook_deliveries where endpoint_id = ? and status = 'delivered'`, [okEp.id]), 0)
      t.equal(
        await count(`webhook_deliveries where endpoint_id = ? and status = 'pending'`, [downEp.id]),
        1,
        'the pending delivery stays',
      )
      // Thirty-one days on: processed events go, except the one with a pending delivery and the unprocessed one.
      const later = await events.purge(new Date(Date.now() + 31 * DAY))
      t.ok(later.events >= 1, JSON.stringify(later))
      const left = await k.ownerSql<{ type: string; subject: string }>(
        'select type, subject from events where tenant_id = ? order by id',
        [a.orgId],
      )
      t.same(
        left.map((e) => e.subject).sort(),
        [`api_key/${key.body.id}`, `role/${role.body.id}`].sort(),
        'left: the event still being fanned out and the one with a pending delivery',
      )
      t.equal(keyEvent.type, 'kernel.api_key.created')
      // Released, the held event is still delivered to its subscriber and processed.
      held.clear()
      await eventually(
        async () => (await count('events where id = ? and processed_at is not null', [keyEvent.id])) === 1,
      )
      t.pass('the held event was processed after the purge')
    })

    await t.test(
      'the database itself refuses: trellis_events cannot delete pending or unprocessed rows, trellis_app no event and no pending delivery',
      async (t) => {
        const db = k.kernel.ctx.db
        const asEvents = (sql: string) =>
          db.inOrg(
            null,
            (tx) => tx.sql<{ n: number }>(`with d as (${sql} returning 1) select count(*)::int as n from d`),
            'trellis_events',
          )
        const pendingBefore = await count(`webhook_deliveries where status = 'pending'`)
        t.ok(pendingBefore >= 1)
        t.same(await asEvents(`delete from webhook_deliveries where status = 'pending'`), [{ n: 0 }])
        t.equal(await count(`webhook_deliveries where status = 'pending'`), pendingBefore)
        held.add('held')
        await k.ownerSql(
          `insert into events (id, tenant_id, type, source, subject, data) values (?, ?, 'kernel.api_key.created', 'trellis/kernel', 'api_key/x', '{"name":"held"}')`,
          [oldId(Date.now() - 40 * DAY), a.orgId],
        )
        t.same(await asEvents(`delete from events where processed_at is null`), [{ n: 0 }])
        t.ok((await count('events where processed_at is null')) >= 1)
        await t.rejects(
          db.inOrg(a.orgId, (tx) => tx.sql('delete from events')),
          /permission denied/,
        )
        // A tenant's retention policy deletes its finished deliveries (docs/governance.md); a pending
        // one is kept by a restrictive policy whatever the statement says.
        t.same(
          await db.inOrg(a.orgId, (tx) =>
            tx.sql(
              `with d as (delete from webhook_deliveries where status = 'pending' returning 1) select count(*)::int as n from d`,
            ),
          ),
          [{ n: 0 }],
        )
        t.equal(
          await count(`webhook_deliveries where status = 'pending'`),
          pendingBefore,
          'no pending delivery was deleted',
        )
        await k.ownerSql(`delete from events where subject = 'api_key/x'`)
      },
    )
  })
}
