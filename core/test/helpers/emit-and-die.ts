// Run as a child process by webhooks-faults.test.ts: commits one change that emits an event,
// and is killed (SIGKILL) at the moment the dispatcher would be woken — after the commit,
// before anything reached the queue.
import { createKernel } from '../../src/kernel.js'
import { loadConfig } from '../../src/config.js'

const k = await createKernel({ config: loadConfig(process.env), events: { sweepMs: 3_600_000, worker: false } })
k.ctx.events.nudge = () => process.kill(process.pid, 'SIGKILL')
const r = await k.app.inject({
  method: 'POST',
  url: '/v1/roles',
  headers: { authorization: `Bearer ${process.env.TOKEN}` },
  payload: { name: 'made-before-the-crash', permissions: [] },
})
// Only reached if the kill did not happen.
console.log(JSON.stringify({ status: r.statusCode, survived: true }))
process.exit(3)
