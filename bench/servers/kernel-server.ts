// The kernel under benchmark, in its own process: prints one JSON line with its URL and a
// tenant admin's access token, then serves until killed.
import { createKernel } from '../../core/src/kernel.js'
import { loadConfig } from '../../core/src/config.js'
import { createPlatformAdmin } from '../../core/src/bootstrap.js'

const kernel = await createKernel({
  config: loadConfig({ ...process.env, PORT: '0', LOG_LEVEL: 'silent' }),
  migrate: true,
  rateLimitPerMinute: 10_000_000,
  poolMax: 10,
})
await createPlatformAdmin(kernel.ctx, { email: 'bench@platform.test', password: 'bench-admin-password' })
const url = await kernel.listen()
const post = async (path: string, body: unknown, token?: string) => {
  const r = await fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) })
  return (await r.json()) as any
}
const admin = await post('/v1/auth/login', { email: 'bench@platform.test', password: 'bench-admin-password' })
await post('/v1/tenants', { name: 'Bench', slug: 'bench', admin: { email: 'admin@bench.test', name: 'Bench admin', password: 'bench-tenant-password' } }, admin.accessToken)
const tenant = await post('/v1/auth/login', { email: 'admin@bench.test', password: 'bench-tenant-password' })
process.stdout.write(JSON.stringify({ url, token: tenant.accessToken, tenantId: tenant.org.id, pid: process.pid }) + '\n')
process.on('SIGTERM', async () => {
  await kernel.close()
  process.exit(0)
})
