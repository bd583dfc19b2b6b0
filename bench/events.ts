// `npm run bench -- events`: delivered, signed webhooks per second from events committed in
// batches, against a baseline that sends the same signed POSTs to the same receiver straight from
// BullMQ jobs (no outbox, no fan-out, no delivery log) — both in the same run, in alternating
// rounds, each side in its own process (bench/servers/events-server.ts says what each does).
// Then a paced phase: batches committed at a steady RATE events/s, latency from each batch's
// commit to each event's verified arrival. The receiver (here) verifies every delivery with the
// standardwebhooks package and answers 2xx only when it verifies; only verified deliveries count.
// The one-slow-subject comparison of ADR 0013 is bench/events-order.ts.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { loadavg } from 'node:os'
import pg from 'pg'
import { Webhook } from 'standardwebhooks'
import { clearQueues, loadAverage, median, percentile, startServer, withBenchDatabase } from './_harness.js'
import { now, type Commit, type ProduceRequest } from './servers/_events-side.js'

const here = (p: string) => new URL(p, import.meta.url).pathname
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4)
const BURST = Number(process.env.BENCH_EVENTS ?? 4000)
const BATCH = Number(process.env.BENCH_BATCH ?? 50)
const IN_FLIGHT = 4
const RATE = 500
const PACED_SECONDS = Number(process.env.BENCH_SECONDS ?? 10) / 2
const PACED_BATCH = 5
const TIMEOUT_MS = 120_000

type Side = 'baseline' | 'kernel'
interface Phase {
  perSecond: number
  latencies: number[]
  load: number
  /** Events committed a second, from the first commit to the last. */
  committedPerSecond: number
}

/** The receiver both sides deliver to: verifies, records each key's first arrival, wakes waiters. */
function receiver() {
  let wh: Webhook | undefined
  const arrived = new Map<number, number>()
  const stats = { bad: 0, duplicates: 0 }
  // The keys the current phase waits for, and how many of them have arrived.
  const watch = { from: 0, to: 0, n: 0 }
  let waiters: Array<() => void> = []
  const server = http.createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      const at = now()
      try {
        const payload = wh!.verify(body, req.headers as Record<string, string>) as { data: { key: number } }
        const key = payload.data.key
        if (arrived.has(key)) stats.duplicates++
        else {
          arrived.set(key, at)
          if (key >= watch.from && key < watch.to) watch.n++
        }
        res.writeHead(204).end()
      } catch {
        stats.bad++
        res.writeHead(400).end()
      }
      // Only the phase's last arrival wakes the benchmark (the receiver shares its process).
      if (watch.n === watch.to - watch.from && waiters.length) {
        const w = waiters
        waiters = []
        for (const f of w) f()
      }
    })
  })
  const until = async (done: () => boolean, what: string) => {
    const deadline = performance.now() + TIMEOUT_MS
    while (!done()) {
      if (performance.now() > deadline)
        throw new Error(`!! INVALID RUN — ${what} did not arrive within ${TIMEOUT_MS} ms`)
      await new Promise<void>((r) => {
        waiters.push(r)
        setTimeout(r, 1000)
      })
    }
  }
  return { server, arrived, stats, watch, until, setSecret: (s: string) => (wh = new Webhook(s)) }
}

async function produce(control: string, req: ProduceRequest): Promise<Commit[]> {
  const res = await fetch(`${control}/produce`, { method: 'POST', body: JSON.stringify(req) })
  if (res.status !== 200)
    throw new Error(`!! INVALID RUN — committing events answered ${res.status}: ${await res.text()}`)
  return (await res.json()) as Commit[]
}

