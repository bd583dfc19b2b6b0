// `npm run bench -- events`: end to end, a committed change (POST /v1/roles, whose role, audit
// entry and event commit in one statement) → outbox → dispatcher → BullMQ → fan-out → signed
// webhook → received and verified (standardwebhooks) by a local receiver; next to raw BullMQ
// add → process measured in the same run on the same Redis. Throughput (as fast as it goes)
// and latency at a steady 500 events/s; as the ceiling, the change alone made by bare Fastify + pg;
// and throughput with a receiver that is slow for one subject against one that is not.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { Queue, Worker } from 'bullmq'
import { Redis } from 'ioredis'
import { Webhook } from 'standardwebhooks'
import { startServer, withBenchDatabase } from './_harness.js'

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url))
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10)
const BURST = Number(process.env.BENCH_EVENTS ?? 3000)
const RATE = 500
// The one-slow-subject comparison: rounds per side, events per round, the slow answer, hot writes a second.
const ORDER_ROUNDS = Number(process.env.BENCH_ORDER_ROUNDS ?? 4)
const ORDER_EVENTS = Number(process.env.BENCH_ORDER_EVENTS ?? 1500)
const SLOW_MS = 200
const HOT_RATE = 20

interface Result {
  perSecond: number
  p50: number
  p99: number
  count: number
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN
}

/** Sends `total` items either as fast as `concurrency` allows, or at `rate` per second. */
async function drive(
  total: number,
  send: (i: number) => Promise<void>,
  opts: { concurrency?: number; rate?: number },
): Promise<void> {
  if (opts.rate) {
    const started = performance.now()
    const pending: Promise<void>[] = []
    for (let i = 0; i < total; i++) {
      const due = started + (i * 1000) / opts.rate
      const wait = due - performance.now()
      if (wait > 1) await new Promise((r) => setTimeout(r, wait))
      pending.push(send(i))
    }
    await Promise.all(pending)
    return
  }
  let next = 0
  await Promise.all(
    Array.from({ length: opts.concurrency ?? 50 }, async () => {
      while (next < total) await send(next++)
    }),
  )
}

async function rawBullmq(prefix: string): Promise<{ burst: Result; steady: Result }> {
  const producer = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 })
  const consumer = new Redis(REDIS_URL, { maxRetriesPerRequest: null })
  const queue = new Queue('raw', { connection: producer as never, prefix })
  const seen = new Map<number, number>()
  const waiters: Array<() => void> = []
  const worker = new Worker(
    'raw',
    async (job) => {
      seen.set(job.data.i as number, performance.now())
      for (const w of waiters.splice(0)) w()
    },
    { connection: consumer as never, prefix, concurrency: 16 },
  )
  const until = async (n: number) => {
    while (seen.size < n) await new Promise<void>((r) => waiters.push(r))
  }
  const run = async (total: number, opts: { concurrency?: number; rate?: number }, offset: number): Promise<Result> => {
    seen.clear()
    const sent = new Map<number, number>()
    const t0 = performance.now()
    await drive(
      total,
      async (i) => {
        sent.set(offset + i, performance.now())
        await queue.add('job', { i: offset + i }, { removeOnComplete: true })
      },
      opts,
    )
    await until(total)
    const elapsed = (performance.now() - t0) / 1000
    const lat = [...sent].map(([i, at]) => seen.get(i)! - at)
    return { perSecond: total / elapsed, p50: pct(lat, 50), p99: pct(lat, 99), count: total }
  }
  await run(500, { concurrency: 50 }, 1_000_000) // warm-up
  const burst = await run(BURST, { concurrency: 50 }, 0)
  const steady = await run(RATE * SECONDS, { rate: RATE }, BURST)
  await worker.close()
  await queue.obliterate({ force: true }).catch(() => {})
  await queue.close()
  producer.disconnect()
  consumer.disconnect()
  return { burst, steady }
}

