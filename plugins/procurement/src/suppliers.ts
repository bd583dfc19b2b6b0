// Suppliers and their price lists: imported in batches (all rows or none), read back.
import { problem, rowsProblem, type RouteRequest, type RouteResponse } from '@trellis/plugin-sdk'
import { PUR } from './errors.js'
import type { Ctx, Stored, Supplier, SupplierPrice } from './types.js'
import { micros } from './money.js'
import { pricesOf, supplierOf } from './store.js'

type RowError = { row: number; field: string; code: string; message: string }

async function importSuppliers(
  req: RouteRequest<{ rows: Array<Omit<Supplier, 'leadTimeDays'> & { leadTimeDays?: number }> }>,
  ctx: Ctx,
): Promise<RouteResponse> {
  const seen = new Map<string, number>()
  const errors: RowError[] = []
  req.body.rows.forEach((r, i) => {
    if (seen.has(r.code))
      errors.push({
        row: i + 1,
        field: 'code',
        code: 'duplicate',
        message: `${r.code} is also on row ${seen.get(r.code)}`,
      })
    seen.set(r.code, i + 1)
  })
  if (errors.length) return rowsProblem(PUR.INVALID_ROWS, errors, req.body.rows.length)
  const existing = await ctx.data.suppliers.find({ where: { code: { in: [...seen.keys()] } }, limit: 1000 })
  const byCode = new Map((existing.items as Array<Stored<Supplier>>).map((s) => [s.code, s]))
  let created = 0
  let updated = 0
  for (const r of req.body.rows) {
    const s = byCode.get(r.code)
    if (s) {
      await ctx.data.suppliers.update(s.id, { ...r, leadTimeDays: r.leadTimeDays ?? s.leadTimeDays }, s.version)
      updated++
    } else {
      await ctx.data.suppliers.insert({ ...r, leadTimeDays: r.leadTimeDays ?? 7 })
      created++
    }
  }
  return { status: 200, body: { rows: req.body.rows.length, created, updated } }
}

async function importPrices(req: RouteRequest<{ rows: SupplierPrice[] }>, ctx: Ctx): Promise<RouteResponse> {
  const rows = req.body.rows
  const errors: RowError[] = []
  const suppliers = new Set(
    (
      (
        await ctx.data.suppliers.find({
          where: { code: { in: [...new Set(rows.map((r) => r.supplier))] } },
          limit: 1000,
        })
      ).items as Array<Stored<Supplier>>
    ).map((s) => s.code),
  )
  const { missing } = await ctx.plugins.call<{ missing: string[] }>('@trellis/catalog', 'getProducts', {
    skus: [...new Set(rows.map((r) => r.sku))],
  })
  const unknown = new Set(missing)
  const seen = new Map<string, number>()
  rows.forEach((r, i) => {
    const row = i + 1
    if (!suppliers.has(r.supplier))
      errors.push({ row, field: 'supplier', code: 'unknown_supplier', message: `no supplier ${r.supplier}` })
    if (unknown.has(r.sku)) errors.push({ row, field: 'sku', code: 'unknown_product', message: `no product ${r.sku}` })
    if (micros(r.cost) === null)
      errors.push({ row, field: 'cost', code: 'invalid', message: `${r.cost} is not an amount` })
    const key = `${r.supplier}\u0000${r.sku}`
    if (seen.has(key))
      errors.push({
        row,
        field: 'sku',
        code: 'duplicate',
        message: `${r.supplier}/${r.sku} is also on row ${seen.get(key)}`,
      })
    seen.set(key, row)
  })
  if (errors.length) return rowsProblem(PUR.INVALID_ROWS, errors, rows.length)
  const existing = await pricesOf(ctx, { sku: { in: [...new Set(rows.map((r) => r.sku))] } })
  const byKey = new Map(existing.map((p) => [`${p.supplier}\u0000${p.sku}`, p]))
  let created = 0
  let updated = 0
  for (const r of rows) {
    const p = byKey.get(`${r.supplier}\u0000${r.sku}`)
    if (p) {
      await ctx.data.prices.update(p.id, r, p.version)
      updated++
    } else {
      await ctx.data.prices.insert(r)
      created++
    }
  }
  return { status: 200, body: { rows: rows.length, created, updated } }
}

export const supplierRoutes = {
  'GET /suppliers': async (req: RouteRequest<null, Record<string, string>, { cursor?: string }>, ctx: Ctx) => ({
    status: 200,
    body: await ctx.data.suppliers.find({
      sort: [{ field: 'code', direction: 'asc' }],
      limit: 200,
      ...(req.query.cursor ? { cursor: req.query.cursor } : {}),
    }),
  }),
  'GET /suppliers/:code': async (req: RouteRequest<null, { code: string }>, ctx: Ctx) => {
    const s = await supplierOf(ctx, req.params.code)
    if (!s) return problem(PUR.SUPPLIER_NOT_FOUND, `no supplier ${req.params.code}`)
    return { status: 200, body: { ...s, prices: await pricesOf(ctx, { supplier: s.code }) } }
  },
  'POST /suppliers/import': importSuppliers,
  'POST /prices/import': importPrices,
}
