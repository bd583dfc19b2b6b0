// Lookups the catalog's routes, imports and actions share.
import type { Ctx, Product } from './types.js'

export async function findAllBy<T>(
  ctx: Ctx,
  coll: 'categories' | 'suppliers' | 'products',
  field: string,
  values: string[],
): Promise<Array<T & { id: string; version: number }>> {
  if (!values.length) return []
  const out: Array<T & { id: string; version: number }> = []
  for (let i = 0; i < values.length; i += 1000) {
    const page = await (ctx.data[coll] as any).find({
      where: { [field]: { in: values.slice(i, i + 1000) } },
      limit: 1000,
    })
    out.push(...page.items)
  }
  return out
}

export const productEvent = (p: Product & { id: string }) => ({
  sku: p.sku,
  productId: p.id,
  name: p.name,
  category: p.category,
  supplier: p.supplier,
  discontinued: p.discontinued,
})

export async function bySku(ctx: Ctx, sku: string) {
  return (await ctx.data.products.find({ where: { sku }, limit: 1 })).items[0] ?? null
}