export async function run(): Promise<void> {
  const prefix = `trellis-bench-${process.pid}`
  await withBenchDatabase(`trellis_bench_ev_${process.pid}`, async (databaseUrl) => {
    const raw = await rawBullmq(`${prefix}-raw`)

    // The receiver verifies every delivery with the standardwebhooks package before counting it.
    let wh: Webhook | undefined
    const received = new Map<string, number>()
    let bad = 0
    const waiters: Array<() => void> = []
    // The one-slow-subject comparison: while `slowSubject` is set, the receiver takes SLOW_MS to
    // answer each event about it (its later events wait in line); every other subject is answered at once.
    let slowSubject: string | undefined
    const hotReceived = new Set<string>()
    const receiver = http.createServer((req, res) => {
      let body = ''
      req.on('data', (c) => (body += c))
      req.on('end', () => {
        let slow = false
        try {
          const payload = wh!.verify(body, req.headers as Record<string, string>) as {
            id: string
            subject: string
            data: { name: string }
          }
          if (payload.subject.startsWith('webhook/')) {
            hotReceived.add(payload.id)
            slow = payload.subject === slowSubject
          } else if (!received.has(payload.data.name)) received.set(payload.data.name, performance.now())
        } catch {
          bad++
        }
        const answer = () => {
          res.end()
          for (const w of waiters.splice(0)) w()
        }
        if (slow) setTimeout(answer, SLOW_MS)
        else answer()
      })
    })
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r))
    const receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`

    const kernel = await startServer<{ url: string; token: string; tenantId: string }>(
      here('./servers/kernel-server.ts'),
      {
        DATABASE_URL: databaseUrl,
        TRELLIS_SECRET_KEY: 'b'.repeat(64),
        REDIS_URL,
        TRELLIS_QUEUE_PREFIX: `${prefix}-kernel`,
        TRELLIS_EGRESS_ALLOW: '127.0.0.1',
      },
    )
    // Plain node:http on kept-alive connections: the load generator shares the machine with what
    // it measures, so it should cost as little as it can (fetch costs several times more).
    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 })
    try {
      const api = (path: string, body: unknown, base = kernel.info.url, method = 'POST') =>
        new Promise<{ secret: string; id: string }>((resolve, reject) => {
          const req = http.request(
            base + path,
            {
              method,
              agent,
              headers: { 'content-type': 'application/json', authorization: `Bearer ${kernel.info.token}` },
            },
            (res) => {
              let text = ''
              res.setEncoding('utf8')
              res.on('data', (c: string) => (text += c))
              res.on('end', () =>
                (res.statusCode ?? 0) >= 300
                  ? reject(new Error(`${path}: ${res.statusCode} ${text}`))
                  : resolve(JSON.parse(text)),
              )
            },
          )
          req.on('error', reject)
          req.end(JSON.stringify(body))
        })
      const ep = await api('/v1/webhooks', {
        url: receiverUrl,
        types: ['kernel.role.created', 'kernel.webhook.updated'],
      })
      wh = new Webhook(ep.secret)
      // The subject the slow receiver holds up: the changes of an endpoint that receives nothing itself.
      const hot = await api('/v1/webhooks', { url: receiverUrl, types: ['bench.never.sent'] })
      let n = 0
      const e2e = async (total: number, opts: { concurrency?: number; rate?: number }): Promise<Result> => {
        const sent = new Map<string, number>()
        const names: string[] = []
        const t0 = performance.now()
        await drive(
          total,
          async () => {
            const roleName = `b${n++}`
            names.push(roleName)
            sent.set(roleName, performance.now())
            await api('/v1/roles', { name: roleName, permissions: [] })
          },
          opts,
        )
        while (!names.every((x) => received.has(x)))
          await new Promise<void>((r) => {
            waiters.push(r)
            setTimeout(r, 100)
          })
        const elapsed = (performance.now() - t0) / 1000
        const lat = names.map((x) => received.get(x)! - sent.get(x)!)
        return { perSecond: total / elapsed, p50: pct(lat, 50), p99: pct(lat, 99), count: total }
      }
      console.error('  raw BullMQ measured; now the kernel end to end …')
      await e2e(500, { concurrency: 50 }) // warm-up
      const burst = await e2e(BURST, { concurrency: 50 })
      const steady = await e2e(RATE * SECONDS, { rate: RATE })

      // Order per subject per endpoint must not cost throughput when the receiver is slow for one
      // subject: while HOT_RATE changes a second are written to a hot subject, rounds alternate
      // between a receiver that answers it at once and one that takes SLOW_MS per event about it
      // (the subject's later events wait in line). Both sides'
      // writes must answer 2xx (api() throws otherwise) and every event must arrive verified.
      let hotWrites = 0
      const sides = { plain: [] as number[], slow: [] as number[] }
      for (let round = 0; round < ORDER_ROUNDS; round++) {
        for (const side of round % 2 === 0 ? (['plain', 'slow'] as const) : (['slow', 'plain'] as const)) {
          // Both sides write to the hot subject; only the receiver's answer to it differs.
          let stopHot = false
          slowSubject = side === 'slow' ? `webhook/${hot.id}` : undefined
          const writer = (async () => {
            while (!stopHot) {
              await api(`/v1/webhooks/${hot.id}`, { description: `hot ${hotWrites}` }, kernel.info.url, 'PATCH')
              hotWrites++
              await new Promise((r) => setTimeout(r, 1000 / HOT_RATE))
            }
          })()
          const r = await e2e(ORDER_EVENTS, { concurrency: 50 })
          stopHot = true
          await writer
          sides[side].push(r.perSecond)
          // The hot subject's line drains at full speed before the next round starts.
          slowSubject = undefined
          while (hotReceived.size < hotWrites)
            await new Promise<void>((res) => {
              waiters.push(res)
              setTimeout(res, 100)
            })
        }
      }
      const median = (xs: number[]) => {
        const v = [...xs].sort((a, b) => a - b)
        return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2
      }
      // The two sides of a round run back to back: their ratio is the least disturbed by a
      // machine whose load drifts; the median of those ratios is the figure.
      const orderRatio = median(sides.slow.map((x, i) => x / sides.plain[i]!))

      // The ceiling: the change alone — bare Fastify + pg writing the same role and audit rows
      // under RLS (the kernel benchmark's baseline), no event — driven the same way.
      const bare = await startServer<{ url: string }>(here('./servers/baseline-server.ts'), {
        DATABASE_URL: databaseUrl,
        BENCH_TENANT_ID: kernel.info.tenantId,
      })
      let ceiling: Result
      try {
        const writes = async (total: number) => {
          const t0 = performance.now()
          await drive(
            total,
            () => api('/baseline/roles', { name: `c${n++}`, permissions: [] }, bare.info.url).then(() => undefined),
            { concurrency: 50 },
          )
          return { perSecond: total / ((performance.now() - t0) / 1000), p50: NaN, p99: NaN, count: total }
        }
        await writes(500)
        ceiling = await writes(BURST)
      } finally {
        await bare.stop()
      }

      const line = (label: string, r: Result, extra = '') =>
        `${label.padEnd(58)} ${r.perSecond.toFixed(0).padStart(6)} ev/s   p50 ${r.p50.toFixed(1).padStart(6)} ms   p99 ${r.p99.toFixed(1).padStart(6)} ms${extra}`
      console.log(line('baseline: raw BullMQ add → process, as fast as it goes', raw.burst))
      console.log(
        line(
          'kernel: change → verified webhook, as fast as it goes',
          burst,
          `   ${((burst.perSecond / raw.burst.perSecond) * 100).toFixed(0)} % of raw BullMQ`,
        ),
      )
      console.log(
        `${'ceiling: the change alone (bare Fastify + pg, no event)'.padEnd(58)} ${ceiling.perSecond.toFixed(0).padStart(6)} writes/s  ${((ceiling.perSecond / raw.burst.perSecond) * 100).toFixed(0)} % of raw BullMQ`,
      )
      console.log(line(`baseline: raw BullMQ at a steady ${RATE}/s`, raw.steady))
      console.log(line(`kernel: change → verified webhook at a steady ${RATE}/s`, steady))
      console.log(
        `${'kernel: receiver answering every subject at once'.padEnd(58)} ${median(sides.plain).toFixed(0).padStart(6)} ev/s   rounds ${sides.plain.map((x) => x.toFixed(0)).join(', ')}`,
      )
      console.log(
        `${`kernel: receiver taking ${SLOW_MS} ms per event of one subject`.padEnd(58)} ${median(sides.slow).toFixed(0).padStart(6)} ev/s   rounds ${sides.slow.map((x) => x.toFixed(0)).join(', ')}   median of the rounds' ratios ${(orderRatio * 100).toFixed(0)} % of the plain side`,
      )
      console.log()
      console.log(
        `throughput: ${((burst.perSecond / raw.burst.perSecond) * 100).toFixed(0)} % of raw BullMQ (target ≥ 30 %); p99 at ${RATE}/s: ${steady.p99.toFixed(0)} ms (target ≤ 250 ms); one slow subject: ${(orderRatio * 100).toFixed(0)} % of the throughput (target ≥ 90 %); signatures failing verification: ${bad}`,
      )
      if (bad > 0) process.exitCode = 1
    } finally {
      agent.destroy()
      await kernel.stop()
      receiver.closeAllConnections()
      receiver.close()
    }
  }).finally(async () => {
    const r = new Redis(REDIS_URL)
    const keys = await r.keys(`${prefix}*`)
    if (keys.length) await r.del(...keys)
    r.disconnect()
  })
}
