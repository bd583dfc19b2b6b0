import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { Database } from '../src/db/database.js'
import { loadConfig } from '../src/config.js'
import { PgJobQueue } from '../src/events/pg-queue.js'
import { BullMqJobQueue } from '../src/events/bullmq-queue.js'
import type { JobQueue, QueueOptions, RunningJob } from '../src/events/queue.js'
import { DB_KINDS, createTestDatabase, dropRedisKeys, testEmbeddedTemplate } from './helpers/test-kernel.js'
import { eventually } from './helpers/receiver.js'

const REDIS_URL = process.env.TRELLIS_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

// One contract, every implementation: the PostgreSQL job table (on both databases) and BullMQ.
type Make = (t: Test, opts?: QueueOptions) => Promise<JobQueue>

const implementations: Array<[string, Make]> = [
  ...DB_KINDS.map((kind): [string, Make] => [
    `postgres job table on ${kind}`,
    async (t, opts) => {
      let url: string | undefined
      if (kind === 'postgres') {
        const db = await createTestDatabase()
        url = db.url
        t.teardown(db.drop)
      }
      const env: NodeJS.ProcessEnv = {
        LOG_LEVEL: 'silent',
        TRELLIS_SECRET_KEY: randomBytes(32).toString('hex'),
        TRELLIS_DATA_DIR: '/tmp/trellis-test-unused',
      }
      if (url) env.DATABASE_URL = url
      const db = await Database.open({
        ...loadConfig(env),
        embeddedDir: 'memory://',
        ...(url ? {} : { embeddedTemplate: await testEmbeddedTemplate() }),
      })
      await db.migrate('up')
      t.teardown(() => db.close())
      return new PgJobQueue(db, `contract-${randomBytes(4).toString('hex')}`, undefined, 50, opts)
    },
  ]),
  [
    'bullmq on redis',
    async (_t, opts) => {
      const prefix = `trellis-test-${process.pid}-${randomBytes(4).toString('hex')}`
      const q = new BullMqJobQueue(REDIS_URL, 'contract', prefix, undefined, opts)
      // Closed, it leaves nothing in Redis.
      const close = q.close.bind(q)
      q.close = async () => {
        await close()
        await dropRedisKeys(prefix)
      }
      return q
    },
  ],
]

for (const [name, make] of implementations) {
  t.test(name, async (t) => {
    const q = await make(t)
    const ran: RunningJob[] = []
    const failOnce = new Set(['flaky'])
    // Held shut, jobs that start wait: what runs next is then up to the queue alone, not timing.
    let gate: Promise<void> = Promise.resolve()
    q.work(
      async (job) => {
        ran.push(job)
        await gate
        if (failOnce.delete(job.data.tag as string)) throw new Error('first run fails')
      },
      { concurrency: 1 },
    )
    t.teardown(() => q.close())

    await t.test('every job runs, in the order added', async (t) => {
      await q.add(Array.from({ length: 20 }, (_, i) => ({ id: `order_${i}`, name: 'event', data: { i } })))
      await eventually(async () => ran.filter((j) => j.id.startsWith('order_')).length === 20)
      t.same(
        ran.filter((j) => j.id.startsWith('order_')).map((j) => j.data.i),
        Array.from({ length: 20 }, (_, i) => i),
      )
    })

    await t.test('adding a queued id again does not run it twice', async (t) => {
      await q.add([{ id: 'dup_1', name: 'event', data: {}, delayMs: 300 }])
      await q.add([{ id: 'dup_1', name: 'event', data: {}, delayMs: 300 }])
      // Drained, not paused: a job due after both has run, so a second copy (due earlier) would have too.
      await q.add([{ id: 'dup_after', name: 'event', data: {}, delayMs: 600 }])
      await eventually(async () => ran.some((j) => j.id === 'dup_after'))
      t.equal(ran.filter((j) => j.id === 'dup_1').length, 1)
    })

    await t.test('a failing job runs again', async (t) => {
      await q.add([{ id: 'flaky_1', name: 'event', data: { tag: 'flaky' } }])
      await eventually(async () => ran.filter((j) => j.id === 'flaky_1').length === 2)
      t.same(
        ran.filter((j) => j.id === 'flaky_1').map((j) => j.attempt),
        [1, 2],
      )
    })

    await t.test('a delayed job does not run before its delay', async (t) => {
      const added = Date.now()
      await q.add([{ id: 'later_1', name: 'deliver', data: {}, delayMs: 500 }])
      await eventually(async () => ran.some((j) => j.id === 'later_1'))
      t.ok(Date.now() - added >= 450, `ran after ${Date.now() - added} ms`)
      t.equal(ran.find((j) => j.id === 'later_1')!.name, 'deliver')
    })

    await t.test("a quiet tenant's job is not stuck behind a busy tenant's backlog", async (t) => {
      let open!: () => void
      gate = new Promise((r) => (open = r))
      const busy = Array.from({ length: 600 }, (_, i) => ({
        id: `busy_${i}`,
        name: 'event',
        data: { tenantId: 'tenant-a', i },
      }))
      t.same((await q.add(busy)).refused, [])
      t.same((await q.add([{ id: 'quiet_1', name: 'event', data: { tenantId: 'tenant-b' } }])).refused, [])
      open()
      await eventually(
        async () => ran.filter((j) => j.id.startsWith('busy_') || j.id === 'quiet_1').length === 601,
        60_000,
      )
      const order = ran.filter((j) => j.id.startsWith('busy_') || j.id === 'quiet_1').map((j) => j.id)
      const quietAt = order.indexOf('quiet_1')
      // With one job at a time, at most the busy tenant's first two run before it; 598 after.
      t.ok(quietAt <= 2, `the quiet tenant's job ran ${quietAt + 1}th of 601`)
      t.same(
        order.filter((id) => id !== 'quiet_1'),
        busy.map((j) => j.id),
        "the busy tenant's own jobs keep their order",
      )
    })
  })

  t.test(`${name}: a tenant past its cap gets no more jobs queued`, async (t) => {
    const q = await make(t, { tenantCap: 5 })
    t.teardown(() => q.close())
    const first = await q.add(
      Array.from({ length: 8 }, (_, i) => ({ id: `capped_${i}`, name: 'event', data: { tenantId: 'tenant-c', i } })),
    )
    t.same(first.refused, ['capped_5', 'capped_6', 'capped_7'], 'the jobs past the cap are refused, and named')
    t.same(
      (await q.add([{ id: 'capped_0', name: 'event', data: { tenantId: 'tenant-c', i: 0 } }])).refused,
      [],
      'adding a queued id again is no new job',
    )
    t.same(
      (await q.add([{ id: 'other_0', name: 'event', data: { tenantId: 'tenant-d' } }])).refused,
      [],
      'another tenant is not held back',
    )
    const ran: string[] = []
    q.work(async (job) => void ran.push(job.id), { concurrency: 2 })
    await eventually(async () => ran.length === 6, 30_000)
    t.same(
      ran.filter((id) => id.startsWith('capped_')).sort(),
      ['capped_0', 'capped_1', 'capped_2', 'capped_3', 'capped_4'],
      'only the admitted jobs ran, once each',
    )
    // Once its jobs are done, the tenant may queue again.
    await eventually(
      async () =>
        (await q.add([{ id: 'capped_5', name: 'event', data: { tenantId: 'tenant-c', i: 5 } }])).refused.length === 0,
      30_000,
    )
    await eventually(async () => ran.includes('capped_5'), 30_000)
    t.equal(ran.filter((id) => id === 'capped_5').length, 1)
  })
}
