// What every benchmark server does first: a platform admin, a tenant with its admin, signed in.
import type { Kernel } from '../../core/src/kernel.js'
import { createPlatformAdmin } from '../../core/src/bootstrap.js'

export async function benchTenant(kernel: Kernel): Promise<{ url: string; token: string; tenantId: string; adminToken: string; call: (method: string, path: string, body: unknown, token?: string) => Promise<any> }> {
  await createPlatformAdmin(kernel.ctx, { email: 'bench@platform.test', password: 'bench-admin-password' })
  const url = await kernel.listen()
  const call = async (method: string, path: string, body: unknown, token?: string) => {
    const r = await fetch(url + path, { method, headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) })
    const json = (await r.json()) as any
    if (r.status >= 300) throw new Error(`${path}: ${r.status} ${JSON.stringify(json)}`)
    return json
  }
  const admin = await call('POST', '/v1/auth/login', { email: 'bench@platform.test', password: 'bench-admin-password' })
  await call('POST', '/v1/tenants', { name: 'Bench', slug: 'bench', admin: { email: 'admin@bench.test', name: 'Bench admin', password: 'bench-tenant-password' } }, admin.accessToken)
  const tenant = await call('POST', '/v1/auth/login', { email: 'admin@bench.test', password: 'bench-tenant-password' })
  return { url, token: tenant.accessToken, tenantId: tenant.org.id, adminToken: admin.accessToken, call }
}
