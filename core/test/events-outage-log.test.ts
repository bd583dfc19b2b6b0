import t from 'tap'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { BullMqJobQueue } from '../src/events/bullmq-queue.js'
import { DB_KINDS, startTestKernel, createTenantWithAdmin } from './helpers/test-kernel.js'
import { startReceiver, eventually } from './helpers/receiver.js'
import { freePort, startRedis, stopProcess } from './helpers/redis-server.js'

// While the queue's Redis is down, every commit still wakes the dispatcher, whose add fails: the
// outage is logged once when it starts and once when it ends, not on every commit.

for (const kind of DB_KINDS)
  t.test(`a Redis outage is logged once, and its end once, on ${kind}`, async (t) => {
    const port = await freePort()
    let redis = await startRedis(port)
    t.teardown(() => stopProcess(redis))
    const lines: Array<{ level: number; msg: string }> = []
    const logger = pino(
      { level: 'debug' },
      new Writable({ write: (chunk, _enc, cb) => (lines.push(JSON.parse(String(chunk))), cb()) }),
    )
    const queue = new BullMqJobQueue(`redis://127.0.0.1:${port}`, 'outage', `trellis-outage-${process.pid}`, logger)
    const k = await startTestKernel(t, kind, {
      logger,
      events: { queue, egressAllow: ['127.0.0.1'], sweepMs: 200, staleMs: 1000, retryScheduleMs: [100, 200] },
    })
    const a = await createTenantWithAdmin(k, `outage-${kind}`)
    const rx = await startReceiver()
    t.teardown(rx.close)
    t.equal(
      (await k.req('POST', '/v1/webhooks', { token: a.token, body: { url: rx.url, types: ['kernel.role.created'] } }))
        .status,
      201,
    )
    const role = async (name: string) =>
      t.equal((await k.req('POST', '/v1/roles', { token: a.token, body: { name, permissions: [] } })).status, 201)
    await role('before-outage')
    await rx.until((r) => r.length >= 1)

    await stopProcess(redis)
    const mark = lines.length
    const stillFailing = () => lines.slice(mark).filter((l) => l.msg === 'dispatching events still failing').length
    for (let i = 0; i < 40; i++) await role(`during-outage-${i}`)
    // Proof that the dispatcher kept trying during the outage (a failure per pass at least).
    await eventually(async () => stillFailing() >= 10, 20_000)
    const during = lines.slice(mark)
    t.equal(during.filter((l) => l.msg.startsWith('dispatching events failed')).length, 1, 'the outage is logged once')
    t.ok(
      during.filter((l) => l.level >= 40).length <= 2,
      `at most a couple of warnings for ${stillFailing() + 1} failed passes`,
    )

    redis = await startRedis(port)
    await rx.until((r) => r.length >= 41, 30_000)
    await eventually(async () => lines.slice(mark).some((l) => l.msg === 'dispatching events recovered'), 10_000)
    const all = lines.slice(mark)
    t.equal(all.filter((l) => l.msg === 'dispatching events recovered').length, 1, 'its end is logged once')
    t.equal(all.filter((l) => l.msg.startsWith('dispatching events failed')).length, 1)
  })
