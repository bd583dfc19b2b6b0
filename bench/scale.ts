// `npm run bench -- scale`: the plugin route (POST /v1/x/notes/notes, through the sandbox) and an
// audited kernel write (POST /v1/roles) served by one and then by two API processes
// (TRELLIS_ROLE=api), with one worker process (TRELLIS_ROLE=worker) doing the background work,
// on one fresh PostgreSQL database and Redis. Rounds alternate between one API and two (the
// load generator's 50 connections split across them, as a load balancer would), so a machine
// whose speed drifts weighs on both alike. For every round it reads from /proc the CPU each
// side used — the API processes with their sandbox workers, the worker, this database's
// PostgreSQL backends and the load generator itself — which says where the limit is.
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { loadConfig } from '../core/src/config.js'
import { benchKernel, benchTenant, installBuilt } from './servers/_tenant.js'
import { clearQueues, load, loadAverage, median, startServer, uniqueName, withBenchDatabase } from './_harness.js'
import { pidsCpuMs, treeCpuMs } from './_proc-cpu.js'

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url))
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50)
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

interface Proc {
  url: string
  pid: number
}
interface Round {
  apis: 1 | 2
  rps: number
  p99: number
  notOk: number
  /** Cores used during the round (CPU seconds per second), by side. */
  cores: { api: number; worker: number; postgres: number; generator: number }
  load: number
}

export async function run(): Promise<void> {
  const prefix = `trellis-bench-scale-${process.pid}`
  await withBenchDatabase(`trellis_bench_scale_${process.pid}`, async (databaseUrl) => {
    const env = {
      DATABASE_URL: databaseUrl,
      REDIS_URL,
      TRELLIS_QUEUE_PREFIX: prefix,
      TRELLIS_SECRET_KEY: 'd'.repeat(64),
      TRELLIS_PUBLIC_URL: 'https://trellis.bench.test',
    }
    // The migration job and the tenant's set-up, once, before any role process starts.
    const setup = await benchKernel({ config: loadConfig({ ...env, PORT: '0', LOG_LEVEL: 'silent' }) })
    const tenant = await benchTenant(setup)
    await installBuilt(setup, here('./fixtures/notes-plugin'), tenant.call, tenant.token)
    await setup.close()
    const start = (role: string) =>
      startServer<Proc>(here('./servers/role-server.ts'), { ...env, TRELLIS_ROLE: role, BENCH_SANDBOX_WORKERS: '1' })
    const servers = await Promise.all([start('api'), start('api'), start('worker')])
    const [api1, api2, worker] = servers.map((s) => s.info) as [Proc, Proc, Proc]
    const admin = new pg.Client({ connectionString: databaseUrl })
    await admin.connect()
    const backends = async () =>
      (
        await admin.query<{ pid: number }>(
          'select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()',
        )
      ).rows.map((r) => r.pid)
    try {
      const targets = [
        {
          name: 'plugin route  POST /v1/x/notes/notes',
          path: '/v1/x/notes/notes',
          body: () => ({ title: uniqueName('note'), qty: 3 }),
        },
        {
          name: 'audited write POST /v1/roles',
          path: '/v1/roles',
          body: () => ({ name: uniqueName('role'), permissions: [] }),
        },
      ]
      console.log(
        `${CONNECTIONS} connections split across the API processes; ${ROUNDS} rounds of ${(SECONDS / ROUNDS).toFixed(1)} s per side; one worker process; cores = CPU seconds per second (2 on this machine)`,
      )
      for (const target of targets) {
        const measure = async (apis: 1 | 2, seconds: number): Promise<Round> => {
          const urls = (apis === 1 ? [api1] : [api1, api2]).map((a) => a.url)
          const apiPids = apis === 1 ? [api1.pid] : [api1.pid, api2.pid]
          const pgBefore = await backends()
          const before = {
            api: treeCpuMs(apiPids),
            worker: treeCpuMs([worker.pid]),
            postgres: new Map(pgBefore.map((pid) => [pid, pidsCpuMs([pid])])),
            generator: process.cpuUsage(),
            at: performance.now(),
          }
          const rs = await Promise.all(
            urls.map((url) =>
              load({
                url: url + target.path,
                method: 'POST',
                token: tenant.token,
                body: target.body,
                connections: Math.round(CONNECTIONS / urls.length),
                seconds,
              }),
            ),
          )
          const wallMs = performance.now() - before.at
          const pgAfter = await backends()
          // A backend that started during the round counts from zero; one that ended is not seen.
          const pgUsed = pgAfter.reduce((sum, pid) => sum + pidsCpuMs([pid]) - (before.postgres.get(pid) ?? 0), 0)
          const gen = process.cpuUsage(before.generator)
          return {
            apis,
            rps: rs.reduce((s, r) => s + r.rps, 0),
            p99: Math.max(...rs.map((r) => r.p99)),
            notOk: rs.reduce((s, r) => s + r.errors + r.non2xx, 0),
            cores: {
              api: (treeCpuMs(apiPids) - before.api) / wallMs,
              worker: (treeCpuMs([worker.pid]) - before.worker) / wallMs,
              postgres: pgUsed / wallMs,
              generator: (gen.user + gen.system) / 1000 / wallMs,
            },
            load: rs[0]!.load,
          }
        }
        await measure(1, 2)
        await measure(2, 2)
        const rounds: Round[] = []
        for (let i = 0; i < ROUNDS; i++) {
          const order: Array<1 | 2> = i % 2 === 0 ? [1, 2] : [2, 1]
          for (const apis of order) rounds.push(await measure(apis, Math.max(1, SECONDS / ROUNDS)))
        }
        console.log(`\n${target.name}`)
        for (const apis of [1, 2] as const) {
          const rs = rounds.filter((r) => r.apis === apis)
          const med = (f: (r: Round) => number) => median(rs.map(f))
          console.log(
            `  ${apis} API process${apis === 2 ? 'es' : '  '}  ${med((r) => r.rps)
              .toFixed(0)
              .padStart(
                6,
              )} 2xx/s (rounds ${rs.map((r) => r.rps.toFixed(0)).join(', ')})  p99 ${Math.max(...rs.map((r) => r.p99))} ms  not 2xx ${rs.reduce((s, r) => s + r.notOk, 0)}` +
              `  cores: API ${med((r) => r.cores.api).toFixed(2)}  worker ${med((r) => r.cores.worker).toFixed(2)}  PostgreSQL ${med((r) => r.cores.postgres).toFixed(2)}  load generator ${med((r) => r.cores.generator).toFixed(2)}  (load avg ${med((r) => r.load).toFixed(1)})`,
          )
        }
        const ratios = rounds
          .filter((r) => r.apis === 2)
          .map((r, i) => r.rps / rounds.filter((x) => x.apis === 1)[i]!.rps)
        console.log(
          `  2 ÷ 1 API processes: ${median(ratios).toFixed(2)}× (by round ${ratios.map((x) => x.toFixed(2)).join(', ')})`,
        )
        if (rounds.some((r) => r.notOk > 0)) process.exitCode = 1
      }
      console.log(`\n${loadAverage()}`)
    } finally {
      await admin.end()
      for (const s of servers) await s.stop()
      await clearQueues(REDIS_URL, prefix)
    }
  })
}
