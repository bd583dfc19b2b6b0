// Products one at a time, categories and suppliers, and the actions other plugins call.
import { problem, type RouteRequest, type RouteResponse } from '@trellis/plugin-sdk'
import { CAT } from './errors.js'
import { packOf } from './csv.js'
import type { Category, Ctx, Product, Supplier } from './types.js'
import type { RowError } from './import.js'
import { bySku, findAllBy, productEvent } from './store.js'

export async function createProduct(
  req: RouteRequest<Omit<Product, 'unit' | 'packSize' | 'discontinued'> & Partial<Product>>,
  ctx: Ctx,
): Promise<RouteResponse> {
  const b = req.body
  const errors: RowError[] = []
  if (!(await ctx.data.categories.find({ where: { code: b.category }, limit: 1 })).items.length)
    errors.push({
      row: 1,
      field: 'category',
      code: 'unknown_category',
      message: `category ${b.category} does not exist`,
    })
  if (!(await ctx.data.suppliers.find({ where: { code: b.supplier }, limit: 1 })).items.length)
    errors.push({
      row: 1,
      field: 'supplier',
      code: 'unknown_supplier',
      message: `supplier ${b.supplier} does not exist`,
    })
  if (errors.length) return problem(CAT.INVALID_PRODUCT, errors.map((e) => e.message).join('; '), { errors })
  if (await bySku(ctx, b.sku)) return problem(CAT.SKU_EXISTS, `product ${b.sku} exists already`)
  const derived = packOf(b.quantityPerUnit)
  const rec = await ctx.data.products.insert({
    sku: b.sku,
    name: b.name,
    category: b.category,
    supplier: b.supplier,
    ...(b.quantityPerUnit ? { quantityPerUnit: b.quantityPerUnit } : {}),
    unit: b.unit ?? derived.unit,
    packSize: b.packSize ?? derived.packSize,
    discontinued: b.discontinued ?? false,
  })
  await ctx.events.emit('catalog.product.created', productEvent(rec), { subject: rec.sku })
  return { status: 201, body: rec, headers: { location: `/products/${encodeURIComponent(rec.sku)}` } }
}

export async function patchProduct(
  req: RouteRequest<Partial<Product>, { sku: string }>,
  ctx: Ctx,
): Promise<RouteResponse> {
  const old = await bySku(ctx, req.params.sku)
  if (!old) return problem(CAT.PRODUCT_NOT_FOUND, `no product ${req.params.sku}`)
  const patch = req.body
  if (patch.category && !(await ctx.data.categories.find({ where: { code: patch.category }, limit: 1 })).items.length)
    return problem(CAT.INVALID_PRODUCT, `category ${patch.category} does not exist`)
  if (patch.supplier && !(await ctx.data.suppliers.find({ where: { code: patch.supplier }, limit: 1 })).items.length)
    return problem(CAT.INVALID_PRODUCT, `supplier ${patch.supplier} does not exist`)
  const changes = Object.keys(patch).filter(
    (f) =>
      JSON.stringify((patch as Record<string, unknown>)[f]) !==
      JSON.stringify((old as unknown as Record<string, unknown>)[f]),
  )
  if (!changes.length) return { status: 200, body: old }
  const rec = await ctx.data.products.update(old.id, patch, old.version)
  await ctx.events.emit(
    'catalog.product.updated',
    { sku: rec.sku, productId: rec.id, changes, discontinued: rec.discontinued },
    { subject: rec.sku },
  )
  return { status: 200, body: rec }
}

export async function listProducts(
  req: RouteRequest<null, Record<string, string>, { category?: string; limit?: string; cursor?: string }>,
  ctx: Ctx,
): Promise<RouteResponse> {
  const limit = Math.min(1000, Math.max(1, Number(req.query.limit ?? 100)))
  const page = await ctx.data.products.find({
    ...(req.query.category ? { where: { category: req.query.category } } : {}),
    limit,
    ...(req.query.cursor ? { cursor: req.query.cursor } : {}),
  })
  return { status: 200, body: page }
}

export function createSimple(coll: 'categories' | 'suppliers') {
  return async (req: RouteRequest<Category | Supplier>, ctx: Ctx): Promise<RouteResponse> => {
    if ((await (ctx.data[coll] as any).find({ where: { code: req.body.code }, limit: 1 })).items.length)
      return problem(CAT.CODE_EXISTS, `${req.body.code} exists already`)
    return { status: 201, body: await (ctx.data[coll] as any).insert(req.body) }
  }
}

export function listAll(coll: 'categories' | 'suppliers') {
  return async (_req: RouteRequest, ctx: Ctx): Promise<RouteResponse> => ({
    status: 200,
    body: {
      items: (await (ctx.data[coll] as any).find({ limit: 1000, sort: [{ field: 'code', direction: 'asc' }] })).items,
    },
  })
}

export async function getProducts(input: { skus: string[] }, ctx: Ctx) {
  const skus = [...new Set(input.skus)]
  const products = await findAllBy<Product>(ctx, 'products', 'sku', skus)
  const found = new Set(products.map((p) => p.sku))
  return { products, missing: skus.filter((s) => !found.has(s)) }
}
