// The kernel with the ERP plugins installed for a tenant (registered as the marketplace does
// once approved), a small catalog with list prices, ample stock and one customer.
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { buildPlugin } from '@trellis/plugin-sdk'
import { createKernel } from '../../core/src/kernel.js'
import { loadConfig } from '../../core/src/config.js'
import { benchTenant } from './_tenant.js'
import { orgTx } from '../../core/src/kernel-context.js'
import { PLATFORM_ORG } from '../../core/src/db/database.js'

const kernel = await createKernel({
  config: loadConfig({ ...process.env, PORT: '0', LOG_LEVEL: 'silent' }),
  migrate: true,
  rateLimitPerMinute: 10_000_000,
  poolMax: 10,
  plugins: { sandboxWorkers: Number(process.env.BENCH_SANDBOX_WORKERS ?? 2) },
})
const k = kernel.ctx
const { url, token: tenantToken, tenantId, call } = await benchTenant(kernel)
const tenant = { accessToken: tenantToken, org: { id: tenantId } }
const T = tenant.accessToken
for (const name of ['catalog', 'pricing', 'inventory', 'orders']) {
  const dir = fileURLToPath(new URL(`../../plugins/${name}`, import.meta.url))
  const manifest = JSON.parse(await readFile(`${dir}/trellis.plugin.json`, 'utf8'))
  const built = await buildPlugin({ dir, write: false })
  await orgTx(k, PLATFORM_ORG, (tx) => k.plugins.versions.register(tx, { manifest, code: built.code, sourceMap: built.sourceMap, status: 'approved' }, (b) => k.plugins.probe(b), 'bench'))
  await call('POST', '/v1/installations', { plugin: manifest.name, version: manifest.version, capabilities: manifest.capabilities }, T)
}
await call('POST', '/v1/x/catalog/import/categories', { csv: 'code,name\nBEV,Beverages\n' }, T)
await call('POST', '/v1/x/catalog/import/suppliers', { csv: 'code,name\nEXO,Exotic Liquids\n' }, T)
await call('POST', '/v1/x/catalog/import/products', { csv: 'sku,name,category,supplier\nA,Tea,BEV,EXO\nB,Ale,BEV,EXO\nC,Coffee,BEV,EXO\n' }, T)
await call('POST', '/v1/x/pricing/prices/import', { rules: [{ kind: 'list', sku: 'A', price: '9.80' }, { kind: 'list', sku: 'B', price: '19' }, { kind: 'list', sku: 'C', price: '7.70' }] }, T)
await call('POST', '/v1/x/inventory/stock/import', { rows: [{ sku: 'A', onHand: 100_000_000 }, { sku: 'B', onHand: 100_000_000 }, { sku: 'C', onHand: 100_000_000 }] }, T)
await call('POST', '/v1/x/orders/customers/import', { rows: [{ code: 'ALFKI', name: 'Alfreds Futterkiste' }] }, T)
process.stdout.write(JSON.stringify({ url, token: T }) + '\n')
process.on('SIGTERM', async () => {
  await kernel.close()
  process.exit(0)
})
