// `npm run bench -- erp`: placing an order end to end — POST /v1/x/orders/orders: the orders
// plugin quotes through pricing (which reads the catalog), reserves stock through inventory,
// inserts the order and emits its events, all in one transaction across three sandboxed
// plugins — at 50 connections; next to the kernel's native audited write (POST /v1/roles, the
// kernel benchmark's) in the same kernel, same run, same PostgreSQL database. Then the supply
// side (bench/erp-supply.ts): receiving a 20-line purchase order and processing a return, each
// against the same SQL replayed natively.
import { fileURLToPath } from 'node:url'
import { startServer, compare, loadAverage, row, uniqueName, withBenchDatabase } from './_harness.js'
import { run as runSupply } from './erp-supply.js'

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url))
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10)

export async function run(): Promise<void> {
  await withBenchDatabase(`trellis_bench_erp_${process.pid}`, async (databaseUrl) => {
    const server = await startServer<{ url: string; token: string }>(here('./servers/erp-server.ts'), {
      DATABASE_URL: databaseUrl,
      TRELLIS_SECRET_KEY: 'e'.repeat(64),
    })
    const role = () => ({ name: uniqueName('r'), permissions: ['users.read'] })
    const order = () => ({
      number: uniqueName('B'),
      customer: 'ALFKI',
      lines: [
        { sku: 'A', quantity: 3 },
        { sku: 'C', quantity: 2, discount: 0.05 },
      ],
    })
    const native = { url: `${server.info.url}/v1/roles`, method: 'POST' as const, token: server.info.token, body: role }
    const place = {
      url: `${server.info.url}/v1/x/orders/orders`,
      method: 'POST' as const,
      token: server.info.token,
      body: order,
    }
    try {
      const c = await compare(native, place, { seconds: SECONDS * 2 })
      const { base, subject: orders } = c
      console.log(row('kernel: POST /v1/roles (native audited write)', base))
      console.log(row('erp: POST /v1/x/orders/orders (3 plugins)', orders, c))
      console.log()
      console.log(
        `place order: ${orders.rps.toFixed(0)} req/s, p50 ${orders.p50.toFixed(0)} ms, p99 ${orders.p99} ms — ${(c.ratio * 100).toFixed(0)} % of the native audited write; ${loadAverage()}${c.valid ? '' : '; INVALID: not every answer was 2xx'}`,
      )
      if (base.errors + base.non2xx + orders.errors + orders.non2xx > 0) process.exitCode = 1
    } finally {
      await server.stop()
    }
  })
  await runSupply()
}
