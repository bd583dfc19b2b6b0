/**
 * Northwind's suppliers and the products each supplies, loaded into the procurement plugin
 * through its own routes: the 29 suppliers, and a price list with one entry per product
 * (products.csv's SupplierID). Northwind records no purchase prices or lead times: the unit
 * cost is the product's list price less a 30 % margin (`costShare`), and the lead time the
 * procurement plugin's default — both stated in plugins/README.md.
 */
import { readNorthwind, skuOf, type RequestFn } from './import.js'

export interface SupplierImportResult {
  suppliers: number
  prices: number
}

/** "18.4" × 0.7 → "12.88": cents, rounded half-up. */
function share(price: string, costShare: number): string {
  const cents = Math.round(Math.round(Number(price) * 100) * costShare)
  return `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`
}

export async function importNorthwindSuppliers(options: {
  request: RequestFn
  dataDir: string
  costShare?: number
}): Promise<SupplierImportResult> {
  const { suppliers, products } = await readNorthwind(options.dataDir, 0)
  const call = async (path: string, body: unknown) => {
    const r = await options.request('POST', path, body)
    if (r.status !== 200) throw new Error(`POST ${path}: ${r.status} ${JSON.stringify(r.body).slice(0, 2000)}`)
    return r.body as { created: number; updated: number }
  }
  const rows = suppliers.map((s) => ({
    code: s.supplier_id!,
    name: s.company_name!,
    ...(s.contact_name ? { contactName: s.contact_name } : {}),
    ...(s.country ? { country: s.country } : {}),
    ...(s.city ? { city: s.city } : {}),
    ...(s.phone ? { phone: s.phone } : {}),
  }))
  const sup = await call('/v1/x/procurement/suppliers/import', { rows })
  const prices = products.map((p) => ({
    supplier: p.supplier_id!,
    sku: skuOf(p.product_id!),
    cost: share(p.unit_price!, options.costShare ?? 0.7),
  }))
  const pr = await call('/v1/x/procurement/prices/import', { rows: prices })
  return { suppliers: sup.created + sup.updated, prices: pr.created + pr.updated }
}