export async function run(): Promise<void> {
  const prefix = `trellis-bench-ev-${process.pid}`
  await withBenchDatabase(`trellis_bench_ev_${process.pid}`, async (databaseUrl) => {
    const rx = receiver()
    await new Promise<void>((r) => rx.server.listen(0, '127.0.0.1', r))
    const receiverUrl = `http://127.0.0.1:${(rx.server.address() as AddressInfo).port}/hook`
    const kernel = await startServer<{ control: string; secret: string; tenantId: string }>(
      here('./servers/events-server.ts'),
      {
        BENCH_SIDE: 'kernel',
        BENCH_RECEIVER_URL: receiverUrl,
        DATABASE_URL: databaseUrl,
        TRELLIS_SECRET_KEY: 'b'.repeat(64),
        REDIS_URL,
        TRELLIS_QUEUE_PREFIX: `${prefix}-kernel`,
        TRELLIS_EGRESS_ALLOW: '127.0.0.1',
      },
    )
    rx.setSecret(kernel.info.secret)
    const baseline = await startServer<{ control: string }>(here('./servers/events-server.ts'), {
      BENCH_SIDE: 'baseline',
      BENCH_RECEIVER_URL: receiverUrl,
      BENCH_WEBHOOK_SECRET: kernel.info.secret,
      BENCH_TENANT_ID: kernel.info.tenantId,
      REDIS_URL,
      TRELLIS_QUEUE_PREFIX: `${prefix}-baseline`,
    })
    const controls: Record<Side, string> = { kernel: kernel.info.control, baseline: baseline.info.control }
    const db = new pg.Client({ connectionString: databaseUrl })
    await db.connect()
    let nextKey = 0
    // One phase on one side: commit `total` events (as asked), wait for every one to arrive verified.
    const phase = async (side: Side, req: Omit<ProduceRequest, 'from'>): Promise<Phase> => {
      const from = nextKey
      nextKey += req.total
      const t0 = now()
      Object.assign(rx.watch, { from, to: from + req.total, n: 0 })
      const commits = await produce(controls[side], { ...req, from })
      await rx.until(() => rx.watch.n === req.total, `${side}: some of ${req.total} events`)
      const arrivals = Array.from({ length: req.total }, (_, i) => rx.arrived.get(from + i)!)
      const latencies: number[] = []
      for (const [first, size, at] of commits)
        for (let k = first; k < first + size; k++) latencies.push(rx.arrived.get(k)! - at)
      const perSecond = req.total / ((Math.max(...arrivals) - t0) / 1000)
      // Outside the measure: the kernel's delivery log settles before the next phase starts, so
      // its bookkeeping after the last arrival does not fall on the other side's round.
      if (side === 'kernel') await settle()
      const times = commits.map((c) => c[2])
      const committedPerSecond =
        req.total / ((Math.max(...times) - Math.min(...times)) / 1000 + (req.intervalMs ?? 0) / 1000)
      return { perSecond, latencies, load: loadavg()[0]!, committedPerSecond }
    }
    const settle = async () => {
      const deadline = performance.now() + TIMEOUT_MS
      for (;;) {
        const { rows } = await db.query<{ open: number }>(
          `select (select count(*) from webhook_deliveries where status = 'pending')::int
                + (select count(*) from events where processed_at is null)::int as open`,
        )
        if (rows[0]!.open === 0) return
        if (performance.now() > deadline) throw new Error('!! INVALID RUN — the delivery log did not settle')
        await new Promise((r) => setTimeout(r, 50))
      }
    }
    try {
      console.error(`  warming up both sides (${loadAverage()}) …`)
      for (const side of ['baseline', 'kernel'] as const)
        await phase(side, { total: 500, batch: BATCH, inFlight: IN_FLIGHT })
      const burst: Record<Side, Phase[]> = { baseline: [], kernel: [] }
      for (let round = 0; round < ROUNDS; round++)
        for (const side of round % 2 === 0 ? (['baseline', 'kernel'] as const) : (['kernel', 'baseline'] as const))
          burst[side].push(await phase(side, { total: BURST, batch: BATCH, inFlight: IN_FLIGHT }))
      const paced: Record<Side, Phase[]> = { baseline: [], kernel: [] }
      for (let round = 0; round < 2; round++)
        for (const side of round % 2 === 0 ? (['baseline', 'kernel'] as const) : (['kernel', 'baseline'] as const))
          paced[side].push(
            await phase(side, {
              total: RATE * PACED_SECONDS,
              batch: PACED_BATCH,
              inFlight: 1,
              intervalMs: (1000 * PACED_BATCH) / RATE,
            }),
          )
      report(burst, paced, rx.stats)
    } finally {
      await db.end()
      await baseline.stop()
      await kernel.stop()
      rx.server.closeAllConnections()
      rx.server.close()
    }
  }).finally(() => clearQueues(REDIS_URL, prefix))
}

function report(
  burst: Record<Side, Phase[]>,
  paced: Record<Side, Phase[]>,
  stats: { bad: number; duplicates: number },
): void {
  const ratios = burst.kernel.map((k, i) => k.perSecond / burst.baseline[i]!.perSecond)
  const ratio = median(ratios)
  const pct = (x: number) => `${(x * 100).toFixed(0)} %`
  const rates = (ps: Phase[]) => ps.map((p) => p.perSecond.toFixed(0)).join(', ')
  const lat = (ps: Phase[]) => {
    const all = ps.flatMap((p) => p.latencies)
    return `p50 ${percentile(all, 50).toFixed(1)} ms   p99 ${percentile(all, 99).toFixed(1)} ms (by round ${ps.map((p) => percentile(p.latencies, 99).toFixed(0)).join(', ')} ms; committed at ${ps.map((p) => p.committedPerSecond.toFixed(0)).join(', ')}/s)`
  }
  const loads = (ps: Phase[]) => ps.map((p) => p.load.toFixed(1)).join(', ')
  console.log(
    `baseline: BullMQ job → signed POST, as fast as it goes      ${median(burst.baseline.map((p) => p.perSecond))
      .toFixed(0)
      .padStart(6)} delivered/s (rounds ${rates(burst.baseline)})`,
  )
  console.log(
    `kernel: batch commit → outbox → … → signed POST + log       ${median(burst.kernel.map((p) => p.perSecond))
      .toFixed(0)
      .padStart(
        6,
      )} delivered/s (rounds ${rates(burst.kernel)})   ${pct(ratio)} of baseline (rounds ${ratios.map(pct).join(', ')}; load avg by round ${loads(burst.kernel)})`,
  )
  console.log(`baseline at a steady ${RATE}/s, commit → verified arrival: ${lat(paced.baseline)}`)
  console.log(
    `kernel at a steady ${RATE}/s, commit → verified arrival:   ${lat(paced.kernel)}   load avg ${loads(paced.kernel)}`,
  )
  const p99 = percentile(
    paced.kernel.flatMap((p) => p.latencies),
    99,
  )
  console.log()
  console.log(
    `delivered signed webhooks: ${pct(ratio)} of the baseline (target ≥ 50 %); p99 commit → delivery at ${RATE}/s: ${p99.toFixed(0)} ms (target ≤ 250 ms); signatures failing verification: ${stats.bad}; duplicates: ${stats.duplicates}; ${loadAverage()}`,
  )
  if (stats.bad > 0) {
    console.error(`!! INVALID RUN — ${stats.bad} deliveries failed verification`)
    process.exitCode = 1
  }
}
