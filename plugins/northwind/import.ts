/**
 * Loads the Northwind sample data into one tenant through the ERP plugins' own HTTP routes, so
 * every rule (validation, pricing, approval threshold, stock reservation) applies and every
 * event is emitted. See plugins/README.md for the choices (historical prices, discounts over the
 * approval threshold, opening stock, discontinued products).
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseCsvRecords } from '@trellis/plugin-sdk'

export interface Reply {
  status: number
  body: any
}

/** How the importer talks to the kernel: a method, a path under the API origin and a JSON body. */
export type RequestFn = (method: string, path: string, body?: unknown) => Promise<Reply>

export interface ImportOptions {
  /** API origin, e.g. `http://127.0.0.1:3000` (with `token`), or give `request`. */
  baseUrl?: string
  /** Bearer token of a tenant user holding the plugins' write and approve permissions (a tenant admin does). */
  token?: string
  /** Sends one request (tests pass the kernel's in-process one); overrides `baseUrl`/`token`. */
  request?: RequestFn
  /** Folder with the Northwind CSV files. */
  dataDir: string
  /** Import only the first N orders (by order id); default all 830. */
  orders?: number
  /** Progress lines. */
  log?: (line: string) => void
  /** Called after each order is placed (a progress bar); without it, a line every 100 orders. */
  progress?: (done: number, total: number) => void
}

export interface ImportResult {
  categories: number
  suppliers: number
  products: number
  priceRules: number
  stockRows: number
  customers: number
  orders: number
  shipped: number
  invoiced: number
  confirmedOpen: number
  priceApprovals: number
  stockShort: number
  discontinued: number
  requests: number
  ms: number
}

// ---- CSV ----

/** Records keyed by the header (the SDK's CSV parser). */
export const parseCsv = (text: string): Array<Record<string, string>> => parseCsvRecords(text)

const csvField = (v: string) => (/[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v)
const toCsv = (header: string[], rows: string[][]) =>
  `${[header.join(','), ...rows.map((r) => r.map(csvField).join(','))].join('\n')}\n`

export interface NorthwindData {
  categories: Array<Record<string, string>>
  suppliers: Array<Record<string, string>>
  products: Array<Record<string, string>>
  customers: Array<Record<string, string>>
  orders: Array<Record<string, string>>
  details: Array<Record<string, string>>
}

/** Reads the CSV files; `orders` keeps the first N orders (by id) and their lines. */
export async function readNorthwind(dataDir: string, orders?: number): Promise<NorthwindData> {
  const read = async (f: string) => parseCsv(await readFile(join(dataDir, f), 'utf8'))
  const [categories, suppliers, products, customers, allOrders, allDetails] = await Promise.all(
    ['categories.csv', 'suppliers.csv', 'products.csv', 'customers.csv', 'orders.csv', 'order_details.csv'].map(read),
  )
  const sorted = allOrders!
    .sort((a, b) => Number(a.order_id) - Number(b.order_id))
    .slice(0, orders ?? allOrders!.length)
  const ids = new Set(sorted.map((o) => o.order_id))
  return {
    categories: categories!,
    suppliers: suppliers!,
    products: products!,
    customers: customers!,
    orders: sorted,
    details: allDetails!.filter((d) => ids.has(d.order_id)),
  }
}

export const skuOf = (productId: string) => `NW-${productId}`

// ---- exact decimal arithmetic for the reference totals (10^-6 units) ----

function micros(s: string): bigint {
  const m = /^(-?)(\d*)(?:\.(\d{1,6}))?$/.exec(s.trim())
  if (!m) throw new Error(`not a decimal: ${s}`)
  const v = BigInt(m[2] || '0') * 1_000_000n + BigInt((m[3] ?? '').padEnd(6, '0'))
  return m[1] ? -v : v
}

/** Rounds 10^-6 units half-up to cents: `"1265793.04"`. */
export function centsOf(units: bigint): string {
  const c = (units + 5_000n) / 10_000n
  const s = c.toString().padStart(3, '0')
  return `${s.slice(0, -2)}.${s.slice(-2)}`
}

export interface SalesTotals {
  total: string
  byCustomer: Record<string, string>
  byProduct: Record<string, string>
}

/** Sales computed straight from the CSV lines: Σ unit_price × quantity × (1 − discount), exact, then rounded to the cent. */
export function csvTotals(data: NorthwindData): SalesTotals {
  const customerOf = new Map(data.orders.map((o) => [o.order_id, o.customer_id!]))
  let total = 0n
  const byCustomer = new Map<string, bigint>()
  const byProduct = new Map<string, bigint>()
  for (const d of data.details) {
    // unit_price (10^-6) × quantity × (1 − discount) (10^-6) → 10^-12, exact; back to 10^-6 exactly (2 + 2 decimals at most).
    const net = (micros(d.unit_price!) * BigInt(d.quantity!) * (1_000_000n - micros(d.discount!))) / 1_000_000n
    total += net
    const c = customerOf.get(d.order_id!)!
    byCustomer.set(c, (byCustomer.get(c) ?? 0n) + net)
    const p = skuOf(d.product_id!)
    byProduct.set(p, (byProduct.get(p) ?? 0n) + net)
  }
  const cents = (m: Map<string, bigint>) =>
    Object.fromEntries([...m].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, centsOf(v)]))
  return { total: centsOf(total), byCustomer: cents(byCustomer), byProduct: cents(byProduct) }
}

