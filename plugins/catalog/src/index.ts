/**
 * The catalog plugin: categories, suppliers and products, imported from CSV (small files all or
 * nothing in the request, large ones as a job with progress; both with a per-row report) or kept
 * one at a time; other plugins look products up by SKU.
 */
import { collection, definePlugin, defineWorkflow, problem, type RouteRequest } from '@trellis/plugin-sdk'
import manifest from '../trellis.plugin.json' with { type: 'json' }
import { CAT } from './errors.js'
import type { Category, Ctx, Product, Supplier } from './types.js'
import { bySku } from './store.js'
import { importCsv } from './import.js'
import {
  begin,
  getImport,
  importChunk,
  importRows,
  markFailed,
  startImport,
  type ImportChunk,
  type ImportJob,
} from './import-job.js'
import { createProduct, createSimple, getProducts, listAll, listProducts, patchProduct } from './products.js'

export * from './types.js'
export { packOf } from './csv.js'
export { MAX_IMPORT_ROWS, type RowError } from './import.js'
export { CHUNK_ROWS, MAX_JOB_ROWS, type ImportJob } from './import-job.js'
export { CAT } from './errors.js'

export const catalogPlugin = definePlugin({
  manifest,
  collections: {
    categories: collection<Category>(),
    suppliers: collection<Supplier>(),
    products: collection<Product>(),
    imports: collection<ImportJob>(),
    importChunks: collection<ImportChunk>(),
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
    'POST /imports/:kind': startImport,
    'GET /imports/:id': getImport,
    'GET /imports/:id/rows': importRows,
  },
  workflows: { csvImport: defineWorkflow({ steps: { begin, importChunk, markFailed } }) },
  actions: {
    getProduct: async (input: { sku: string }, ctx: Ctx) => bySku(ctx, input.sku),
    getProducts,
  },
})
