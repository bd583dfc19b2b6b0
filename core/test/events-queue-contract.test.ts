import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { Database } from '../src/db/database.js'
import { loadConfig } from '../src/config.js'
import { PgJobQueue } from '../src/events/pg-queue.js'
import { BullMqJobQueue } from '../src/events/bullmq-queue.js'
import type { JobQueue, RunningJob } from '../src/events/queue.js'
import { DB_KINDS, createTestDatabase } from './helpers/test-kernel.js'
import { eventually } from './helpers/receiver.js'

const REDIS_URL = process.env.TRELLIS_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

// One contract, every implementation: the PostgreSQL job table (on both databases) and BullMQ.
type Make = (t: Test) => Promise<JobQueue>

const implementations: Array<[string, Make]> = [
  ...DB_KINDS.map((kind): [string, Make] => [
    `postgres job table on ${kind}`,
    async (t) => {
      let url: string | undefined
      if (kind === 'postgres') {
        const db = await createTestDatabase()
        url = db.url
        t.teardown(db.drop)
      }
      const env: NodeJS.ProcessEnv = { LOG_LEVEL: 'silent', TRELLIS_SECRET_KEY: randomBytes(32).toString('hex'), TRELLIS_DATA_DIR: '/tmp/trellis-test-unused' }
      if (url) env.DATABASE_URL = url
      const db = await Database.open({ ...loadConfig(env), embeddedDir: 'memory://' })
      await db.migrate('up')
      t.teardown(() => db.close())
      return new PgJobQueue(db, `contract-${randomBytes(4).toString('hex')}`, undefined, 50)
    },
  ]),
  ['bullmq on redis', async () => new BullMqJobQueue(REDIS_URL, 'contract', `trellis-test-${process.pid}-${randomBytes(4).toString('hex')}`)],
]

for (const [name, make] of implementations) {
  t.test(name, async (t) => {
    const q = await make(t)
    const ran: RunningJob[] = []
    const failOnce = new Set(['flaky'])
    q.work(
      async (job) => {
        ran.push(job)
        if (failOnce.delete(job.data.tag as string)) throw new Error('first run fails')
      },
      { concurrency: 1 },
    )
    t.teardown(() => q.close())

    await t.test('every job runs, in the order added', async (t) => {
      await q.add(Array.from({ length: 20 }, (_, i) => ({ id: `order_${i}`, name: 'event', data: { i } })))
      await eventually(async () => ran.filter((j) => j.id.startsWith('order_')).length === 20)
      t.same(ran.filter((j) => j.id.startsWith('order_')).map((j) => j.data.i), Array.from({ length: 20 }, (_, i) => i))
    })

    await t.test('adding a queued id again does not run it twice', async (t) => {
      await q.add([{ id: 'dup_1', name: 'event', data: {}, delayMs: 300 }])
      await q.add([{ id: 'dup_1', name: 'event', data: {}, delayMs: 300 }])
      await eventually(async () => ran.some((j) => j.id === 'dup_1'))
      await new Promise((r) => setTimeout(r, 400))
      t.equal(ran.filter((j) => j.id === 'dup_1').length, 1)
    })

    await t.test('a failing job runs again', async (t) => {
      await q.add([{ id: 'flaky_1', name: 'event', data: { tag: 'flaky' } }])
      await eventually(async () => ran.filter((j) => j.id === 'flaky_1').length === 2)
      t.same(ran.filter((j) => j.id === 'flaky_1').map((j) => j.attempt), [1, 2])
    })

    await t.test('a delayed job does not run before its delay', async (t) => {
      const added = Date.now()
      await q.add([{ id: 'later_1', name: 'deliver', data: {}, delayMs: 500 }])
      await eventually(async () => ran.some((j) => j.id === 'later_1'))
      t.ok(Date.now() - added >= 450, `ran after ${Date.now() - added} ms`)
      t.equal(ran.find((j) => j.id === 'later_1')!.name, 'deliver')
    })
  })
}
