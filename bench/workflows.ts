// `npm run bench -- workflows`: instances of a 5-step automated workflow completed per second,
// and the scheduling overhead per step, next to the raw job queue's throughput (add → a no-op
// handler) measured in the same run, on the same PostgreSQL database and the same queue
// implementation (the PostgreSQL job table; REDIS_URL → BullMQ).
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { buildPlugin } from '@trellis/plugin-sdk'
import { withBenchDatabase } from './_harness.js'
import { createKernel } from '../core/src/kernel.js'
import { loadConfig } from '../core/src/config.js'
import { createPlatformAdmin } from '../core/src/bootstrap.js'
import { orgTx } from '../core/src/kernel-context.js'
import { PLATFORM_ORG } from '../core/src/db/database.js'
import { PgJobQueue } from '../core/src/events/pg-queue.js'
import { BullMqJobQueue } from '../core/src/events/bullmq-queue.js'
import type { JobQueue } from '../core/src/events/queue.js'

const INSTANCES = Number(process.env.BENCH_INSTANCES ?? 300)
const JOBS = INSTANCES * 5
const dir = fileURLToPath(new URL('./fixtures/chain-plugin', import.meta.url))

async function until(check: () => Promise<boolean>, timeoutMs = 300_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out')
    await new Promise((r) => setTimeout(r, 20))
  }
}

export async function run(): Promise<void> {
  await withBenchDatabase(`trellis_bench_wf_${process.pid}`, async (databaseUrl) => {
    const config = loadConfig({
      ...process.env,
      DATABASE_URL: databaseUrl,
      TRELLIS_SECRET_KEY: 'd'.repeat(64),
      PORT: '0',
      LOG_LEVEL: 'silent',
    })
    const kernel = await createKernel({
      config,
      migrate: true,
      poolMax: 10,
      plugins: { sandboxWorkers: 2 },
      rateLimitPerMinute: 10_000_000,
    })
    const k = kernel.ctx
    try {
      // Baseline: the same queue implementation, a no-op handler.
      const raw: JobQueue = config.redisUrl
        ? new BullMqJobQueue(config.redisUrl, 'bench-raw', config.queuePrefix)
        : new PgJobQueue(k.db, 'bench-raw')
      let done = 0
      raw.work(async () => void done++, { concurrency: 4 })
      const t0 = performance.now()
      for (let i = 0; i < JOBS; i += 500)
        await raw.add(
          Array.from({ length: Math.min(500, JOBS - i) }, (_, j) => ({
            id: `raw-${i + j}`,
            name: 'noop',
            data: { i: i + j },
          })),
        )
      await until(async () => done >= JOBS)
      const rawSeconds = (performance.now() - t0) / 1000
      await raw.close()

      // The workflow: a tenant with the plugin installed; instances started all at once.
      await createPlatformAdmin(k, { email: 'bench@platform.test', password: 'bench-admin-password' })
      const url = await kernel.listen()
      const call = async (method: string, path: string, body: unknown, token?: string) => {
        const r = await fetch(url + path, {
          method,
          headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
          body: JSON.stringify(body),
        })
        return (await r.json()) as any
      }
      const admin = await call('POST', '/v1/auth/login', {
        email: 'bench@platform.test',
        password: 'bench-admin-password',
      })
      await call(
        'POST',
        '/v1/tenants',
        {
          name: 'Bench',
          slug: 'bench',
          admin: { email: 'admin@bench.test', name: 'Bench admin', password: 'bench-tenant-password' },
        },
        admin.accessToken,
      )
      const tenant = await call('POST', '/v1/auth/login', {
        email: 'admin@bench.test',
        password: 'bench-tenant-password',
      })
      const manifest = JSON.parse(await readFile(`${dir}/trellis.plugin.json`, 'utf8'))
      const built = await buildPlugin({ dir, write: false })
      await orgTx(k, PLATFORM_ORG, (tx) =>
        k.plugins.versions.register(
          tx,
          { manifest, code: built.code, sourceMap: built.sourceMap, status: 'approved' },
          (b) => k.plugins.probe(b),
          'bench',
        ),
      )
      await call(
        'POST',
        '/v1/installations',
        { plugin: manifest.name, version: manifest.version, capabilities: manifest.capabilities },
        tenant.accessToken,
      )
      const inst = (await k.plugins.installed(tenant.org.id)).byPlugin.get(manifest.name)!
      // Warm the sandbox.
      const warm = await k.workflows.startInstance(tenant.org.id, inst, 'five', { n: 0 }, 'bench')
      const completed = () =>
        k.db
          .inOrg(tenant.org.id, (tx) =>
            tx.sql<{ n: number }>(`select count(*)::int as n from workflow_instances where status = 'completed'`),
          )
          .then((r) => r[0]!.n)
      await until(async () => (await completed()) >= 1)
      void warm
      const t1 = performance.now()
      for (let i = 0; i < INSTANCES; i += 20)
        await Promise.all(
          Array.from({ length: Math.min(20, INSTANCES - i) }, (_, j) =>
            k.workflows.startInstance(tenant.org.id, inst, 'five', { n: i + j }, 'bench'),
          ),
        )
      await until(async () => (await completed()) >= INSTANCES + 1)
      const wfSeconds = (performance.now() - t1) / 1000
      const failed = await k.db.inOrg(tenant.org.id, (tx) =>
        tx.sql<{ n: number }>(`select count(*)::int as n from workflow_instances where status <> 'completed'`),
      )

      const rawPerSecond = JOBS / rawSeconds
      const stepsPerSecond = JOBS / wfSeconds
      console.log(
        `baseline: raw ${config.redisUrl ? 'BullMQ' : 'PostgreSQL'} queue, no-op jobs      ${rawPerSecond.toFixed(0).padStart(7)} jobs/s   (${JOBS} jobs in ${rawSeconds.toFixed(2)} s)`,
      )
      console.log(
        `workflow: 5-step instances completed         ${(INSTANCES / wfSeconds).toFixed(1).padStart(7)} instances/s   (${INSTANCES} in ${wfSeconds.toFixed(2)} s)`,
      )
      console.log(
        `workflow: steps                              ${stepsPerSecond.toFixed(0).padStart(7)} steps/s   ${((stepsPerSecond / rawPerSecond) * 100).toFixed(0)} % of the raw queue's jobs/s`,
      )
      console.log(
        `scheduling overhead per step (beyond a raw job): ${(1000 / stepsPerSecond - 1000 / rawPerSecond).toFixed(2)} ms of wall time at this concurrency`,
      )
      if (failed[0]!.n > 0) {
        console.log(`${failed[0]!.n} instances did not complete`)
        process.exitCode = 1
      }
    } finally {
      await kernel.close()
    }
  })
}
