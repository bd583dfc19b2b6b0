// One kernel process in the role TRELLIS_ROLE (api or worker), configured from the environment,
// for `npm run bench -- scale`: prints its URL and pid, drains and exits on SIGTERM.
import { benchKernel } from './_tenant.js'
import { loadConfig } from '../../core/src/config.js'

const kernel = await benchKernel({
  config: loadConfig({ ...process.env, PORT: '0', LOG_LEVEL: 'silent' }),
  migrate: false,
})
const url = await kernel.listen()
console.log(JSON.stringify({ url, pid: process.pid, role: kernel.role }))
process.once('SIGTERM', () => void kernel.close().then(() => process.exit(0)))
