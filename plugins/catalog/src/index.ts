import { collection, definePlugin, problem } from '@trellis/plugin-sdk'
import type { PluginContext, RouteRequest, RouteResponse } from '@trellis/plugin-sdk'
import manifest from '../trellis.plugin.json' with { type: 'json' }
import { CAT } from './errors.js'

export interface Category {
  code: string
  name: string
  description?: string
}

export interface Supplier {
  code: string
  name: string
  contactName?: string
  country?: string
  city?: string
  phone?: string
}

export interface Product {
  sku: string
  name: string
  /** Category code. */
  category: string
  /** Supplier code. */
  supplier: string
  /** Free text as the supplier sells it, e.g. `10 boxes x 30 bags`. */
  quantityPerUnit?: string
  /** The selling unit, e.g. `boxes`. */
  unit: string
  /** How many units one pack holds. */
  packSize: number
  discontinued: boolean
}

type Ctx = PluginContext<{ categories: Category; suppliers: Supplier; products: Product }>

/** One problem of a CSV import, by 1-based data row (the header is row 0). */
export interface RowError {
  row: number
  field?: string
  code: string
  message: string
}

// One invocation may make at most 200 host calls (the kernel's sandbox limit): a product row
// costs an insert or update plus an event, and three lookups come first.
export const MAX_IMPORT_ROWS = 95

/** RFC 4180 CSV: quoted fields, doubled quotes, CRLF or LF. Returns rows of fields. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = []
  let row: string[] = []
  let field = ''
  let quoted = false
  let i = 0
  const s = text.replace(/^\uFEFF/, '')
  while (i < s.length) {
    const c = s[i]!
    if (quoted) {
      if (c === '"') {
        if (s[i + 1] === '"') {
          field += '"'
          i += 2
          continue
        }
        quoted = false
        i++
        continue
      }
      field += c
      i++
      continue
    }
    if (c === '"' && field === '') {
      quoted = true
      i++
    } else if (c === ',') {
      row.push(field)
      field = ''
      i++
    } else if (c === '\n' || c === '\r') {
      row.push(field)
      rows.push(row)
      row = []
      field = ''
      i += c === '\r' && s[i + 1] === '\n' ? 2 : 1
    } else {
      field += c
      i++
    }
  }
  if (field !== '' || row.length) {
    row.push(field)
    rows.push(row)
  }
  return rows.filter((r) => !(r.length === 1 && r[0] === ''))
}

/** `10 boxes x 30 bags` → pack of 10, unit `boxes`; anything else is a pack of 1. */
export function packOf(quantityPerUnit: string | undefined): { packSize: number; unit: string } {
  const m = /^\s*(\d+)\s*(?:-\s*)?(.*)$/.exec(quantityPerUnit ?? '')
  if (!m || Number(m[1]) < 1) return { packSize: 1, unit: quantityPerUnit?.trim() || 'each' }
  const unit = (m[2] ?? '').split(/\s+x\s+/)[0]!.trim()
  return { packSize: Number(m[1]), unit: unit || 'each' }
}

const COLUMNS = {
  categories: { required: ['code', 'name'], optional: ['description'] },
  suppliers: { required: ['code', 'name'], optional: ['contact_name', 'country', 'city', 'phone'] },
  products: {
    required: ['sku', 'name', 'category', 'supplier'],
    optional: ['quantity_per_unit', 'unit', 'pack_size', 'discontinued'],
  },
} as const
type Kind = keyof typeof COLUMNS

const BOOL: Record<string, boolean> = {
  '1': true,
  '0': false,
  true: true,
  false: false,
  yes: true,
  no: false,
  y: true,
  n: false,
  '': false,
}

