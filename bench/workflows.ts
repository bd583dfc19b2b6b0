// `npm run bench -- workflows`: five-step automated workflow instances (each step a sandboxed
// invocation that passes its input on, run by the durable runtime) against chains of five no-op
// jobs on the same queue implementation (the PostgreSQL job table; REDIS_URL → BullMQ), each job
// adding the next as a step does — same process, same concurrency, same database, started the
// same way (bench/servers/workflow-server.ts). Rounds alternate (raw, workflow; workflow, raw; …).
// Completion is a positive signal from outside the measured path: PostgreSQL notifies this
// process (LISTEN bench_done) when an instance or a chain finishes; nothing polls.
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { clearQueues, loadAverage, median, startServer, withBenchDatabase } from './_harness.js'

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url))
const INSTANCES = Number(process.env.BENCH_INSTANCES ?? 100)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4)
const TIMEOUT_MS = 300_000

type Side = 'raw' | 'workflows'

export async function run(): Promise<void> {
  const prefix = `trellis-bench-wf-${process.pid}`
  await withBenchDatabase(`trellis_bench_wf_${process.pid}`, async (databaseUrl) => {
    const server = await startServer<{ url: string; concurrency: number }>(here('./servers/workflow-server.ts'), {
      DATABASE_URL: databaseUrl,
      TRELLIS_SECRET_KEY: 'd'.repeat(64),
      TRELLIS_QUEUE_PREFIX: prefix,
    })
    const db = new pg.Client({ connectionString: databaseUrl })
    await db.connect()
    try {
      // A finished instance notifies; the trigger fires only on the transition to completed.
      await db.query(`create function bench_done() returns trigger language plpgsql as $$
          begin perform pg_notify('bench_done', new.id::text); return new; end $$;
        create trigger bench_done after update of status on workflow_instances for each row
          when (new.status = 'completed' and old.status <> 'completed') execute function bench_done()`)
      let done = 0
      let wake: (() => void) | undefined
      db.on('notification', () => {
        done++
        wake?.()
      })
      await db.query('listen bench_done')
      let from = 0
      const round = async (side: Side, n: number): Promise<number> => {
        done = 0
        const t0 = performance.now()
        const res = await fetch(`${server.info.url}/bench/${side}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ from, n }),
        })
        from += n
        if (res.status !== 200) throw new Error(`!! INVALID RUN — starting ${side} answered ${res.status}`)
        const deadline = t0 + TIMEOUT_MS
        while (done < n) {
          if (performance.now() > deadline) throw new Error(`!! INVALID RUN — ${n - done} ${side} did not finish`)
          await new Promise<void>((r) => {
            wake = r
            setTimeout(r, 1000)
          })
        }
        return (n * 5) / ((performance.now() - t0) / 1000)
      }
      await round('raw', 20)
      await round('workflows', 20)
      const steps: Record<Side, number[]> = { raw: [], workflows: [] }
      for (let i = 0; i < ROUNDS; i++)
        for (const side of i % 2 === 0 ? (['raw', 'workflows'] as const) : (['workflows', 'raw'] as const))
          steps[side].push(await round(side, INSTANCES))
      const failed = await db.query<{ n: number }>(
        `select count(*)::int as n from workflow_instances where status <> 'completed'`,
      )
      const ratios = steps.workflows.map((w, i) => w / steps.raw[i]!)
      const queue = process.env.REDIS_URL ? 'BullMQ' : 'PostgreSQL job table'
      const rounds = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(', ')
      const raw = median(steps.raw)
      const wf = median(steps.workflows)
      console.log(
        `baseline: ${queue}, chains of 5 no-op jobs, concurrency ${server.info.concurrency}   ${raw.toFixed(0).padStart(6)} jobs/s (rounds ${rounds(steps.raw)})`,
      )
      console.log(
        `workflows: 5-step instances, concurrency ${server.info.concurrency}              ${wf.toFixed(0).padStart(6)} steps/s (rounds ${rounds(steps.workflows)}) = ${(wf / 5).toFixed(1)} instances/s`,
      )
      console.log()
      console.log(
        `workflow steps: ${(median(ratios) * 100).toFixed(0)} % of the raw queue's jobs/s (rounds ${ratios.map((r) => `${(r * 100).toFixed(0)} %`).join(', ')}); overhead per step beyond a raw job: ${(1000 / wf - 1000 / raw).toFixed(2)} ms of wall time at concurrency ${server.info.concurrency}; ${loadAverage()}`,
      )
      if (failed.rows[0]!.n > 0) {
        console.error(`!! INVALID RUN — ${failed.rows[0]!.n} instances did not complete`)
        process.exitCode = 1
      }
    } finally {
      await db.end()
      await server.stop()
    }
  }).finally(() => process.env.REDIS_URL && clearQueues(process.env.REDIS_URL, prefix))
}
