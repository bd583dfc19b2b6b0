// `npm run bench -- insights`: a declared metric (net sales = Σ price × quantity × (1 − discount),
// by month and by product category through a lookup in the products collection) over 1,000,000
// generated order lines (250,000 orders × 4 lines, 10 tenants), compiled by the kernel, against
// the same aggregation written by hand in SQL over the same jsonb records — same database, same
// tenant transaction (row-level security on both), alternating rounds. BENCH_LINES changes the
// size. Both sides must return the same rows. Then the same series materialised as a rollup
// (ADR 0070): a full refresh, an incremental one after 400 new lines in one month, and reading
// the series from the rollup — which must equal the live answer. Next to wall times it prints
// the CPU time the PostgreSQL backend spent on each query (read from /proc; load disturbs it
// less than wall time) and, from one EXPLAIN ANALYZE of each side, the plan's nodes.
import { randomUUID } from 'node:crypto'
import { createKernel } from '../core/src/kernel.js'
import { loadConfig } from '../core/src/config.js'
import { compileMetric } from '../core/src/metrics/compiler.js'
import type { AvailableMetric } from '../core/src/metrics/catalog.js'
import { createRollup, refreshRollup, rowsFromRollup } from '../core/src/metrics/rollups.js'
import type { MetricDeclaration } from '../core/src/metrics/types.js'
import type { Tx } from '../core/src/db/database.js'
import { loadAverage, median, percentile, withBenchDatabase } from './_harness.js'
import { pidsCpuMs } from './_proc-cpu.js'

const LINES = Number(process.env.BENCH_LINES ?? 1_000_000)
const TENANTS = 10
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const PLUGIN = '@trellis/orders'

const metric: MetricDeclaration = {
  title: 'Net sales',
  permission: 'orders.read',
  collection: 'orders',
  unnest: { field: 'lines', as: 'line' },
  measure: { sum: { mul: ['line.unitPrice', 'line.quantity', { sub: [1, 'line.discount'] }] } },
  time: 'orderDate',
  dimensions: { category: { via: 'line.sku', collection: 'products', key: 'sku', field: 'category' } },
  filter: { status: { in: ['placed', 'confirmed', 'shipped', 'invoiced'] } },
  decimals: 2,
}

const HAND = `select to_char(date_trunc('month', (o.data ->> 'orderDate')::date), 'YYYY-MM-DD') as period,
  p.data ->> 'category' as d0,
  round(sum((l ->> 'unitPrice')::numeric * (l ->> 'quantity')::numeric * (1 - (l ->> 'discount')::numeric)), 2)::text as value
from plugin_records o
cross join lateral jsonb_array_elements(o.data -> 'lines') l
left join plugin_records p on p.plugin = o.plugin and p.collection = 'products' and p.data -> 'sku' = l -> 'sku'
where o.plugin = $1 and o.collection = 'orders' and o.data ->> 'status' in ('placed', 'confirmed', 'shipped', 'invoiced')
group by 1, 2 order by 1, 2`

