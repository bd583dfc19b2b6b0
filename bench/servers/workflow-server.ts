// The workflows benchmark's server, in its own process: a kernel with the five-step chain
// plugin installed for a tenant, and — the baseline — the same queue implementation as the
// workflow runtime's (the PostgreSQL job table; REDIS_URL → BullMQ) running chains of five
// no-op jobs, each job adding the next when it finishes, as a step does. Both run at the same
// concurrency. Neither side watches for its own completion: a finished instance (a trigger the
// benchmark installs on workflow_instances) or chain (one pg_notify) notifies the channel
// `bench_done`, which the benchmark listens to from its own process.
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { announce, benchKernel, benchTenant, installBuilt } from './_tenant.js'
import { PgJobQueue } from '../../core/src/events/pg-queue.js'
import { BullMqJobQueue } from '../../core/src/events/bullmq-queue.js'
import type { JobQueue } from '../../core/src/events/queue.js'
import { watchPoolWaits } from './_pool-waits.js'

const CONCURRENCY = 4
const STEPS = 5
const dir = fileURLToPath(new URL('../fixtures/chain-plugin', import.meta.url))
const kernel = await benchKernel({ plugins: { sandboxWorkers: 2 }, workflows: { concurrency: CONCURRENCY } })
const k = kernel.ctx
const waits = process.env.BENCH_POOL_WAITS ? watchPoolWaits(k.db.background) : undefined
let lastSide = 'start-up'
const notifier = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 1 })
const raw: JobQueue = k.config.redisUrl
  ? new BullMqJobQueue(k.config.redisUrl, 'bench-raw', k.config.queuePrefix)
  : // Claims on the background pool and adds on the request pool, as the runtime's own queue (ADR 0098).
    new PgJobQueue(k.db.background, 'bench-raw', undefined, undefined, { adds: k.db })
raw.work(
  async (job) => {
    const { chain, step } = job.data as { chain: string; step: number }
    if (step + 1 < STEPS) await raw.add([{ id: `${chain}-${step + 1}`, name: 'noop', data: { chain, step: step + 1 } }])
    else await notifier.query(`select pg_notify('bench_done', $1)`, [chain])
  },
  { concurrency: CONCURRENCY },
)

// Both sides are started the same way: 20 at a time, each its own add or transaction.
async function inGroups(n: number, start: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < n; i += 20) await Promise.all(Array.from({ length: Math.min(20, n - i) }, (_, j) => start(i + j)))
}

let tenantId = ''
kernel.app.post('/bench/raw', async (request) => {
  waits?.report(lastSide)
  lastSide = 'raw'
  const { from, n } = request.body as { from: number; n: number }
  await inGroups(n, (i) => raw.add([{ id: `c${from + i}-0`, name: 'noop', data: { chain: `c${from + i}`, step: 0 } }]))
  return { started: n }
})
kernel.app.post('/bench/workflows', async (request) => {
  waits?.report(lastSide)
  lastSide = 'workflows'
  const { from, n } = request.body as { from: number; n: number }
  const inst = (await k.plugins.installed(tenantId)).byPlugin.get('@bench/chain')!
  await inGroups(n, (i) => k.workflows.startInstance(tenantId, inst, 'five', { n: from + i }, 'bench'))
  return { started: n }
})

const t = await benchTenant(kernel)
tenantId = t.tenantId
await installBuilt(kernel, dir, t.call, t.token)
announce(kernel, { url: t.url, tenantId, concurrency: CONCURRENCY })
