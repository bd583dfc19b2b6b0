// `npm run bench -- kernel`: the kernel's authenticated, tenant-scoped, audited write through
// the API, against bare Fastify + pg doing the same two inserts in one transaction under RLS,
// and an authenticated route that touches no table against Fastify's hello world — all
// measured in this run in alternating rounds, on one fresh PostgreSQL database, 50 connections.
import { fileURLToPath } from 'node:url'
import { startServer, compare, row, uniqueName, withBenchDatabase } from './_harness.js'

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url))
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10)

export async function run(): Promise<void> {
  await withBenchDatabase(`trellis_bench_${process.pid}`, async (databaseUrl) => {
    const kernel = await startServer<{ url: string; token: string; tenantId: string }>(
      here('./servers/kernel-server.ts'),
      {
        DATABASE_URL: databaseUrl,
        TRELLIS_SECRET_KEY: 'b'.repeat(64),
      },
    )
    const baseline = await startServer<{ url: string }>(here('./servers/baseline-server.ts'), {
      DATABASE_URL: databaseUrl,
      BENCH_TENANT_ID: kernel.info.tenantId,
    })
    const role = () => ({ name: uniqueName('r'), permissions: ['users.read'] })
    try {
      // Each target against its baseline in alternating rounds (see compare).
      const writes = await compare(
        { url: `${baseline.info.url}/baseline/roles`, method: 'POST', body: role },
        { url: `${kernel.info.url}/v1/roles`, method: 'POST', token: kernel.info.token, body: role },
        { seconds: SECONDS * 2 },
      )
      const sessions = await compare(
        { url: `${baseline.info.url}/hello` },
        { url: `${kernel.info.url}/v1/auth/session`, token: kernel.info.token },
        { seconds: SECONDS * 2 },
      )
      const write = writes.subject

      console.log(row('baseline: Fastify + pg audited write (RLS)', writes.base))
      console.log(row('kernel: POST /v1/roles (auth, RLS, audit)', write, writes))
      console.log(row('baseline: Fastify hello', sessions.base))
      console.log(row('kernel: GET /v1/auth/session (auth, no DB)', sessions.subject, sessions))
      console.log()
      console.log(
        `audited write: ${(writes.ratio * 100).toFixed(0)} % of baseline (target ≥ 80 %), p99 ${write.p99} ms (target < 50 ms)`,
      )
      console.log(`authenticated no-DB route: ${(sessions.ratio * 100).toFixed(0)} % of Fastify hello (target ≥ 60 %)`)
      if (write.errors + write.non2xx > 0) process.exitCode = 1
    } finally {
      await baseline.stop()
      await kernel.stop()
    }
  })
}
