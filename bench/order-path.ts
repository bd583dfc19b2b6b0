// `npm run bench -- order-path`: placing an ERP order through the plugins — POST
// /v1/x/orders/orders: orders quotes through pricing (which reads the catalog through its
// action), reserves stock through inventory, records the order and emits its events, one
// tenant transaction across four sandboxed plugins — against the same SQL run natively: the
// statements the plugins caused for an order of the same products, recorded once per product
// pair, replayed in one tenant transaction by a kernel route (bench/servers/order-path-server.ts).
// Two workloads, 50 connections, alternating rounds: orders spread over a 77-product catalog,
// and every order on the same two products (the same two stock rows locked by every order).
import { fileURLToPath } from 'node:url'
import { compare, loadAverage, row, startServer, uniqueName, withBenchDatabase } from './_harness.js'

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url))
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10)

interface Info {
  url: string
  token: string
  pairs: Array<[string, string]>
  statements: number[]
  transcript: string[]
}

export async function run(): Promise<void> {
  await withBenchDatabase(`trellis_bench_order_${process.pid}`, async (databaseUrl) => {
    const server = await startServer<Info>(here('./servers/order-path-server.ts'), {
      DATABASE_URL: databaseUrl,
      TRELLIS_SECRET_KEY: 'e'.repeat(64),
    })
    const { url, token, pairs, statements, transcript } = server.info
    console.log(
      `statements per order in its transaction (recorded, ${pairs.length} product pairs): ${[...new Set(statements)].join(' or ')}`,
    )
    for (const [i, s] of transcript.entries()) console.log(`  ${String(i + 1).padStart(2)}. ${s}`)
    try {
      for (const workload of ['spread', 'hot'] as const) {
        const pick = () => (workload === 'hot' ? 0 : Math.floor(Math.random() * pairs.length))
        const native = {
          url: `${url}/v1/bench/orders`,
          method: 'POST' as const,
          token,
          body: () => ({ number: uniqueName('N'), pair: pick() }),
        }
        const plugin = {
          url: `${url}/v1/x/orders/orders`,
          method: 'POST' as const,
          token,
          body: () => {
            const pair = pairs[pick()]!
            return {
              number: uniqueName('P'),
              customer: 'ALFKI',
              lines: [
                { sku: pair[0], quantity: 3 },
                { sku: pair[1], quantity: 2, discount: 0.05 },
              ],
            }
          },
        }
        const c = await compare(native, plugin, { seconds: SECONDS * 2 })
        const label = workload === 'hot' ? 'every order on the same 2 products' : `orders over ${pairs.length} pairs`
        console.log(row(`native replay (${label})`, c.base))
        console.log(row(`plugins (${label})`, c.subject, c))
        console.log(
          `place order, ${label}: ${c.subject.rps.toFixed(0)} req/s, p50 ${c.subject.p50.toFixed(0)} ms, p99 ${c.subject.p99} ms — ${(c.ratio * 100).toFixed(0)} % of the same SQL run natively (${c.base.rps.toFixed(0)} req/s, p99 ${c.base.p99} ms); ${loadAverage()}${c.valid ? '' : '; INVALID: not every answer was 2xx'}`,
        )
        if (!c.valid) process.exitCode = 1
      }
    } finally {
      await server.stop()
    }
  })
}
