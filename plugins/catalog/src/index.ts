/**
 * The catalog plugin: categories, suppliers and products, imported from CSV (all or nothing,
 * with a per-row report) or kept one at a time; other plugins look products up by SKU.
 */
import { collection, definePlugin, problem, type RouteRequest } from '@trellis/plugin-sdk'
import manifest from '../trellis.plugin.json' with { type: 'json' }
import { CAT } from './errors.js'
import type { Category, Ctx, Product, Supplier } from './types.js'
import { bySku } from './store.js'
import { importCsv } from './import.js'
import { createProduct, createSimple, getProducts, listAll, listProducts, patchProduct } from './products.js'

export * from './types.js'
export { parseCsv, packOf } from './csv.js'
export { MAX_IMPORT_ROWS, type RowError } from './import.js'
export { CAT } from './errors.js'

export const catalogPlugin = definePlugin({
  manifest,
  collections: {
    categories: collection<Category>(),
    suppliers: collection<Supplier>(),
    products: collection<Product>(),
  },
  routes: {
    'GET /categories': listAll('categories'),
    'POST /categories': createSimple('categories'),
    'GET /suppliers': listAll('suppliers'),
    'POST /suppliers': createSimple('suppliers'),
    'GET /products': listProducts,
    'POST /products': createProduct,
    'GET /products/:sku': async (req: RouteRequest<null, { sku: string }>, ctx: Ctx) => {
      const p = await bySku(ctx, req.params.sku)
      return p ? { status: 200, body: p } : problem(CAT.PRODUCT_NOT_FOUND, `no product ${req.params.sku}`)
    },
    'PATCH /products/:sku': patchProduct,
    'POST /import/:kind': importCsv,
  },
  actions: {
    getProduct: async (input: { sku: string }, ctx: Ctx) => bySku(ctx, input.sku),
    getProducts,
  },
})
