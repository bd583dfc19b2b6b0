// Run as a child process by fault-injection tests: a kernel configured from the environment,
// listening on PORT, with a quick sweep so lost work comes back within seconds. Prints its URL.
import { createKernel } from '../../src/kernel.js'
import { loadConfig } from '../../src/config.js'

const k = await createKernel({
  config: loadConfig(process.env),
  migrate: true,
  events: { sweepMs: 200, staleMs: 1000, totalTimeoutMs: 2000, connectTimeoutMs: 1000 },
})
const url = await k.listen()
console.log(JSON.stringify({ url }))
process.on('SIGTERM', () => void k.close().then(() => process.exit(0)))
