// `npm run bench -- kernel`: the kernel's authenticated, tenant-scoped, audited writes through
// the API — POST /v1/roles, /v1/api-keys and /v1/webhooks, all on the one audited write path —
// each against bare Fastify + pg making the same round trips with the same prepared statements
// (see servers/baseline-server.ts); and an authenticated route that touches no table against
// Fastify's hello world. All measured in this run in alternating rounds, on one fresh
// PostgreSQL database, 50 connections; only 2xx answers count, on both sides.
import { fileURLToPath } from 'node:url'
import { compare, loadAverage, row, uniqueName, withBenchDatabase, startServer, type Comparison } from './_harness.js'

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url))
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10)

export async function run(): Promise<void> {
  await withBenchDatabase(`trellis_bench_${process.pid}`, async (databaseUrl) => {
    const kernel = await startServer<{ url: string; token: string; tenantId: string; userId: string }>(
      here('./servers/kernel-server.ts'),
      { DATABASE_URL: databaseUrl, TRELLIS_SECRET_KEY: 'b'.repeat(64) },
    )
    const baseline = await startServer<{ url: string }>(here('./servers/baseline-server.ts'), {
      DATABASE_URL: databaseUrl,
      BENCH_TENANT_ID: kernel.info.tenantId,
      BENCH_USER_ID: kernel.info.userId,
    })
    const writes: Array<{ route: string; body: () => unknown }> = [
      { route: 'roles', body: () => ({ name: uniqueName('r'), permissions: ['users.read'] }) },
      { route: 'api-keys', body: () => ({ name: uniqueName('k'), permissions: ['users.read'] }) },
      // A public address literal: no name to resolve, so no DNS lookup on either side.
      { route: 'webhooks', body: () => ({ url: 'https://93.184.215.14/hooks', types: ['kernel.role.*'] }) },
    ]
    try {
      const results: Array<[string, Comparison]> = []
      // Each target against its baseline in alternating rounds (see compare).
      for (const w of writes) {
        const c = await compare(
          { url: `${baseline.info.url}/baseline/${w.route}`, method: 'POST', body: w.body },
          { url: `${kernel.info.url}/v1/${w.route}`, method: 'POST', token: kernel.info.token, body: w.body },
          { seconds: SECONDS },
        )
        results.push([w.route, c])
        console.log(row(`baseline: Fastify + pg, ${w.route} write`, c.base))
        console.log(row(`kernel: POST /v1/${w.route} (auth, RLS, audit)`, c.subject, c))
      }
      const sessions = await compare(
        { url: `${baseline.info.url}/hello` },
        { url: `${kernel.info.url}/v1/auth/session`, token: kernel.info.token },
        { seconds: SECONDS },
      )
      console.log(row('baseline: Fastify hello', sessions.base))
      console.log(row('kernel: GET /v1/auth/session (auth, no DB)', sessions.subject, sessions))
      console.log()
      for (const [route, c] of results)
        console.log(
          `audited write POST /v1/${route}: ${c.valid ? '' : 'INVALID — '}${(c.ratio * 100).toFixed(0)} % of baseline (target ≥ 80 %), p99 ${c.subject.p99} ms (baseline ${c.base.p99} ms)`,
        )
      console.log(
        `authenticated no-DB route: ${sessions.valid ? '' : 'INVALID — '}${(sessions.ratio * 100).toFixed(0)} % of Fastify hello (target ≥ 60 %)`,
      )
      console.log(loadAverage())
      if (!results.every(([, c]) => c.valid) || !sessions.valid) process.exitCode = 1
    } finally {
      await baseline.stop()
      await kernel.stop()
    }
  })
}
