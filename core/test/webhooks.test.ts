import t from 'tap'
import { Webhook } from 'standardwebhooks'
import { QUEUE_MATRIX, startTestKernel, createTenantWithAdmin } from './helpers/test-kernel.js'
import { startReceiver, eventually } from './helpers/receiver.js'
import { randomBytes } from 'node:crypto'

const RETRIES = [100, 200, 300]

for (const setup of QUEUE_MATRIX) {
  const kind = `${setup.db}-${setup.queue}`
  t.test(`webhooks on ${setup.name}`, async (t) => {
    // 127.0.0.1 is allow-listed explicitly: the receivers run on this machine.
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
    const a = await createTenantWithAdmin(k, `wh-a-${kind}`)
    const b = await createTenantWithAdmin(k, `wh-b-${kind}`)
    const webhooks = (token: string) => k.req('GET', '/v1/webhooks', { token })
    const hook = async (token: string, body: Record<string, unknown>) => {
      const r = await k.req('POST', '/v1/webhooks', { token, body })
      if (r.status !== 201) throw new Error(`${r.status} ${JSON.stringify(r.body)}`)
      return r.body
    }
    let n = 0
    const createRole = async (token: string) => {
      const r = await k.req('POST', '/v1/roles', { token, body: { name: `r${n++}-x`, permissions: ['users.read'] } })
      if (r.status !== 201) throw new Error(`${r.status} ${JSON.stringify(r.body)}`)
      return r.body
    }
    const deliveries = async (token: string, id: string) =>
      (await k.req('GET', `/v1/webhooks/${id}/deliveries`, { token })).body.items

    await t.test('endpoints: create (secret once), list, get, update, disable, delete; all audited', async (t) => {
      const created = await hook(a.token, {
        url: 'https://example.com/hook',
        types: ['kernel.role.*'],
        description: 'ERP',
      })
      t.match(created.secret, /^whsec_[A-Za-z0-9+/=]{32}$/)
      t.equal(created.status, 'active')
      const got = await k.req('GET', `/v1/webhooks/${created.id}`, { token: a.token })
      t.equal(got.status, 200)
      t.notOk('secret' in got.body, 'the secret is shown once')
      t.equal((await webhooks(a.token)).body.items.length, 1)
      t.equal((await webhooks(b.token)).body.items.length, 0, 'another tenant sees none')
      t.equal((await k.req('GET', `/v1/webhooks/${created.id}`, { token: b.token })).body.code, 'KRN_ERR_NOT_FOUND')
      const patched = await k.req('PATCH', `/v1/webhooks/${created.id}`, {
        token: a.token,
        body: { types: ['kernel.*'], status: 'disabled' },
      })
      t.equal(patched.status, 200)
      t.same([patched.body.types, patched.body.status], [['kernel.*'], 'disabled'])
      const stored = await k.ownerSql('select secret_enc from webhook_endpoints where id = ?', [created.id])
      t.notOk(stored[0].secret_enc.includes(created.secret.slice(6)), 'the secret is encrypted at rest')
      t.equal((await k.req('DELETE', `/v1/webhooks/${created.id}`, { token: a.token })).status, 204)
      t.equal((await webhooks(a.token)).body.items.length, 0)
      const audit = await k.ownerSql(
        `select action from audit_log where tenant_id = ? and action like 'webhook.%' order by id`,
        [a.orgId],
      )
      t.same(
        audit.map((r: any) => r.action),
        ['webhook.created', 'webhook.disabled', 'webhook.deleted'],
      )
    })

    await t.test('bad URLs and types get a stable code and nothing is written', async (t) => {
      const cases: Array<[unknown, string]> = [
        [{ url: 'http://10.1.2.3/x', types: ['*'] }, 'EVT_ERR_URL_NOT_ALLOWED'],
        [{ url: 'http://0xa9fea9fe/latest/meta-data', types: ['*'] }, 'EVT_ERR_URL_NOT_ALLOWED'],
        [{ url: 'http://2852039166/', types: ['*'] }, 'EVT_ERR_URL_NOT_ALLOWED'],
        [{ url: 'http://[::ffff:169.254.169.254]/', types: ['*'] }, 'EVT_ERR_URL_NOT_ALLOWED'],
        [{ url: 'http://[::1]:80/', types: ['*'] }, 'EVT_ERR_URL_NOT_ALLOWED'],
        [{ url: 'ftp://example.com/', types: ['*'] }, 'EVT_ERR_URL_NOT_ALLOWED'],
        [{ url: 'https://u:p@example.com/', types: ['*'] }, 'EVT_ERR_URL_NOT_ALLOWED'],
        [{ url: 'https://example.com/', types: ['Bad Type'] }, 'KRN_ERR_VALIDATION_FAILED'],
        [{ url: 'https://example.com/', types: [] }, 'KRN_ERR_VALIDATION_FAILED'],
      ]
      for (const [body, code] of cases) {
        const r = await k.req('POST', '/v1/webhooks', { token: a.token, body })
        t.equal(r.body.code, code, JSON.stringify(body))
      }
      t.equal(
        (await k.ownerSql('select count(*)::int as n from webhook_endpoints where tenant_id = ?', [a.orgId]))[0].n,
        0,
      )
      const member = await k.req('POST', '/v1/webhooks', {
        token: k.adminToken,
        body: { url: 'https://example.com/', types: ['*'] },
      })
      t.equal(member.body.code, 'AUTH_ERR_FORBIDDEN', 'the platform admin role does not manage webhooks')
    })

    await t.test('a committed change is delivered, signed per Standard Webhooks; only the own tenant', async (t) => {
      const rx = await startReceiver()
      t.teardown(rx.close)
      const ep = await hook(a.token, { url: rx.url, types: ['kernel.role.created'] })
      await hook(b.token, { url: rx.url, types: ['kernel.role.*'] })
      const role = await createRole(a.token)
      const [got] = await rx.until((all) => all.length >= 1)
      const wh = new Webhook(ep.secret)
      const payload = wh.verify(got!.body, got!.headers as Record<string, string>) as any
      t.equal(payload.type, 'kernel.role.created')
      t.equal(payload.tenantId, a.orgId)
      t.equal(payload.data.roleId, role.id)
      t.equal(got!.headers['webhook-id'], payload.id)
      const headers = got!.headers as Record<string, string>
      t.throws(
        () => wh.verify(got!.body.replace(role.id, '00000000-0000-0000-0000-000000000000'), headers),
        'a tampered body fails',
      )
      t.throws(
        () => new Webhook(`whsec_${randomBytes(24).toString('base64')}`).verify(got!.body, headers),
        'a wrong secret fails',
      )
      const stale = String(Math.floor(Date.now() / 1000) - 3600)
      t.throws(() => wh.verify(got!.body, { ...headers, 'webhook-timestamp': stale }), 'a stale timestamp fails')
      // Drained, not paused: the event is fanned out and every delivery made of it has finished.
      const made = await eventually(async () => {
        const rows = await k.ownerSql<{ processed: boolean; endpoint_id: string | null; status: string | null }>(
          `select e.processed_at is not null as processed, d.endpoint_id, d.status
             from events e left join webhook_deliveries d on d.event_id = e.id where e.subject = ?`,
          [`role/${role.id}`],
        )
        return rows.length > 0 && rows.every((r) => r.processed && r.status !== 'pending') && rows
      })
      t.same(
        made.map((r) => r.endpoint_id),
        [ep.id],
        "one delivery, to tenant A's endpoint",
      )
      t.equal(rx.received.length, 1, "tenant B's endpoint got nothing of tenant A's")
      const [d] = await eventually(async () => {
        const items = await deliveries(a.token, ep.id)
        return items[0]?.status === 'delivered' && items
      })
      t.equal(d.log.length, 1)
      t.equal(d.log[0].statusCode, 200)
      t.ok(d.log[0].response.length <= 1024, 'the response is truncated')
      await k.req('DELETE', `/v1/webhooks/${ep.id}`, { token: a.token })
      for (const e of (await webhooks(b.token)).body.items)
        await k.req('DELETE', `/v1/webhooks/${e.id}`, { token: b.token })
    })

    await t.test('receiver down, then back: delivered after retries; redelivery keeps the webhook-id', async (t) => {
      const rx = await startReceiver((_r, i) => (i <= 2 ? 503 : 200))
      t.teardown(rx.close)
      const ep = await hook(a.token, { url: rx.url, types: ['kernel.role.*'] })
      await createRole(a.token)
      const all = await rx.until((r) => r.length >= 3)
      t.equal(new Set(all.map((r) => r.headers['webhook-id'])).size, 1, 'every attempt carries the same webhook-id')
      const [d] = await eventually(async () => {
        const items = await deliveries(a.token, ep.id)
        return items[0]?.status === 'delivered' && items
      })
      t.same(
        d.log.map((l: any) => l.statusCode),
        [503, 503, 200],
      )
      const again = await k.req('POST', `/v1/webhooks/${ep.id}/deliveries/${d.id}/redeliver`, { token: a.token })
      t.equal(again.status, 202)
      const after = await rx.until((r) => r.length >= 4)
      t.equal(after[3]!.headers['webhook-id'], all[0]!.headers['webhook-id'], 'a redelivery has the same webhook-id')
      await k.req('DELETE', `/v1/webhooks/${ep.id}`, { token: a.token })
    })

    await t.test(
      'dead letter after the schedule; 410 disables the endpoint; redirects are not followed; timeouts',
      async (t) => {
        const down = await startReceiver(() => 500)
        const gone = await startReceiver(() => 410)
        const moved = await startReceiver(() => 302)
        const hang = await startReceiver(() => 'hang')
        t.teardown(async () => Promise.all([down.close(), gone.close(), moved.close(), hang.close()]))
        const eps = await Promise.all(
          [down, gone, moved, hang].map((rx) => hook(a.token, { url: rx.url, types: ['kernel.role.created'] })),
        )
        await createRole(a.token)
        const finalOf = async (id: string) =>
          eventually(async () => {
            const items = await deliveries(a.token, id)
            return items[0]?.status === 'failed' && items[0]
          }, 15_000)
        const dead = await finalOf(eps[0].id)
        t.equal(dead.log.length, RETRIES.length + 1, 'one attempt and every retry, then dead-lettered')
        const g = await finalOf(eps[1].id)
        t.equal(g.log.length, 1)
        t.equal(
          (await k.req('GET', `/v1/webhooks/${eps[1].id}`, { token: a.token })).body.status,
          'disabled',
          '410 Gone disables the endpoint',
        )
        const m = await finalOf(eps[2].id)
        t.same(
          m.log.map((l: any) => l.statusCode),
          [302, 302, 302, 302],
        )
        t.ok(moved.received.every((r) => r.headers['webhook-id'] && !r.body.includes('elsewhere')))
        t.equal(moved.received.length, 4, 'the redirect target was never requested')
        const h = await finalOf(eps[3].id)
        t.equal(h.log[0].error, 'timed out', "a generic reason, not the socket's own text")
        t.equal(
          (await k.req('POST', `/v1/webhooks/${eps[1].id}/deliveries/${g.id}/redeliver`, { token: a.token })).body.code,
          'EVT_ERR_ENDPOINT_DISABLED',
        )
        for (const ep of eps) await k.req('DELETE', `/v1/webhooks/${ep.id}`, { token: a.token })
      },
    )

    await t.test('secret rotation: old and new both sign during the grace period', async (t) => {
      const rx = await startReceiver()
      t.teardown(rx.close)
      const ep = await hook(a.token, { url: rx.url, types: ['kernel.role.created'] })
      const rotated = await k.req('POST', `/v1/webhooks/${ep.id}/rotate-secret`, {
        token: a.token,
        body: { graceSeconds: 3600 },
      })
      t.equal(rotated.status, 200)
      t.not(rotated.body.secret, ep.secret)
      t.ok(rotated.body.previousSecretExpiresAt)
      await createRole(a.token)
      const [got] = await rx.until((r) => r.length >= 1)
      const headers = got!.headers as Record<string, string>
      t.equal(headers['webhook-signature']!.split(' ').length, 2)
      t.ok(new Webhook(ep.secret).verify(got!.body, headers), 'the old secret verifies')
      t.ok(new Webhook(rotated.body.secret).verify(got!.body, headers), 'the new secret verifies')
      const audit = await k.ownerSql(
        `select action from audit_log where tenant_id = ? and action = 'webhook.secret_rotated'`,
        [a.orgId],
      )
      t.equal(audit.length, 1, 'the rotation is audited')
      await k.req('DELETE', `/v1/webhooks/${ep.id}`, { token: a.token })
    })
  })
}
