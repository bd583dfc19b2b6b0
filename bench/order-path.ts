// `npm run bench -- order-path`: placing an ERP order through the plugins — POST
// /v1/x/orders/orders: orders quotes through pricing (which reads the catalog through its
// action), reserves stock through inventory, records the order and emits its events, one
// tenant transaction across four sandboxed plugins — against the same SQL run natively: the
// statements the plugins caused for an order of the same products, recorded once per product
// pair, replayed in one tenant transaction by a kernel route (bench/servers/order-path-server.ts).
// Two workloads, 50 connections, alternating rounds: orders spread over a 77-product catalog,
// and every order on the same two products (the same two stock rows locked by every order).
//
// Also printed, per order: the statements of its transaction, the sandboxed invocations, host
// calls and host-call messages (figures load does not change), and the CPU time of the kernel
// process, its sandbox workers and the database's PostgreSQL backends on each side, from short
// alternating runs at 10 connections (BENCH_CPU_SECONDS per side, default 6).
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { compare, load, loadAverage, median, row, startServer, uniqueName, withBenchDatabase } from './_harness.js'
import { pidsCpuMs, treeCpuMs } from './_proc-cpu.js'

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url))
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10)
const CPU_SECONDS = Number(process.env.BENCH_CPU_SECONDS ?? 6)

interface Info {
  url: string
  token: string
  pid: number
  pairs: Array<[string, string]>
  statements: number[]
  perOrder: { invocations: number; hostCalls: number; hostCallMessages: number }
  transcript: string[]
}

type Side = Parameters<typeof load>[0]
interface Sample {
  kernel: number
  workers: number
  postgres: number
  ok: boolean
}

/**
 * CPU milliseconds per 2xx order of the kernel process, its sandbox workers and PostgreSQL's
 * backends of this database, for each side: two alternating runs per side at 10 connections.
 */
async function cpuPerOrder(databaseUrl: string, kernelPid: number, sides: Record<'native' | 'plugins', Side>) {
  const db = new pg.Client({ connectionString: databaseUrl })
  await db.connect()
  try {
    const backends = async () =>
      (
        await db.query<{ pid: number }>(
          'select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()',
        )
      ).rows.map((r) => r.pid)
    const sample = async (side: Side): Promise<Sample> => {
      const pgPids = await backends()
      const pgBefore = new Map(pgPids.map((pid) => [pid, pidsCpuMs([pid])]))
      const kernel0 = pidsCpuMs([kernelPid])
      const tree0 = treeCpuMs([kernelPid])
      const seconds = Math.max(1, CPU_SECONDS / 2)
      const r = await load({ ...side, connections: 10, seconds })
      const kernel = pidsCpuMs([kernelPid]) - kernel0
      const workers = treeCpuMs([kernelPid]) - tree0 - kernel
      // A backend that started during the run counts from zero.
      const postgres = (await backends()).reduce((sum, pid) => sum + pidsCpuMs([pid]) - (pgBefore.get(pid) ?? 0), 0)
      const orders = Math.max(1, r.rps * seconds)
      return {
        kernel: kernel / orders,
        workers: workers / orders,
        postgres: postgres / orders,
        ok: r.non2xx + r.errors === 0,
      }
    }
    const out: Record<'native' | 'plugins', Sample[]> = { native: [], plugins: [] }
    for (const order of [
      ['native', 'plugins'],
      ['plugins', 'native'],
    ] as const)
      for (const name of order) out[name].push(await sample(sides[name]))
    const med = (xs: Sample[], f: (x: Sample) => number) => median(xs.map(f)).toFixed(2)
    for (const name of ['native', 'plugins'] as const) {
      const xs = out[name]
      console.log(
        `CPU ms per order, ${name.padEnd(7)}: kernel ${med(xs, (x) => x.kernel)}, sandbox workers ${med(xs, (x) => x.workers)}, PostgreSQL ${med(xs, (x) => x.postgres)} (median of ${xs.length} runs of ${Math.max(1, CPU_SECONDS / 2)} s at 10 connections; ${loadAverage()})${xs.every((x) => x.ok) ? '' : ' INVALID: not every answer was 2xx'}`,
      )
      if (!xs.every((x) => x.ok)) process.exitCode = 1
    }
  } finally {
    await db.end()
  }
}

export async function run(): Promise<void> {
  await withBenchDatabase(`trellis_bench_order_${process.pid}`, async (databaseUrl) => {
    const server = await startServer<Info>(here('./servers/order-path-server.ts'), {
      DATABASE_URL: databaseUrl,
      TRELLIS_SECRET_KEY: 'e'.repeat(64),
    })
    const { url, token, pid, pairs, statements, perOrder, transcript } = server.info
    console.log(
      `statements per order in its transaction (recorded, ${pairs.length} product pairs): ${[...new Set(statements)].join(' or ')}`,
    )
    for (const [i, s] of transcript.entries()) console.log(`  ${String(i + 1).padStart(2)}. ${s}`)
    console.log(
      `per order (recorded): ${perOrder.invocations} sandboxed invocations, ${perOrder.hostCalls} host calls in ${perOrder.hostCallMessages} messages from the sandbox`,
    )
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
        if (workload === 'spread') await cpuPerOrder(databaseUrl, pid, { native, plugins: plugin })
      }
    } finally {
      await server.stop()
    }
  })
}
