// One side of the events benchmark, in its own process (bench/events.ts starts one of each).
// BENCH_SIDE=kernel: a kernel on BullMQ with one webhook endpoint at the receiver; each batch of
// events is one transaction writing them to the outbox, and the kernel's pipeline — dispatcher →
// BullMQ → fan-out creating delivery rows → signed POST → attempt recorded — delivers them.
// BENCH_SIDE=baseline: the same signed POSTs (the same body, Standard Webhooks signature, secret
// and receiver) straight from BullMQ jobs: each batch is one addBulk, and a worker with the
// kernel's concurrency signs and sends each job's event. No outbox, no fan-out, no delivery log.
// Each side prints one JSON line (its control URL, the endpoint's secret), then serves until killed.
import http from 'node:http'
import { Queue, Worker } from 'bullmq'
import { Redis } from 'ioredis'
import { v7 as uuidv7 } from 'uuid'
import { benchKernel, benchTenant } from './_tenant.js'
import { EVENT_TYPE, eventOf, serveControl } from './_events-side.js'
import { orgTx } from '../../core/src/kernel-context.js'
import { emitEvents } from '../../core/src/events/outbox.js'
import { deliveryBody } from '../../core/src/events/webhook-delivery.js'
import { signWebhook } from '../../core/src/events/signing.js'

const receiverUrl = process.env.BENCH_RECEIVER_URL!
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const prefix = process.env.TRELLIS_QUEUE_PREFIX ?? 'trellis-bench'
// The kernel's worker concurrency on BullMQ (event-system.ts) and its keep-alive agent's sockets (egress-guard.ts).
const CONCURRENCY = 64
const SOCKETS = 32

async function kernelSide(): Promise<void> {
  const kernel = await benchKernel()
  const { tenantId, token, call } = await benchTenant(kernel)
  const endpoint = await call('POST', '/v1/webhooks', { url: receiverUrl, types: [EVENT_TYPE] }, token)
  const control = await serveControl(async (keys) => {
    await orgTx(kernel.ctx, tenantId, (tx) => emitEvents(tx, ...keys.map(eventOf)))
  })
  process.stdout.write(`${JSON.stringify({ control, secret: endpoint.secret, tenantId })}\n`)
  process.on('SIGTERM', async () => {
    await kernel.close()
    process.exit(0)
  })
}

async function baselineSide(secret: string, tenantId: string): Promise<void> {
  const producer = new Redis(redisUrl, { maxRetriesPerRequest: 1 })
  const consumer = new Redis(redisUrl, { maxRetriesPerRequest: null })
  const queue = new Queue('deliveries', { connection: producer as never, prefix })
  const agent = new http.Agent({ keepAlive: true, maxSockets: SOCKETS, keepAliveMsecs: 1000 })
  const post = (body: string, headers: Record<string, string>) =>
    new Promise<void>((resolve, reject) => {
      const req = http.request(receiverUrl, { method: 'POST', agent, headers }, (res) => {
        res.resume()
        res.on('end', () =>
          (res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300
            ? resolve()
            : reject(new Error(`receiver answered ${res.statusCode}`)),
        )
      })
      req.on('error', reject)
      req.end(body)
    })
  const worker = new Worker(
    'deliveries',
    async (job) => {
      const e = job.data as { id: string; time: string; key: number }
      const ev = eventOf(e.key)
      // The body the kernel sends (its own function), the event's id as webhook-id, signed alike.
      const body = deliveryBody({
        event_id: e.id,
        type: ev.type,
        time: e.time,
        source: 'trellis/kernel',
        subject: ev.subject,
        seq: 1,
        tenant_id: tenantId,
        data: ev.data,
      } as never)
      const timestamp = Math.floor(Date.now() / 1000)
      await post(body, {
        'content-type': 'application/json',
        'user-agent': 'Trellis-Webhooks/1',
        'webhook-id': e.id,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signWebhook([secret], e.id, timestamp, body),
      })
    },
    { connection: consumer as never, prefix, concurrency: CONCURRENCY },
  )
  const control = await serveControl(async (keys) => {
    const time = new Date().toISOString()
    await queue.addBulk(
      keys.map((key) => ({ name: 'deliver', data: { id: uuidv7(), time, key }, opts: { removeOnComplete: true } })),
    )
  })
  process.stdout.write(`${JSON.stringify({ control })}\n`)
  process.on('SIGTERM', async () => {
    await worker.close()
    await queue.close()
    producer.disconnect()
    consumer.disconnect()
    process.exit(0)
  })
}

if (process.env.BENCH_SIDE === 'baseline')
  await baselineSide(process.env.BENCH_WEBHOOK_SECRET!, process.env.BENCH_TENANT_ID!)
else await kernelSide()
