// `npm run bench -- events-order`: order per subject per endpoint (ADR 0013) must not cost
// throughput when a receiver is slow for one subject. While 20 changes a second are written to a
// hot subject, rounds alternate between a receiver that answers it at once and one that takes
// SLOW_MS per event about it (its later events wait in line); each round measures change →
// verified webhook for ORDER_EVENTS changes (POST /v1/roles, 50 in flight, BullMQ). Every write
// must answer 2xx (api() throws otherwise) and every delivery must verify (standardwebhooks).
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { Webhook } from 'standardwebhooks'
import { clearQueues, loadAverage, median, startServer, withBenchDatabase } from './_harness.js'

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url))
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'
const ORDER_ROUNDS = Number(process.env.BENCH_ORDER_ROUNDS ?? 4)
const ORDER_EVENTS = Number(process.env.BENCH_ORDER_EVENTS ?? 1500)
const SLOW_MS = 200
const HOT_RATE = 20

export async function run(): Promise<void> {
  const prefix = `trellis-bench-order-${process.pid}`
  await withBenchDatabase(`trellis_bench_order_${process.pid}`, async (databaseUrl) => {
    let wh: Webhook | undefined
    const received = new Set<string>()
    const hotReceived = new Set<string>()
    let bad = 0
    let waiters: Array<() => void> = []
    // While `slowSubject` is set, the receiver takes SLOW_MS to answer each event about it.
    let slowSubject: string | undefined
    const receiver = http.createServer((req, res) => {
      let body = ''
      req.on('data', (c) => (body += c))
      req.on('end', () => {
        let slow = false
        try {
          const p = wh!.verify(body, req.headers as Record<string, string>) as {
            id: string
            subject: string
            data: { name: string }
          }
          if (p.subject.startsWith('webhook/')) {
            hotReceived.add(p.id)
            slow = p.subject === slowSubject
          } else received.add(p.data.name)
        } catch {
          bad++
        }
        const answer = () => {
          res.end()
          const w = waiters
          waiters = []
          for (const f of w) f()
        }
        if (slow) setTimeout(answer, SLOW_MS)
        else answer()
      })
    })
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r))
    const receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`
    const kernel = await startServer<{ url: string; token: string }>(here('./servers/kernel-server.ts'), {
      DATABASE_URL: databaseUrl,
      TRELLIS_SECRET_KEY: 'b'.repeat(64),
      REDIS_URL,
      TRELLIS_QUEUE_PREFIX: prefix,
      TRELLIS_EGRESS_ALLOW: '127.0.0.1',
    })
    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 })
    const api = (path: string, body: unknown, method = 'POST') =>
      new Promise<{ secret: string; id: string }>((resolve, reject) => {
        const req = http.request(
          kernel.info.url + path,
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
              (res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300
                ? resolve(JSON.parse(text))
                : reject(new Error(`!! INVALID RUN — ${path}: ${res.statusCode} ${text}`)),
            )
          },
        )
        req.on('error', reject)
        req.end(JSON.stringify(body))
      })
    const until = async (done: () => boolean) => {
      while (!done())
        await new Promise<void>((r) => {
          waiters.push(r)
          setTimeout(r, 100)
        })
    }
    try {
      wh = new Webhook(
        (await api('/v1/webhooks', { url: receiverUrl, types: ['kernel.role.created', 'kernel.webhook.updated'] }))
          .secret,
      )
      // The hot subject: the changes of an endpoint that receives nothing itself.
      const hot = await api('/v1/webhooks', { url: receiverUrl, types: ['bench.never.sent'] })
      let n = 0
      const changes = async (total: number): Promise<number> => {
        const names = Array.from({ length: total }, () => `b${n++}`)
        const t0 = performance.now()
        let next = 0
        await Promise.all(
          Array.from({ length: 50 }, async () => {
            while (next < total) await api('/v1/roles', { name: names[next++], permissions: [] })
          }),
        )
        await until(() => names.every((x) => received.has(x)))
        return total / ((performance.now() - t0) / 1000)
      }
      await changes(500) // warm-up
      let hotWrites = 0
      const sides = { plain: [] as number[], slow: [] as number[] }
      for (let round = 0; round < ORDER_ROUNDS; round++) {
        for (const side of round % 2 === 0 ? (['plain', 'slow'] as const) : (['slow', 'plain'] as const)) {
          // Both sides write to the hot subject; only the receiver's answer to it differs.
          let stopHot = false
          slowSubject = side === 'slow' ? `webhook/${hot.id}` : undefined
          const writer = (async () => {
            while (!stopHot) {
              await api(`/v1/webhooks/${hot.id}`, { description: `hot ${hotWrites}` }, 'PATCH')
              hotWrites++
              await new Promise((r) => setTimeout(r, 1000 / HOT_RATE))
            }
          })()
          sides[side].push(await changes(ORDER_EVENTS))
          stopHot = true
          await writer
          // The hot subject's line drains at full speed before the next round starts.
          slowSubject = undefined
          await until(() => hotReceived.size >= hotWrites)
        }
      }
      // The two sides of a round run back to back: the median of the rounds' ratios is the figure.
      const ratio = median(sides.slow.map((x, i) => x / sides.plain[i]!))
      const rounds = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(', ')
      console.log(
        `kernel: receiver answering every subject at once      ${median(sides.plain).toFixed(0)} ev/s (rounds ${rounds(sides.plain)})`,
      )
      console.log(
        `kernel: receiver taking ${SLOW_MS} ms per event of one subject  ${median(sides.slow).toFixed(0)} ev/s (rounds ${rounds(sides.slow)})`,
      )
      console.log()
      console.log(
        `one slow subject: ${(ratio * 100).toFixed(0)} % of the throughput (target ≥ 90 %); signatures failing verification: ${bad}; ${loadAverage()}`,
      )
      if (bad > 0) process.exitCode = 1
    } finally {
      agent.destroy()
      await kernel.stop()
      receiver.closeAllConnections()
      receiver.close()
    }
  }).finally(() => clearQueues(REDIS_URL, prefix))
}
