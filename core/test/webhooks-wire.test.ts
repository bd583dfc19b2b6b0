import t from 'tap'
import { Writable } from 'node:stream'
import { createServer } from 'node:net'
import { pino } from 'pino'
import { Webhook } from 'standardwebhooks'
import { QUEUE_MATRIX, startTestKernel, createTenantWithAdmin } from './helpers/test-kernel.js'
import { startReceiver, eventually, type Received } from './helpers/receiver.js'

// What a receiver sees on the wire: the event's id (never a delivery's) in `webhook-id` and the
// body, the same to every endpoint and on every retry; and, when an attempt gets no answer, a
// reason the tenant may read — the resolver's and the socket's own text stays in the operator's log.

const RETRIES = [50, 100, 150]

async function closedPort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const port = (s.address() as { port: number }).port
  await new Promise((r) => s.close(r))
  return port
}

for (const setup of QUEUE_MATRIX) {
  const kind = `${setup.db}-${setup.queue}`
  t.test(`the webhook wire on ${setup.name}`, async (t) => {
    const lines: string[] = []
    const logger = pino(
      { level: 'debug' },
      new Writable({ write: (chunk, _enc, cb) => (lines.push(String(chunk)), cb()) }),
    )
    const k = await startTestKernel(t, setup, {
      logger,
      events: {
        egressAllow: ['127.0.0.1'],
        retryScheduleMs: RETRIES,
        sweepMs: 200,
        staleMs: 2000,
        totalTimeoutMs: 1000,
        connectTimeoutMs: 500,
      },
    })
    const a = await createTenantWithAdmin(k, `wire-${kind}`)
    const hook = async (body: Record<string, unknown>) => {
      const r = await k.req('POST', '/v1/webhooks', { token: a.token, body })
      if (r.status !== 201) throw new Error(`${r.status} ${JSON.stringify(r.body)}`)
      return r.body as { id: string; secret: string }
    }
    const deliveries = async (id: string) =>
      (await k.req('GET', `/v1/webhooks/${id}/deliveries`, { token: a.token })).body.items
    const eventsOf = async (type: string) =>
      (await k.req('GET', `/v1/events?type=${type}&limit=200`, { token: a.token })).body.items as Array<{
        id: string
        data: any
        sequence: number | null
      }>
    const verify = (secret: string, r: Received) =>
      new Webhook(secret).verify(r.body, r.headers as Record<string, string>) as { id: string }

    await t.test(
      'webhook-id and the body id are the event id: on every endpoint, on every retry, and in delivery_failed',
      async (t) => {
        // The first attempt fails, the retry succeeds.
        const flaky = await startReceiver((_r, n) => (n === 1 ? 503 : 200))
        const steady = await startReceiver()
        const dead = await startReceiver(() => 500)
        const news = await startReceiver()
        t.teardown(async () => Promise.all([flaky.close(), steady.close(), dead.close(), news.close()]))
        const e1 = await hook({ url: flaky.url, types: ['kernel.role.created'] })
        const e2 = await hook({ url: steady.url, types: ['kernel.role.*'] })
        const e3 = await hook({ url: dead.url, types: ['kernel.role.created'] })
        const e4 = await hook({ url: news.url, types: ['kernel.webhook.delivery_failed'] })
        const role = await k.req('POST', '/v1/roles', { token: a.token, body: { name: 'wire-role', permissions: [] } })
        t.equal(role.status, 201)
        const [event] = (await eventsOf('kernel.role.created')).filter((e) => e.data.roleId === role.body.id)
        t.ok(event, 'the event is listed by GET /v1/events')

        const flakyGot = await flaky.until((r) => r.length >= 2)
        const steadyGot = await steady.until((r) => r.length >= 1)
        for (const [secret, r] of [
          [e1.secret, flakyGot[0]!],
          [e1.secret, flakyGot[1]!],
          [e2.secret, steadyGot[0]!],
        ] as const) {
          const body = verify(secret, r)
          t.equal(r.headers['webhook-id'], event!.id, 'webhook-id is the event id')
          t.equal(body.id, event!.id, 'the body id is the event id')
        }
        const [d1] = await deliveries(e1.id)
        t.not(d1.id, event!.id, 'the delivery has its own id, which is not sent')
        t.equal(d1.eventId, event!.id)

        const failed = await news.until((r) => r.some((x) => JSON.parse(x.body).data.endpointId === e3.id), 10_000)
        const note = JSON.parse(failed.find((x) => JSON.parse(x.body).data.endpointId === e3.id)!.body)
        t.equal(note.data.eventId, event!.id, 'delivery_failed names the event by the id its receiver saw')
        t.ok(
          dead.received.every((r) => r.headers['webhook-id'] === event!.id),
          'every attempt at the dead endpoint carried the event id',
        )
        t.equal(dead.received.length, RETRIES.length + 1)
        for (const e of [e1, e2, e3, e4]) await k.req('DELETE', `/v1/webhooks/${e.id}`, { token: a.token })
      },
    )

    await t.test(
      'a tenant sees a generic reason; the resolver text and addresses stay in the operator log',
      async (t) => {
        const internal = `db-primary-${kind}.corp-internal.invalid`
        const unresolvable = await hook({ url: `http://${internal}:5432/hook`, types: ['kernel.role.created'] })
        const refusedPort = await closedPort()
        const refused = await hook({ url: `http://127.0.0.1:${refusedPort}/hook`, types: ['kernel.role.created'] })
        const news = await startReceiver()
        t.teardown(news.close)
        const watcher = await hook({ url: news.url, types: ['kernel.webhook.delivery_failed'] })
        t.equal(
          (await k.req('POST', '/v1/roles', { token: a.token, body: { name: 'wire-errors', permissions: [] } })).status,
          201,
        )
        const final = async (id: string) =>
          eventually(async () => (await deliveries(id)).find((d: any) => d.status === 'failed'), 15_000)
        const dns = await final(unresolvable.id)
        t.same([...new Set(dns.log.map((l: any) => l.error))], ['could not resolve host'])
        const conn = await final(refused.id)
        t.same([...new Set(conn.log.map((l: any) => l.error))], ['connection refused'])
        const shown = JSON.stringify([dns, conn])
        t.notMatch(
          shown,
          /ENOTFOUND|ECONNREFUSED|corp-internal|getaddrinfo/,
          'nothing of the resolver or socket text in the delivery log',
        )
        const notes = await news.until(
          (r) =>
            r.filter((x) => [unresolvable.id, refused.id].includes(JSON.parse(x.body).data.endpointId)).length >= 2,
          10_000,
        )
        for (const n of notes
          .map((x) => JSON.parse(x.body))
          .filter((b) => [unresolvable.id, refused.id].includes(b.data.endpointId))) {
          t.ok(
            ['could not resolve host', 'connection refused'].includes(n.data.error),
            `delivery_failed carries the generic reason (${n.data.error})`,
          )
        }
        t.ok(
          lines.some((l) => l.includes('ENOTFOUND') && l.includes(internal)),
          'the operator log has the detail',
        )
        for (const e of [unresolvable, refused, watcher])
          await k.req('DELETE', `/v1/webhooks/${e.id}`, { token: a.token })
      },
    )
  })
}
