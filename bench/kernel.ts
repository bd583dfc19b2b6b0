// `npm run bench -- kernel`: the kernel's authenticated, tenant-scoped, audited writes through
// the API — POST /v1/roles, /v1/api-keys and /v1/webhooks, PUT /v1/users/:id/role and PATCH
// /v1/installations/:id, all on the one audited write path — each against bare Fastify + pg
// making the same round trips with the same prepared statements (see servers/baseline-server.ts),
// at 50 and at 200 connections; the roles write against pgbench running the same transaction
// on the same 10 connections (_pgbench.ts); and an authenticated route that touches no
// table against Fastify's hello world. All measured in this run in alternating rounds, on one
// fresh PostgreSQL database; only 2xx answers count, on both sides.
import { fileURLToPath } from 'node:url'
import { compare, loadAverage, row, uniqueName, withBenchDatabase, startServer, type Comparison } from './_harness.js'
import { compareWithPgbench } from './_pgbench.js'

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url))
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4)
/** Connection counts measured (`BENCH_CONNECTIONS=50,200`). */
const CONNECTIONS = (process.env.BENCH_CONNECTIONS ?? '50,200').split(',').map(Number)
/** Which writes (`BENCH_WRITES=roles,users`); all five by default. */
const ONLY = process.env.BENCH_WRITES?.split(',')

interface KernelInfo {
  url: string
  token: string
  tenantId: string
  userId: string
  memberId: string
  installationId: string
}

export async function run(): Promise<void> {
  await withBenchDatabase(`trellis_bench_${process.pid}`, async (databaseUrl) => {
    const kernel = await startServer<KernelInfo>(here('./servers/kernel-server.ts'), {
      DATABASE_URL: databaseUrl,
      TRELLIS_SECRET_KEY: 'b'.repeat(64),
    })
    const info = kernel.info
    const baseline = await startServer<{ url: string }>(here('./servers/baseline-server.ts'), {
      DATABASE_URL: databaseUrl,
      BENCH_TENANT_ID: info.tenantId,
      BENCH_USER_ID: info.userId,
    })
    const writes: Array<{ name: string; method: 'POST' | 'PUT' | 'PATCH'; path: string; body: () => unknown }> = [
      {
        name: 'roles',
        method: 'POST',
        path: 'roles',
        body: () => ({ name: uniqueName('r'), permissions: ['users.read'] }),
      },
      {
        name: 'api-keys',
        method: 'POST',
        path: 'api-keys',
        body: () => ({ name: uniqueName('k'), permissions: ['users.read'] }),
      },
      // A public address literal: no name to resolve, so no DNS lookup on either side.
      {
        name: 'webhooks',
        method: 'POST',
        path: 'webhooks',
        body: () => ({ url: 'https://93.184.215.14/hooks', types: ['kernel.role.*'] }),
      },
      { name: 'users', method: 'PUT', path: `users/${info.memberId}/role`, body: () => ({ role: 'tenant_member' }) },
      {
        name: 'installations',
        method: 'PATCH',
        path: `installations/${info.installationId}`,
        body: () => ({ status: 'active' }),
      },
    ]
    try {
      const results: Array<[string, number, Comparison]> = []
      for (const connections of CONNECTIONS) {
        // Each target against its baseline in alternating rounds (see compare).
        for (const w of writes.filter((x) => !ONLY || ONLY.includes(x.name))) {
          const c = await compare(
            { url: `${baseline.info.url}/baseline/${w.path}`, method: w.method, body: w.body, connections },
            { url: `${info.url}/v1/${w.path}`, method: w.method, token: info.token, body: w.body, connections },
            { seconds: SECONDS, rounds: ROUNDS },
          )
          results.push([w.name, connections, c])
          console.log(row(`baseline: Fastify + pg, ${w.name} write, ${connections} conn`, c.base))
          console.log(row(`kernel: ${w.method} /v1/${w.name} (auth, RLS, audit)`, c.subject, c))
        }
      }
      const pgbench =
        !ONLY || ONLY.includes('roles')
          ? await compareWithPgbench({
              databaseUrl,
              tenantId: info.tenantId,
              userId: info.userId,
              kernel: { url: `${info.url}/v1/roles`, token: info.token, body: writes[0]!.body },
              seconds: SECONDS,
              rounds: ROUNDS,
            })
          : undefined
      const sessions = await compare(
        { url: `${baseline.info.url}/hello` },
        { url: `${info.url}/v1/auth/session`, token: info.token },
        { seconds: SECONDS, rounds: ROUNDS },
      )
      console.log(row('baseline: Fastify hello', sessions.base))
      console.log(row('kernel: GET /v1/auth/session (auth, no DB)', sessions.subject, sessions))
      console.log()
      for (const [name, connections, c] of results)
        console.log(
          `audited write ${name} at ${connections} connections: ${c.valid ? '' : 'INVALID — '}${pct(c.ratio)} of baseline (target ≥ 80 %; rounds ${c.ratios.map(pct).join(', ')}), p99 ${c.subject.p99} ms vs baseline ${c.base.p99} ms = ${(c.subject.p99 / c.base.p99).toFixed(2)}× (target ≤ 1.5× at 200)`,
        )
      if (pgbench)
        console.log(
          `roles write vs pgbench, same transaction, ${pgbench.clients} connections: ${pgbench.valid ? '' : 'INVALID — '}${pct(pgbench.ratio)} (target ≥ 60 %; rounds ${pgbench.ratios.map(pct).join(', ')}; pgbench ${pgbench.pgbenchTps.map((x) => x.toFixed(0)).join(', ')} tps)`,
        )
      console.log(
        `authenticated no-DB route: ${sessions.valid ? '' : 'INVALID — '}${pct(sessions.ratio)} of Fastify hello (target ≥ 60 %)`,
      )
      console.log(loadAverage())
      if (!results.every(([, , c]) => c.valid) || !sessions.valid || (pgbench && !pgbench.valid)) process.exitCode = 1
    } finally {
      await baseline.stop()
      await kernel.stop()
    }
  })
}

const pct = (x: number) => `${(x * 100).toFixed(0)} %`
