import t from 'tap'
import { Webhook } from 'standardwebhooks'
import { QUEUE_MATRIX, startTestKernel, createTenantWithAdmin, type TestKernel } from './helpers/test-kernel.js'
import { untilDrained } from './helpers/drained.js'
import { startReceiver, eventually } from './helpers/receiver.js'

// Every delivery failure is visible: in the delivery log (filtered by status), on /metrics, and
// as a kernel.webhook.delivery_failed event to the tenant — never about a delivery of that same
// event type, so a failing endpoint subscribed to it cannot loop.
const RETRIES = [300, 600]

/** The value of one Prometheus sample (0 when absent). */
async function sample(k: TestKernel, name: string, labels = ''): Promise<number> {
  const text = (await k.req('GET', '/metrics')).body as string
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `))
  return line ? Number(line.split(' ').at(-1)) : 0
}

for (const setup of QUEUE_MATRIX) {
  const kind = `${setup.db}-${setup.queue}`
  t.test(`webhook failures on ${setup.name}`, async (t) => {
    const k = await startTestKernel(t, setup, {
      events: {
        egressAllow: ['127.0.0.1'],
        retryScheduleMs: RETRIES,
        sweepMs: 200,
        staleMs: 2000,
        totalTimeoutMs: 1000,
        connectTimeoutMs: 500,
      },
    })
    const a = await createTenantWithAdmin(k, `whf-a-${kind}`)
    const b = await createTenantWithAdmin(k, `whf-b-${kind}`)
    const hook = async (token: string, body: Record<string, unknown>) => {
      const r = await k.req('POST', '/v1/webhooks', { token, body })
      if (r.status !== 201) throw new Error(`${r.status} ${JSON.stringify(r.body)}`)
      return r.body
    }
    const log = async (path: string, token = a.token) => {
      const r = await k.req('GET', `/v1/webhooks/${path}`, { token })
      if (r.status !== 200) throw new Error(`${r.status} ${JSON.stringify(r.body)}`)
      return r.body.items as any[]
    }

    const metric = (name: string, labels = '') => sample(k, name, labels)
    const before = {
      http: await metric('trellis_webhook_attempts_total', 'outcome="http_error"'),
      success: await metric('trellis_webhook_attempts_total', 'outcome="success"'),
      dead: await metric('trellis_webhook_deliveries_total', 'outcome="dead_letter"'),
      gone: await metric('trellis_webhook_deliveries_total', 'outcome="gone"'),
      deadLetters: await metric('trellis_webhook_dead_letters_total', 'reason="dead_letter"'),
      retries: await metric('trellis_webhook_retries_scheduled_total'),
      lag: await metric('trellis_events_dispatch_lag_seconds_count'),
    }

    const down = await startReceiver(() => 500)
    const gone = await startReceiver(() => 410)
    const watcher = await startReceiver(() => 200)
    t.teardown(async () => Promise.all([down.close(), gone.close(), watcher.close()]))
    // `down` fails everything, including the news of its own failures.
    const downEp = await hook(a.token, {
      url: down.url,
      types: ['kernel.role.created', 'kernel.webhook.delivery_failed'],
    })
    const goneEp = await hook(a.token, { url: gone.url, types: ['kernel.role.created'] })
    const watchEp = await hook(a.token, { url: watcher.url, types: ['kernel.webhook.delivery_failed'] })
    const otherTenant = await startReceiver(() => 200)
    t.teardown(otherTenant.close)
    await hook(b.token, { url: otherTenant.url, types: ['*'] })
    const role = await k.req('POST', '/v1/roles', { token: a.token, body: { name: 'failing', permissions: [] } })
    t.equal(role.status, 201)

    await t.test('a delivery waiting to retry is listed as retrying', async (t) => {
      const [d] = await eventually(async () => {
        const items = await log(`${downEp.id}/deliveries?status=retrying&eventType=kernel.role.created`)
        return items.length > 0 && items
      })
      t.match(d, { status: 'pending', failureReason: null, eventType: 'kernel.role.created', endpointId: downEp.id })
      t.ok(d.log.length >= 1 && d.log.every((l: any) => l.statusCode === 500), 'its failed attempts are in its log')
    })

    await t.test(
      'dead letter and 410: delivery_failed reaches the tenant’s other endpoint, signed, and nothing loops',
      async (t) => {
        const got = await watcher.until((all) => all.length >= 2, 15_000)
        const wh = new Webhook(watchEp.secret)
        const payloads = got.map((r) => wh.verify(r.body, r.headers as Record<string, string>) as any)
        const byReason = Object.fromEntries(payloads.map((p) => [p.data.reason, p]))
        t.match(byReason.gone, {
          type: 'kernel.webhook.delivery_failed',
          tenantId: a.orgId,
          subject: `webhook/${goneEp.id}`,
          data: { endpointId: goneEp.id, eventType: 'kernel.role.created', attempts: 1, lastStatus: 410 },
        })
        t.match(byReason.dead_letter, {
          type: 'kernel.webhook.delivery_failed',
          tenantId: a.orgId,
          subject: `webhook/${downEp.id}`,
          data: {
            endpointId: downEp.id,
            eventType: 'kernel.role.created',
            attempts: RETRIES.length + 1,
            lastStatus: 500,
          },
        })
        const [deadDelivery] = await log(`${downEp.id}/deliveries?status=dead_letter&eventType=kernel.role.created`)
        t.equal(byReason.dead_letter.data.deliveryId, deadDelivery.id, 'it names the delivery in the log')
        // `down` also got (and failed) the two delivery_failed events: they end in the dead letter
        // like any other delivery, but no news is made of them.
        await eventually(async () => (await log(`${downEp.id}/deliveries?status=dead_letter`)).length === 3, 15_000)
        await untilDrained(k, a.orgId)
        const failedEvents = (await k.req('GET', '/v1/events?type=kernel.webhook.delivery_failed', { token: a.token }))
          .body.items
        t.equal(failedEvents.length, 2, 'two failures, two events: none about a delivery_failed delivery')
        t.equal(watcher.received.length, 2)
        t.equal(
          otherTenant.received.filter((r) => r.body.includes('delivery_failed')).length,
          0,
          'another tenant hears nothing of it',
        )
      },
    )

    await t.test('the delivery log filters by status, per endpoint and across endpoints', async (t) => {
      t.equal((await log(`${downEp.id}/deliveries?status=failed`)).length, 3)
      t.equal((await log(`${downEp.id}/deliveries?status=delivered`)).length, 0)
      t.equal((await log(`${downEp.id}/deliveries?status=retrying`)).length, 0)
      const g = await log(`${goneEp.id}/deliveries?status=gone`)
      t.equal(g.length, 1)
      t.match(g[0], { status: 'failed', failureReason: 'gone', lastStatus: 410 })
      t.equal((await log(`${goneEp.id}/deliveries?status=dead_letter`)).length, 0)
      t.equal((await log(`${watchEp.id}/deliveries?status=delivered`)).length, 2)
      const all = await log('deliveries?status=failed')
      t.same(
        all.map((d) => d.endpointId).sort(),
        [downEp.id, downEp.id, downEp.id, goneEp.id].sort(),
        'every failed delivery of the organisation',
      )
      t.equal((await log('deliveries?status=dead_letter&eventType=kernel.role.created')).length, 1)
      t.equal((await log('deliveries?status=failed', b.token)).length, 0, 'another tenant sees none of them')
      const page1 = await k.req('GET', '/v1/webhooks/deliveries?status=failed&limit=2', { token: a.token })
      const page2 = await k.req(
        'GET',
        `/v1/webhooks/deliveries?status=failed&limit=2&cursor=${page1.body.nextCursor}`,
        { token: a.token },
      )
      t.same(
        [...page1.body.items, ...page2.body.items].map((d: any) => d.id),
        all.map((d) => d.id),
        'pages with a cursor',
      )
      t.equal(
        (await k.req('GET', '/v1/webhooks/deliveries?status=broken', { token: a.token })).body.code,
        'KRN_ERR_VALIDATION_FAILED',
      )
      t.equal((await k.req('GET', '/v1/webhooks/deliveries', { token: k.adminToken })).body.code, 'AUTH_ERR_FORBIDDEN')
    })

    await t.test(
      'a redelivered dead letter is pending again, and a dead letter again once its retries are spent',
      async (t) => {
        const [d] = await log(`${downEp.id}/deliveries?status=dead_letter&eventType=kernel.role.created`)
        const redeliver = await k.req('POST', `/v1/webhooks/${downEp.id}/deliveries/${d.id}/redeliver`, {
          token: a.token,
        })
        t.equal(redeliver.status, 202)
        // What the log shows right after depends on whether a worker has tried the still-down
        // endpoint again yet; the answer says what the redelivery did.
        t.match(redeliver.body, { id: d.id, status: 'pending' }, 'the answer: pending again')
        await eventually(
          async () =>
            (await log(`${downEp.id}/deliveries?status=dead_letter&eventType=kernel.role.created`)).length === 1,
          15_000,
        )
      },
    )

    await t.test(
      '/metrics counts attempts, outcomes, retries, dead letters and dispatch lag; shows the backlog',
      async (t) => {
        t.ok(
          (await metric('trellis_webhook_attempts_total', 'outcome="http_error"')) - before.http >= 3 + 1 + 3 + 3,
          'every failed attempt',
        )
        t.ok(
          (await metric('trellis_webhook_attempts_total', 'outcome="success"')) - before.success >= 2,
          'the watcher’s deliveries',
        )
        t.ok((await metric('trellis_webhook_deliveries_total', 'outcome="dead_letter"')) - before.dead >= 3)
        t.equal((await metric('trellis_webhook_deliveries_total', 'outcome="gone"')) - before.gone, 1)
        t.ok((await metric('trellis_webhook_dead_letters_total', 'reason="dead_letter"')) - before.deadLetters >= 3)
        t.ok((await metric('trellis_webhook_retries_scheduled_total')) - before.retries >= 6)
        t.ok((await metric('trellis_events_dispatch_lag_seconds_count')) - before.lag >= 3, 'fan-outs were timed')
        const text = (await k.req('GET', '/metrics')).body as string
        t.match(text, /^trellis_events_outbox_backlog \d+$/m)
        t.match(text, /^trellis_events_outbox_oldest_seconds [\d.e+-]+$/m)
        t.match(text, /^trellis_webhook_deliveries_pending \d+$/m)
        t.match(text, /^trellis_webhook_attempt_duration_seconds_bucket\{le="0.1",outcome="http_error"\} \d+$/m)
      },
    )
  })
}