async function findAllBy<T>(
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

/** POST /import/:kind — validates every row, then writes all of them in this one transaction, or nothing. */
async function importCsv(
  req: RouteRequest<{ csv: string; upsert?: boolean }, { kind: Kind }>,
  ctx: Ctx,
): Promise<RouteResponse> {
  const kind = req.params.kind
  const spec = COLUMNS[kind]
  const rows = parseCsv(req.body.csv)
  if (!rows.length) return problem(CAT.CSV_EMPTY, 'the CSV has no header row')
  const header = rows[0]!.map((h) => h.trim().toLowerCase())
  const missingCols = spec.required.filter((c) => !header.includes(c))
  const unknownCols = header.filter(
    (h) => !(spec.required as readonly string[]).includes(h) && !(spec.optional as readonly string[]).includes(h),
  )
  if (missingCols.length || unknownCols.length) {
    return problem(
      CAT.CSV_HEADER,
      `the header must have ${spec.required.join(', ')} (and may have ${spec.optional.join(', ')})`,
      { missingColumns: missingCols, unknownColumns: unknownCols },
    )
  }
  const data = rows.slice(1)
  if (data.length > MAX_IMPORT_ROWS)
    return problem(
      CAT.CSV_TOO_MANY_ROWS,
      `at most ${MAX_IMPORT_ROWS} rows per import (split the file); got ${data.length}`,
      { maxRows: MAX_IMPORT_ROWS },
    )
  const errors: RowError[] = []
  const records: Array<Record<string, unknown>> = []
  const seen = new Map<string, number>()
  data.forEach((cells, idx) => {
    const row = idx + 1
    if (cells.length !== header.length) {
      errors.push({ row, code: 'column_count', message: `has ${cells.length} fields, the header has ${header.length}` })
      return
    }
    const get = (c: string) => {
      const i = header.indexOf(c)
      return i < 0 ? undefined : cells[i]!.trim()
    }
    let ok = true
    for (const c of spec.required) {
      if (!get(c)) {
        errors.push({ row, field: c, code: 'required', message: `${c} is empty` })
        ok = false
      }
    }
    const key = get(spec.required[0])!
    if (key) {
      if (key.length > 64) {
        errors.push({
          row,
          field: spec.required[0],
          code: 'too_long',
          message: `${spec.required[0]} is longer than 64 characters`,
        })
        ok = false
      }
      const dup = seen.get(key)
      if (dup) {
        errors.push({ row, field: spec.required[0], code: 'duplicate', message: `${key} is also on row ${dup}` })
        ok = false
      } else seen.set(key, row)
    }
    if (!ok) return
    if (kind === 'categories')
      records.push({
        code: key,
        name: get('name')!,
        ...(get('description') ? { description: get('description') } : {}),
      })
    else if (kind === 'suppliers') {
      const rec: Record<string, unknown> = { code: key, name: get('name')! }
      for (const [col, f] of [
        ['contact_name', 'contactName'],
        ['country', 'country'],
        ['city', 'city'],
        ['phone', 'phone'],
      ] as const)
        if (get(col)) rec[f] = get(col)
      records.push(rec)
    } else {
      const qpu = get('quantity_per_unit') || undefined
      const derived = packOf(qpu)
      const packRaw = get('pack_size')
      let packSize = derived.packSize
      if (packRaw) {
        if (!/^\d{1,6}$/.test(packRaw) || Number(packRaw) < 1) {
          errors.push({
            row,
            field: 'pack_size',
            code: 'invalid',
            message: `pack_size "${packRaw}" is not a whole number of at least 1`,
          })
          return
        }
        packSize = Number(packRaw)
      }
      const disc = (get('discontinued') ?? '').toLowerCase()
      if (!(disc in BOOL)) {
        errors.push({
          row,
          field: 'discontinued',
          code: 'invalid',
          message: `discontinued "${disc}" is not 0/1/true/false`,
        })
        return
      }
      records.push({
        sku: key,
        name: get('name')!,
        category: get('category')!,
        supplier: get('supplier')!,
        ...(qpu ? { quantityPerUnit: qpu } : {}),
        unit: get('unit') || derived.unit,
        packSize,
        discontinued: BOOL[disc]!,
      })
    }
  })

  const keyField = kind === 'products' ? 'sku' : 'code'
  const existing = new Map(
    (
      await findAllBy<Record<string, unknown>>(
        ctx,
        kind,
        keyField,
        records.map((r) => r[keyField] as string),
      )
    ).map((r) => [r[keyField] as string, r]),
  )
  if (kind === 'products') {
    // A product's category and supplier must exist, so the catalog never points nowhere.
    const cats = new Set(
      (
        await findAllBy<Category>(ctx, 'categories', 'code', [...new Set(records.map((r) => r.category as string))])
      ).map((c) => c.code),
    )
    const sups = new Set(
      (await findAllBy<Supplier>(ctx, 'suppliers', 'code', [...new Set(records.map((r) => r.supplier as string))])).map(
        (s) => s.code,
      ),
    )
    for (const r of records) {
      const row = seen.get(r.sku as string)!
      if (!cats.has(r.category as string))
        errors.push({
          row,
          field: 'category',
          code: 'unknown_category',
          message: `category ${r.category} does not exist`,
        })
      if (!sups.has(r.supplier as string))
        errors.push({
          row,
          field: 'supplier',
          code: 'unknown_supplier',
          message: `supplier ${r.supplier} does not exist`,
        })
    }
  }
  if (!req.body.upsert) {
    for (const r of records)
      if (existing.has(r[keyField] as string))
        errors.push({
          row: seen.get(r[keyField] as string)!,
          field: keyField,
          code: 'exists',
          message: `${r[keyField]} exists already (send upsert: true to update)`,
        })
  }
  if (errors.length) {
    errors.sort((a, b) => a.row - b.row)
    return problem(
      CAT.CSV_ROWS,
      `${new Set(errors.map((e) => e.row)).size} of ${data.length} rows are invalid; nothing was imported`,
      { rows: data.length, errors },
    )
  }

  let created = 0
  let updated = 0
  let unchanged = 0
  for (const r of records) {
    const key = r[keyField] as string
    const old = existing.get(key) as (Record<string, unknown> & { id: string; version: number }) | undefined
    if (!old) {
      const rec = await (ctx.data[kind] as any).insert(r)
      created++
      if (kind === 'products') await ctx.events.emit('catalog.product.created', productEvent(rec), { subject: rec.sku })
      continue
    }
    const changes = Object.keys(r).filter((f) => JSON.stringify(r[f]) !== JSON.stringify(old[f]))
    if (!changes.length) {
      unchanged++
      continue
    }
    const rec = await (ctx.data[kind] as any).update(old.id, r, old.version)
    updated++
    if (kind === 'products')
      await ctx.events.emit(
        'catalog.product.updated',
        { sku: rec.sku, productId: rec.id, changes, discontinued: rec.discontinued },
        { subject: rec.sku },
      )
  }
  return { status: 200, body: { kind, rows: data.length, created, updated, unchanged } }
}

const productEvent = (p: Product & { id: string }) => ({
  sku: p.sku,
  productId: p.id,
  name: p.name,
  category: p.category,
  supplier: p.supplier,
  discontinued: p.discontinued,
})

async function bySku(ctx: Ctx, sku: string) {
  return (await ctx.data.products.find({ where: { sku }, limit: 1 })).items[0] ?? null
}

async function createProduct(
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

async function patchProduct(req: RouteRequest<Partial<Product>, { sku: string }>, ctx: Ctx): Promise<RouteResponse> {
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

async function listProducts(
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

function createSimple(coll: 'categories' | 'suppliers') {
  return async (req: RouteRequest<Category | Supplier>, ctx: Ctx): Promise<RouteResponse> => {
    if ((await (ctx.data[coll] as any).find({ where: { code: req.body.code }, limit: 1 })).items.length)
      return problem(CAT.CODE_EXISTS, `${req.body.code} exists already`)
    return { status: 201, body: await (ctx.data[coll] as any).insert(req.body) }
  }
}

function listAll(coll: 'categories' | 'suppliers') {
  return async (_req: RouteRequest, ctx: Ctx): Promise<RouteResponse> => ({
    status: 200,
    body: {
      items: (await (ctx.data[coll] as any).find({ limit: 1000, sort: [{ field: 'code', direction: 'asc' }] })).items,
    },
  })
}

async function getProducts(input: { skus: string[] }, ctx: Ctx) {
  const skus = [...new Set(input.skus)]
  const products = await findAllBy<Product>(ctx, 'products', 'sku', skus)
  const found = new Set(products.map((p) => p.sku))
  return { products, missing: skus.filter((s) => !found.has(s)) }
}

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
