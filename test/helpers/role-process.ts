// Run as a child process by test/scale-out.test.ts: one kernel process in the role TRELLIS_ROLE
// (api or worker) with the marketplace, configured from the environment and listening on PORT.
// Prints its URL; on SIGTERM it drains and exits 0. Sweeps are quick and BullMQ's job locks
// short, so that work a SIGKILLed process held runs again elsewhere within seconds.
import { createKernel } from '../../core/src/kernel.js'
import { loadConfig } from '../../core/src/config.js'
import { BullMqJobQueue } from '../../core/src/events/bullmq-queue.js'
import { createMarketplace } from '../../marketplace/src/index.js'

const config = loadConfig(process.env)
const queue = (name: string) =>
  new BullMqJobQueue(config.redisUrl!, name, config.queuePrefix, undefined, { lockMs: 2000 })
const k = await createKernel({
  config,
  // Checks are looked for often: a publish through an API process does not nudge the workers' checks.
  extensions: [createMarketplace({ checks: { pollMs: 200, maxPollMs: 500 } })],
  rateLimitPerMinute: Number(process.env.SCALE_TEST_RATE_LIMIT ?? 100_000),
  events: {
    sweepMs: 200,
    staleMs: 1000,
    totalTimeoutMs: 2000,
    connectTimeoutMs: 1000,
    queue: queue('trellis-events'),
  },
  workflows: { sweepMs: 200, stalledMs: 1500, queue: queue('trellis-events-workflows') },
})
const url = await k.listen()
console.log(JSON.stringify({ url, role: k.role }))
process.once('SIGTERM', () => void k.close().then(() => process.exit(0)))
