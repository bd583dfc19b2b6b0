// What every benchmark server does first: a kernel set up for load (nothing logged, no rate
// limit in the way), a platform admin, a tenant with its admin, signed in; and, for the plugin
// benchmarks, plugins built from source and installed for that tenant.
import { readFile } from 'node:fs/promises'
import { buildPlugin } from '@trellis/plugin-sdk'
import { createKernel, type Kernel, type KernelOptions } from '../../core/src/kernel.js'
import { loadConfig } from '../../core/src/config.js'
import { createPlatformAdmin } from '../../core/src/bootstrap.js'
import { orgTx } from '../../core/src/kernel-context.js'
import { PLATFORM_ORG } from '../../core/src/db/database.js'

type Call = (method: string, path: string, body: unknown, token?: string) => Promise<any>

// One tenant drives all the load here, so its invocation caps are raised above the load
// generator's 50 connections: the benchmarks measure the plugin path, not the 429 that a
// tenant past its cap gets (tested in core/test/plugin-limits.test.ts).
const BENCH_INVOCATION_CAPS = { maxInvocationsPerTenant: 256, maxInvocationsPerInstallation: 256 }

export function benchKernel(options: Partial<KernelOptions> = {}): Promise<Kernel> {
  return createKernel({
    config: loadConfig({ ...process.env, PORT: '0', LOG_LEVEL: 'silent' }),
    migrate: true,
    rateLimitPerMinute: 10_000_000,
    poolMax: 10,
    ...options,
    plugins: { ...BENCH_INVOCATION_CAPS, ...options.plugins },
  })
}

/** Builds the plugin in `dir`, registers it as approved (as the marketplace does), and installs it with the capabilities it asks for. */
export async function installBuilt(kernel: Kernel, dir: string, call: Call, token: string): Promise<void> {
  const k = kernel.ctx
  const manifest = JSON.parse(await readFile(`${dir}/trellis.plugin.json`, 'utf8'))
  const built = await buildPlugin({ dir, write: false })
  await orgTx(k, PLATFORM_ORG, (tx) =>
    k.plugins.versions.register(
      tx,
      { manifest, code: built.code, sourceMap: built.sourceMap, status: 'approved' },
      (b) => k.plugins.probe(b),
      'bench',
    ),
  )
  await call(
    'POST',
    '/v1/installations',
    { plugin: manifest.name, version: manifest.version, capabilities: manifest.capabilities },
    token,
  )
}

export async function benchTenant(
  kernel: Kernel,
): Promise<{ url: string; token: string; tenantId: string; adminToken: string; call: Call }> {
  await createPlatformAdmin(kernel.ctx, { email: 'bench@platform.test', password: 'bench-admin-password' })
  const url = await kernel.listen()
  const call = async (method: string, path: string, body: unknown, token?: string) => {
    const r = await fetch(url + path, {
      method,
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    })
    const json = (await r.json()) as any
    if (r.status >= 300) throw new Error(`${path}: ${r.status} ${JSON.stringify(json)}`)
    return json
  }
  const admin = await call('POST', '/v1/auth/login', { email: 'bench@platform.test', password: 'bench-admin-password' })
  await call(
    'POST',
    '/v1/tenants',
    {
      name: 'Bench',
      slug: 'bench',
      admin: { email: 'admin@bench.test', name: 'Bench admin', password: 'bench-tenant-password' },
    },
    admin.accessToken,
  )
  const tenant = await call('POST', '/v1/auth/login', { email: 'admin@bench.test', password: 'bench-tenant-password' })
  return { url, token: tenant.accessToken, tenantId: tenant.org.id, adminToken: admin.accessToken, call }
}

/** Tells the bench process how to reach this server (one JSON line), then serves until killed. */
export function announce(kernel: Kernel, info: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(info)}\n`)
  process.on('SIGTERM', async () => {
    await kernel.close()
    process.exit(0)
  })
}