/** The same totals, as the orders plugin reports them (`GET /v1/x/orders/reports/sales`). */
export async function pluginTotals(request: RequestFn): Promise<SalesTotals & { orders: number; lines: number }> {
  const get = async (groupBy: string) => {
    const r = await request('GET', `/v1/x/orders/reports/sales?groupBy=${groupBy}`)
    if (r.status !== 200) throw new Error(`sales report ${groupBy}: ${r.status} ${JSON.stringify(r.body)}`)
    return r.body as { orders: number; lines: number; total: string; groups?: Array<{ key: string; total: string }> }
  }
  const [all, byCustomer, byProduct] = [await get('none'), await get('customer'), await get('product')]
  const map = (g?: Array<{ key: string; total: string }>) =>
    Object.fromEntries((g ?? []).map((x) => [x.key, x.total]).sort(([a], [b]) => a!.localeCompare(b!)))
  return {
    total: all.total,
    orders: all.orders,
    lines: all.lines,
    byCustomer: map(byCustomer.groups),
    byProduct: map(byProduct.groups),
  }
}

// ---- the import ----

function httpRequest(baseUrl: string, token: string): RequestFn {
  const origin = baseUrl.replace(/\/+$/, '')
  return async (method, path, body) => {
    const res = await fetch(origin + path, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    const text = await res.text()
    let parsed: unknown = text
    try {
      parsed = text ? JSON.parse(text) : null
    } catch {
      /* not JSON */
    }
    return { status: res.status, body: parsed }
  }
}

const addDays = (date: string, days: number) =>
  new Date(Date.parse(`${date}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10)

/**
 * List price rules reproducing Northwind's price history: the order lines show each product's
 * price changing over time, so each run of one price becomes a list rule valid from its first
 * order date to the day before the next run starts; the products file's price is the current one.
 */
export function priceHistory(data: NorthwindData): Array<Record<string, unknown>> {
  const dateOf = new Map(data.orders.map((o) => [o.order_id, o.order_date!]))
  const byProduct = new Map<string, Array<{ date: string; price: string }>>()
  for (const d of data.details) {
    const list = byProduct.get(d.product_id!) ?? []
    list.push({ date: dateOf.get(d.order_id!)!, price: d.unit_price! })
    byProduct.set(d.product_id!, list)
  }
  const same = (a: string, b: string) => micros(a) === micros(b)
  const rules: Array<Record<string, unknown>> = []
  for (const p of data.products) {
    const sku = skuOf(p.product_id!)
    const hist = (byProduct.get(p.product_id!) ?? []).sort((a, b) => a.date.localeCompare(b.date))
    const runs: Array<{ from: string; price: string }> = []
    for (const h of hist)
      if (!runs.length || !same(runs[runs.length - 1]!.price, h.price)) runs.push({ from: h.date, price: h.price })
    const current = p.unit_price!
    if (!runs.length) {
      rules.push({ kind: 'list', sku, price: current })
      continue
    }
    const last = hist[hist.length - 1]!
    if (!same(runs[runs.length - 1]!.price, current)) runs.push({ from: addDays(last.date, 1), price: current })
    runs.forEach((r, i) => {
      const next = runs[i + 1]
      rules.push({
        kind: 'list',
        sku,
        price: r.price,
        ...(i > 0 ? { validFrom: r.from } : {}),
        ...(next ? { validTo: addDays(next.from, -1) } : {}),
      })
    })
  }
  return rules
}

export async function importNorthwind(options: ImportOptions): Promise<ImportResult> {
  const started = Date.now()
  const log = options.log ?? (() => {})
  const send =
    options.request ?? (options.baseUrl && options.token ? httpRequest(options.baseUrl, options.token) : undefined)
  if (!send) throw new Error('importNorthwind needs request, or baseUrl and token')
  let requests = 0
  const call = async (method: string, path: string, body?: unknown, ok: number[] = [200, 201]) => {
    requests++
    let r = await send(method, path, body)
    // A tenant's rate limit is a reason to wait, not to give up (the problem says how long).
    for (let tries = 0; r.status === 429 && tries < 20; tries++) {
      const seconds = Number(/retry in (\d+)s/.exec(String(r.body?.detail ?? ''))?.[1] ?? 1)
      log(`rate limited; waiting ${seconds} s`)
      await new Promise((done) => setTimeout(done, Math.max(1, seconds) * 1000))
      r = await send(method, path, body)
    }
    if (!ok.includes(r.status))
      throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body).slice(0, 2000)}`)
    return r.body
  }
  const chunks = <T>(xs: T[], n: number) =>
    Array.from({ length: Math.ceil(xs.length / n) }, (_, i) => xs.slice(i * n, i * n + n))

  const data = await readNorthwind(options.dataDir, options.orders)
  const result: ImportResult = {
    categories: 0,
    suppliers: 0,
    products: 0,
    priceRules: 0,
    stockRows: 0,
    customers: 0,
    orders: 0,
    shipped: 0,
    invoiced: 0,
    confirmedOpen: 0,
    priceApprovals: 0,
    stockShort: 0,
    discontinued: 0,
    requests: 0,
    ms: 0,
  }

  // Catalog. Products go in as sold (not discontinued): the history sells them; the
  // discontinuation is applied at the end, as the change it was.
  const cat = toCsv(
    ['code', 'name', 'description'],
    data.categories.map((c) => [c.category_id!, c.category_name!, c.description ?? '']),
  )
  result.categories = (await call('POST', '/v1/x/catalog/import/categories', { csv: cat })).created
  const sup = toCsv(
    ['code', 'name', 'contact_name', 'country', 'city', 'phone'],
    data.suppliers.map((s) => [
      s.supplier_id!,
      s.company_name!,
      s.contact_name ?? '',
      s.country ?? '',
      s.city ?? '',
      s.phone ?? '',
    ]),
  )
  result.suppliers = (await call('POST', '/v1/x/catalog/import/suppliers', { csv: sup })).created
  const productRows = (discontinued: boolean) =>
    data.products.map((p) => [
      skuOf(p.product_id!),
      p.product_name!,
      p.category_id!,
      p.supplier_id!,
      p.quantity_per_unit ?? '',
      discontinued ? p.discontinued! : '0',
    ])
  const productHeader = ['sku', 'name', 'category', 'supplier', 'quantity_per_unit', 'discontinued']
  // Products as one import job (any number of rows), followed to its end.
  const importJob = async (csv: string, upsert: boolean) => {
    const started = await call('POST', '/v1/x/catalog/imports/products', { csv, upsert }, [202])
    for (;;) {
      const job = await call('GET', `/v1/x/catalog/imports/${started.id}`)
      if (job.status === 'done') return job as { created: number; updated: number; unchanged: number }
      if (job.status === 'failed') throw new Error(`the product import ${started.id} failed: ${job.error}`)
      await new Promise((done) => setTimeout(done, 100))
    }
  }
  result.products = (await importJob(toCsv(productHeader, productRows(false)), false)).created
  log(`catalog: ${result.categories} categories, ${result.suppliers} suppliers, ${result.products} products`)

  // Pricing: list prices with their history.
  for (const part of chunks(priceHistory(data), 150))
    result.priceRules += (await call('POST', '/v1/x/pricing/prices/import', { rules: part })).created
  log(`pricing: ${result.priceRules} list price rules`)

  // Inventory: Northwind's units_in_stock is what is left free today, so the opening stock is that
  // plus everything the imported orders take (shipped ones issue it, open ones keep it reserved).
  const ordered = new Map<string, number>()
  for (const d of data.details) ordered.set(d.product_id!, (ordered.get(d.product_id!) ?? 0) + Number(d.quantity))
  const stockRows = data.products.map((p) => ({
    sku: skuOf(p.product_id!),
    warehouse: 'MAIN',
    onHand: Number(p.units_in_stock) + (ordered.get(p.product_id!) ?? 0),
    reorderPoint: Number(p.reorder_level),
  }))
  for (const part of chunks(stockRows, 90))
    result.stockRows += (await call('POST', '/v1/x/inventory/stock/import', { rows: part })).rows
  log(`inventory: ${result.stockRows} stock rows`)

  // Customers.
  const customers = data.customers.map((c) => ({
    code: c.customer_id!,
    name: c.company_name!,
    ...(c.contact_name ? { contactName: c.contact_name } : {}),
    ...(c.country ? { country: c.country } : {}),
    ...(c.city ? { city: c.city } : {}),
  }))
  for (const part of chunks(customers, 150))
    result.customers += (await call('POST', '/v1/x/orders/customers/import', { rows: part })).created
  log(`orders: ${result.customers} customers`)

  // Orders, in order-id (= date) order, taken to their historical state. Their discounts were
  // approved at the time: while history is replayed, the orders plugin's pricing-exception
  // workflow is paused (its setting), and each exception is resolved on the record instead.
  const installations = (await call('GET', '/v1/installations?limit=200')) as {
    items: Array<{ id: string; plugin: string; settings: Record<string, unknown> }>
  }
  const ordersInstallation = installations.items.find((i) => i.plugin === '@trellis/orders')
  const workflowSetting = ordersInstallation?.settings.priceApprovalWorkflow
  if (ordersInstallation)
    await call('PATCH', `/v1/installations/${ordersInstallation.id}`, { settings: { priceApprovalWorkflow: false } })
  const linesOf = new Map<string, Array<Record<string, string>>>()
  for (const d of data.details) linesOf.set(d.order_id!, [...(linesOf.get(d.order_id!) ?? []), d])
  for (const o of data.orders) {
    const n = o.order_id!
    const lines = (linesOf.get(n) ?? []).map((d) => ({
      sku: skuOf(d.product_id!),
      quantity: Number(d.quantity),
      ...(Number(d.discount) > 0 ? { discount: d.discount } : {}),
    }))
    const placed = await call(
      'POST',
      '/v1/x/orders/orders',
      {
        number: n,
        customer: o.customer_id,
        ...(o.employee_id ? { employeeId: o.employee_id } : {}),
        orderDate: o.order_date,
        ...(o.required_date ? { requiredDate: o.required_date } : {}),
        lines,
      },
      [201],
    )
    result.orders++
    options.progress?.(result.orders, data.orders.length)
    const open = (placed.exceptions as Array<{ kind: string; status: string }>).filter((e) => e.status === 'open')
    if (open.some((e) => e.kind === 'price_approval')) {
      // The recorded discount was granted at the time: approved as such, on the record.
      await call('POST', `/v1/x/orders/orders/${n}/exceptions/price_approval/resolve`, {
        decision: 'approve',
        reason: 'historical Northwind order: discount as recorded in order_details',
      })
      result.priceApprovals++
    }
    if (open.some((e) => e.kind === 'stock_short')) {
      result.stockShort++
      continue
    }
    if (open.some((e) => e.kind === 'credit_hold')) continue
    await call('POST', `/v1/x/orders/orders/${n}/confirm`)
    if (o.shipped_date) {
      await call('POST', `/v1/x/orders/orders/${n}/ship`, { date: o.shipped_date })
      result.shipped++
      await call('POST', `/v1/x/orders/orders/${n}/invoice`, { date: o.shipped_date, invoiceNumber: `NW-INV-${n}` })
      result.invoiced++
    } else result.confirmedOpen++
    if (!options.progress && result.orders % 100 === 0)
      log(`orders: ${result.orders}/${data.orders.length} (${Math.round((Date.now() - started) / 1000)} s)`)
  }
  log(
    `orders: ${result.orders} placed, ${result.shipped} shipped and invoiced, ${result.confirmedOpen} open, ${result.priceApprovals} price approvals, ${result.stockShort} short`,
  )
  if (ordersInstallation)
    await call('PATCH', `/v1/installations/${ordersInstallation.id}`, {
      settings: { priceApprovalWorkflow: workflowSetting ?? null },
    })

  // Discontinued products, as the change it is (catalog.product.updated events).
  result.discontinued = (await importJob(toCsv(productHeader, productRows(true)), true)).updated
  log(`catalog: ${result.discontinued} products discontinued`)
  result.requests = requests
  result.ms = Date.now() - started
  return result
}
