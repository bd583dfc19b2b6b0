// The kernel with the ERP plugins installed for a tenant (registered as the marketplace does
// once approved), a small catalog with list prices, ample stock and one customer.
import { fileURLToPath } from 'node:url'
import { announce, benchKernel, benchTenant, installBuilt } from './_tenant.js'

const kernel = await benchKernel({ plugins: { sandboxWorkers: Number(process.env.BENCH_SANDBOX_WORKERS ?? 2) } })
const { url, token: T, call } = await benchTenant(kernel)
for (const name of ['catalog', 'pricing', 'inventory', 'orders'])
  await installBuilt(kernel, fileURLToPath(new URL(`../../plugins/${name}`, import.meta.url)), call, T)
await call('POST', '/v1/x/catalog/import/categories', { csv: 'code,name\nBEV,Beverages\n' }, T)
await call('POST', '/v1/x/catalog/import/suppliers', { csv: 'code,name\nEXO,Exotic Liquids\n' }, T)
await call(
  'POST',
  '/v1/x/catalog/import/products',
  { csv: 'sku,name,category,supplier\nA,Tea,BEV,EXO\nB,Ale,BEV,EXO\nC,Coffee,BEV,EXO\n' },
  T,
)
await call(
  'POST',
  '/v1/x/pricing/prices/import',
  {
    rules: [
      { kind: 'list', sku: 'A', price: '9.80' },
      { kind: 'list', sku: 'B', price: '19' },
      { kind: 'list', sku: 'C', price: '7.70' },
    ],
  },
  T,
)
await call(
  'POST',
  '/v1/x/inventory/stock/import',
  {
    rows: [
      { sku: 'A', onHand: 100_000_000 },
      { sku: 'B', onHand: 100_000_000 },
      { sku: 'C', onHand: 100_000_000 },
    ],
  },
  T,
)
await call('POST', '/v1/x/orders/customers/import', { rows: [{ code: 'ALFKI', name: 'Alfreds Futterkiste' }] }, T)
announce(kernel, { url, token: T })