export async function run(): Promise<void> {
  await withBenchDatabase(`trellis_bench_insights_${process.pid}`, async (databaseUrl) => {
    const kernel = await createKernel({
      config: loadConfig({ ...process.env, DATABASE_URL: databaseUrl, TRELLIS_SECRET_KEY: 'a'.repeat(64), PORT: '0' }),
      migrate: true,
    })
    try {
      const db = kernel.ctx.db
      const tenants = Array.from({ length: TENANTS }, () => randomUUID())
      const ordersPerTenant = Math.ceil(LINES / 4 / TENANTS)
      const started = Date.now()
      await db.asOwner(async (tx) => {
        for (const t of tenants) {
          await tx.sql(
            `insert into plugin_records (tenant_id, plugin, collection, id, data)
             select ?::uuid, ?, 'products', gen_random_uuid(), jsonb_build_object('sku', 'S' || i, 'category', 'C' || (i % 8)) from generate_series(1, 77) i`,
            [t, PLUGIN],
          )
          await tx.sql(
            `insert into plugin_records (tenant_id, plugin, collection, id, data)
             select ?::uuid, ?, 'orders', gen_random_uuid(), jsonb_build_object(
               'number', i::text, 'status', case when i % 20 = 0 then 'cancelled' else 'invoiced' end,
               'orderDate', to_char(date '2022-01-01' + (i % 1000), 'YYYY-MM-DD'),
               'lines', (select jsonb_agg(jsonb_build_object('sku', 'S' || (1 + (i * 7 + j * 13) % 77), 'quantity', 1 + (i + j) % 30,
                  'unitPrice', to_char(1 + ((i * 31 + j) % 9000) / 100.0, 'FM99990.00'), 'discount', case when (i + j) % 5 = 0 then '0.05' else '0' end))
                 from generate_series(1, 4) j))
             from generate_series(1, ?) i`,
            [t, PLUGIN, ordersPerTenant],
          )
        }
        await tx.sql('analyze plugin_records')
      })
      console.log(
        `generated ${ordersPerTenant * 4 * TENANTS} order lines in ${TENANTS} tenants in ${((Date.now() - started) / 1000).toFixed(0)} s; ${loadAverage()}`,
      )
      const compiled = compileMetric(
        metric,
        { plugin: PLUGIN, collection: 'orders' },
        { grain: 'month', groupBy: ['category'] },
        (c) => ({ plugin: PLUGIN, collection: c }),
      )
      const tenant = tenants[0]!
      const metricSql = (tx: Tx, prefix = '') =>
        tx.sqlOnce<Record<string, unknown>>(prefix + compiled.sql, compiled.params)
      const handSql = (tx: Tx, prefix = '') =>
        tx.sqlOnce<Record<string, unknown>>(prefix + HAND.replace('$1', '?'), [PLUGIN])
      /** Rows and the CPU milliseconds the PostgreSQL backend spent answering. */
      const timed = (q: (tx: Tx) => Promise<Array<Record<string, unknown>>>) =>
        db.inOrg(tenant, async (tx) => {
          const [{ pid }] = (await tx.sql<{ pid: number }>('select pg_backend_pid() as pid')) as [{ pid: number }]
          const c0 = pidsCpuMs([pid])
          const rows = await q(tx)
          return { rows, cpu: pidsCpuMs([pid]) - c0 }
        })
      const runMetric = () => timed(metricSql)
      const runHand = () => timed(handSql)
      const a = (await runMetric()).rows
      const b = (await runHand()).rows
      const same = JSON.stringify(a) === JSON.stringify(b)
      const mt: number[] = []
      const ht: number[] = []
      const mc: number[] = []
      const hc: number[] = []
      for (let r = 0; r < ROUNDS; r++) {
        for (const [fn, out, cpu] of (r % 2
          ? [
              [runHand, ht, hc],
              [runMetric, mt, mc],
            ]
          : [
              [runMetric, mt, mc],
              [runHand, ht, hc],
            ]) as Array<[typeof runMetric, number[], number[]]>) {
          const t0 = performance.now()
          const { cpu: used } = await fn()
          out.push(performance.now() - t0)
          cpu.push(used)
        }
      }
      const ratio = median(ht) / median(mt)
      console.log(
        `hand-written SQL GROUP BY: median ${median(ht).toFixed(0)} ms, p99 ${percentile(ht, 99).toFixed(0)} ms, PostgreSQL CPU ${median(hc).toFixed(0)} ms a query (${b.length} rows)`,
      )
      console.log(
        `declared metric (kernel):  median ${median(mt).toFixed(0)} ms, p99 ${percentile(mt, 99).toFixed(0)} ms, PostgreSQL CPU ${median(mc).toFixed(0)} ms a query (${a.length} rows)`,
      )
      console.log(
        `un-materialised metric: ${(ratio * 100).toFixed(0)} % of the hand-written query's speed (wall), ${((median(hc) / Math.max(1, median(mc))) * 100).toFixed(0)} % by CPU; same rows: ${same}; ${loadAverage()}`,
      )
      for (const [label, q] of [
        ['hand-written', handSql],
        ['declared metric', metricSql],
      ] as const) {
        const [row] = await db.inOrg(tenant, (tx) => q(tx, 'explain (analyze, format json) '))
        console.log(`plan, ${label}: ${planSummary((row as { 'QUERY PLAN': PlanRoot[] })['QUERY PLAN'][0]!)}`)
      }
      const available: AvailableMetric = {
        name: 'orders.net_sales',
        plugin: PLUGIN,
        metric: 'net_sales',
        declaration: metric,
        source: { plugin: PLUGIN, collection: 'orders' },
        joins: new Map([['products', { plugin: PLUGIN, collection: 'products' }]]),
        sourcePermissions: ['orders.read'],
      }
      const query = { grain: 'month' as const, groupBy: ['category'] }
      const rollup = await db.inOrg(tenant, (tx) => createRollup(tx, available, 'month', ['category'], null))
      let t0 = performance.now()
      const full = await db.inOrg(tenant, (tx) => refreshRollup(tx, available, rollup.id, new Date()))
      const fullMs = performance.now() - t0
      await db.asOwner((tx) =>
        tx.sql(
          `insert into plugin_records (tenant_id, plugin, collection, id, data)
           select ?::uuid, ?, 'orders', gen_random_uuid(), jsonb_build_object('number', 'new' || i, 'status', 'invoiced', 'orderDate', '2023-06-15',
             'lines', (select jsonb_agg(jsonb_build_object('sku', 'S' || (1 + (i + j) % 77), 'quantity', 2, 'unitPrice', '10.25', 'discount', '0')) from generate_series(1, 4) j))
           from generate_series(1, 100) i`,
          [tenant, PLUGIN],
        ),
      )
      t0 = performance.now()
      const incr = await db.inOrg(tenant, (tx) => refreshRollup(tx, available, rollup.id, new Date()))
      const incrMs = performance.now() - t0
      const fromRollup = () => db.inOrg(tenant, async (tx) => (await rowsFromRollup(tx, available.name, query))!.rows)
      const rolled = await fromRollup()
      const live = (await runMetric()).rows
      const rolledSame = JSON.stringify(rolled) === JSON.stringify(live)
      const rt: number[] = []
      for (let i = 0; i < 200; i++) {
        const s0 = performance.now()
        await fromRollup()
        rt.push(performance.now() - s0)
      }
      console.log(
        `rollup: full refresh ${fullMs.toFixed(0)} ms (${full.recomputed.length} periods); after 400 new lines ${incrMs.toFixed(0)} ms (${incr.recomputed.length} period: ${incr.recomputed.join(', ')})`,
      )
      console.log(
        `materialised metric: median ${median(rt).toFixed(1)} ms, p99 ${percentile(rt, 99).toFixed(1)} ms (${rolled.length} rows); equal to the live answer after new rows: ${rolledSame}; ${loadAverage()}`,
      )
      if (!same || !rolledSame) process.exitCode = 1
    } finally {
      await kernel.close()
    }
  })
}

interface PlanNode {
  'Node Type': string
  'Actual Total Time': number
  'Actual Rows': number
  'Actual Loops': number
  'Workers Launched'?: number
  Plans?: PlanNode[]
}
interface PlanRoot {
  Plan: PlanNode
  'Execution Time': number
}

/** "Limit 301 ms ← Sort 301 ms ← HashAggregate 300 ms (264 rows) ← …; execution 302 ms": the plan's nodes, top down. */
function planSummary(root: PlanRoot): string {
  const parts: string[] = []
  const walk = (n: PlanNode, depth: number) => {
    const workers = n['Workers Launched'] ? `, ${n['Workers Launched']} workers` : ''
    parts.push(
      `${'  '.repeat(depth)}${n['Node Type']} ${n['Actual Total Time'].toFixed(0)} ms (${n['Actual Rows'] * n['Actual Loops']} rows${workers})`,
    )
    for (const c of n.Plans ?? []) walk(c, depth + 1)
  }
  walk(root.Plan, 0)
  return `execution ${root['Execution Time'].toFixed(0)} ms\n    ${parts.join('\n    ')}`
}
