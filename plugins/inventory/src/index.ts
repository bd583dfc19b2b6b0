import { collection, definePlugin, problem, rowsProblem } from '@trellis/plugin-sdk'
import type { PluginContext, RouteRequest, RouteResponse } from '@trellis/plugin-sdk'
import manifest from '../trellis.plugin.json' with { type: 'json' }
import { INV } from './errors.js'

export interface Stock {
  sku: string
  warehouse: string
  onHand: number
  reserved: number
  reorderPoint: number
}

export interface Reservation {
  /** The order's number. */
  order: string
  status: 'reserved' | 'released' | 'issued'
  lines: Array<{ sku: string; warehouse: string; quantity: number }>
}

type Ctx = PluginContext<{ stock: Stock; reservations: Reservation }>
type StoredStock = Stock & { id: string; version: number }
type StoredReservation = Reservation & { id: string; version: number }

export const DEFAULT_WAREHOUSE = 'MAIN'

const available = (s: Stock) => s.onHand - s.reserved

async function stockOf(ctx: Ctx, skus: string[]): Promise<StoredStock[]> {
  const out: StoredStock[] = []
  let cursor: string | undefined
  do {
    const page = await ctx.data.stock.find({
      where: { sku: { in: skus } },
      sort: [{ field: 'warehouse', direction: 'asc' }],
      limit: 1000,
      ...(cursor ? { cursor } : {}),
    })
    out.push(...(page.items as StoredStock[]))
    cursor = page.nextCursor ?? undefined
  } while (cursor)
  return out
}

async function reservationOf(ctx: Ctx, order: string): Promise<StoredReservation | null> {
  return (
    ((await ctx.data.reservations.find({ where: { order }, limit: 1 })).items[0] as StoredReservation | undefined) ??
    null
  )
}

/**
 * Writes a stock change computed from the current record and announces a fall to or below the
 * reorder point (only when it crosses it). Concurrent orders for the same SKU race for the same
 * record: on a version conflict the record is read again and the change recomputed (`compute`
 * returns null when it no longer fits: then this answers null).
 */
async function tryWriteStock(
  ctx: Ctx,
  rec: StoredStock,
  compute: (s: StoredStock) => Partial<Stock> | null,
): Promise<StoredStock | null> {
  let cur = rec
  for (let attempt = 0; ; attempt++) {
    const patch = compute(cur)
    if (!patch) return null
    try {
      const after = (await ctx.data.stock.update(cur.id, patch, cur.version)) as StoredStock
      if (available(cur) > cur.reorderPoint && available(after) <= after.reorderPoint) await emitLow(ctx, after)
      return after
    } catch (err) {
      if ((err as { code?: string }).code !== 'KRN_ERR_CONFLICT' || attempt >= 5) throw err
      const fresh = (await ctx.data.stock.get(cur.id)) as StoredStock | null
      if (!fresh) throw err
      cur = fresh
    }
  }
}

async function writeStock(
  ctx: Ctx,
  rec: StoredStock,
  compute: (s: StoredStock) => Partial<Stock> | null,
): Promise<StoredStock> {
  const after = await tryWriteStock(ctx, rec, compute)
  if (!after)
    throw new Error(`stock of ${rec.sku} in ${rec.warehouse} changed meanwhile and cannot take this change; try again`)
  return after
}

/**
 * `items` in the order their stock records are locked: by record id, the same order for every
 * reservation, release, issue, receipt and import whatever the order of their lines, so two of
 * them that share records never each hold one the other waits for. Items without a record yet
 * (a receipt's or an import's new records) come last, in their own order: an insert locks no
 * record another writer waits for.
 */
function lockOrder<T extends { rec: StoredStock | undefined }>(items: readonly T[]): T[] {
  const id = (x: T) => x.rec?.id
  return [...items].sort((a, b) => {
    const ia = id(a)
    const ib = id(b)
    if (ia === undefined || ib === undefined) return ia === ib ? 0 : ia === undefined ? 1 : -1
    return ia < ib ? -1 : ia > ib ? 1 : 0
  })
}

/** A stock record's level: what low-stock events and the `levels` action answer. */
const level = (s: Stock) => ({
  sku: s.sku,
  warehouse: s.warehouse,
  onHand: s.onHand,
  reserved: s.reserved,
  available: available(s),
  reorderPoint: s.reorderPoint,
})

const emitLow = (ctx: Ctx, s: Stock) => ctx.events.emit('inventory.stock.low', level(s), { subject: s.sku })

/** Reserves every line of an order (spread over warehouses in code order), or nothing. */
async function reserve(input: { order: string; lines: Array<{ sku: string; quantity: number }> }, ctx: Ctx) {
  const wanted = new Map<string, number>()
  for (const l of input.lines) wanted.set(l.sku, (wanted.get(l.sku) ?? 0) + l.quantity)
  // Independent reads, asked together: they leave the sandbox in one message.
  const [existing, stock] = await Promise.all([reservationOf(ctx, input.order), stockOf(ctx, [...wanted.keys()])])
  if (existing && existing.status === 'reserved') return { ok: true, reservation: existing }
  if (existing && existing.status === 'issued')
    return { ok: false, short: [], reason: `order ${input.order} was issued already` }
  const short: Array<{ sku: string; requested: number; available: number }> = []
  const plan: Array<{ rec: StoredStock; quantity: number }> = []
  for (const [sku, qty] of wanted) {
    let left = qty
    const recs = stock.filter((s) => s.sku === sku)
    for (const rec of recs) {
      if (left === 0) break
      const take = Math.min(left, Math.max(0, available(rec)))
      if (take > 0) plan.push({ rec, quantity: take })
      left -= take
    }
    if (left > 0)
      short.push({ sku, requested: qty, available: recs.reduce((a, r) => a + Math.max(0, available(r)), 0) })
  }
  if (short.length) return { ok: false, short }
  // The lines' stock records are written one after another, never together: a write that meets
  // a concurrent order's newer version re-reads and writes again, and it must do so before this
  // order locks the next line's record — else two orders can each hold the record the other
  // waits for (a deadlock on every hot product). And in one order for every order (lockOrder):
  // an order of (A, B) and one of (B, A) would otherwise each lock its first and wait for the other's.
  const done: Array<{ rec: StoredStock; quantity: number }> = []
  for (const p of lockOrder(plan)) {
    const after = await tryWriteStock(ctx, p.rec, (s) =>
      available(s) >= p.quantity ? { reserved: s.reserved + p.quantity } : null,
    )
    if (!after) {
      // A concurrent order took this stock first: give back what this one took, and say what is short now.
      await Promise.all(done.map((d) => writeStock(ctx, d.rec, (s) => ({ reserved: s.reserved - d.quantity }))))
      const fresh = await stockOf(ctx, [p.rec.sku])
      return {
        ok: false,
        short: [
          {
            sku: p.rec.sku,
            requested: wanted.get(p.rec.sku)!,
            available: fresh.reduce((a, r) => a + Math.max(0, available(r)), 0),
          },
        ],
      }
    }
    done.push({ rec: after, quantity: p.quantity })
  }
  const lines = plan.map((p) => ({ sku: p.rec.sku, warehouse: p.rec.warehouse, quantity: p.quantity }))
  // The event needs nothing the write answers: both in one message (a failed write fails the call).
  const [reservation] = await Promise.all([
    existing
      ? ctx.data.reservations.update(existing.id, { status: 'reserved', lines }, existing.version)
      : ctx.data.reservations.insert({ order: input.order, status: 'reserved', lines }),
    ctx.events.emit('inventory.stock.reserved', { order: input.order, lines }, { subject: input.order }),
  ])
  return { ok: true, reservation }
}

/** Applies `fn` to each stock record of a reservation's lines and moves the reservation to `status`. */
async function settle(
  ctx: Ctx,
  r: StoredReservation,
  status: 'released' | 'issued',
  fn: (s: StoredStock, qty: number) => Partial<Stock>,
) {
  const stock = await stockOf(ctx, [...new Set(r.lines.map((l) => l.sku))])
  const byKey = new Map(stock.map((s) => [`${s.sku}\u0000${s.warehouse}`, s]))
  const writes = r.lines.flatMap((l) => {
    const rec = byKey.get(`${l.sku}\u0000${l.warehouse}`)
    return rec ? [{ rec, key: `${l.sku}\u0000${l.warehouse}`, quantity: l.quantity }] : []
  })
  for (const w of lockOrder(writes)) {
    // A reservation with two lines on one record writes it twice: from the record as last written.
    const s = byKey.get(w.key)!
    byKey.set(w.key, await writeStock(ctx, s, (fresh) => fn(fresh, w.quantity)))
  }
  await ctx.data.reservations.update(r.id, { status }, r.version)
  await ctx.events.emit(
    status === 'released' ? 'inventory.stock.released' : 'inventory.stock.issued',
    { order: r.order, lines: r.lines },
    { subject: r.order },
  )
}

async function release(input: { order: string }, ctx: Ctx) {
  const r = await reservationOf(ctx, input.order)
  if (r?.status !== 'reserved') return { released: false, status: r?.status ?? 'none' }
  await settle(ctx, r, 'released', (s, q) => ({ reserved: Math.max(0, s.reserved - q) }))
  return { released: true }
}

async function issue(input: { order: string }, ctx: Ctx) {
  const r = await reservationOf(ctx, input.order)
  if (r?.status !== 'reserved') return { issued: false, status: r?.status ?? 'none' }
  await settle(ctx, r, 'issued', (s, q) => ({ onHand: s.onHand - q, reserved: Math.max(0, s.reserved - q) }))
  return { issued: true, lines: r.lines }
}

/**
 * Adds received goods to stock on hand (a supplier's delivery, returned goods put back): every
 * line or none — an unknown SKU answers `received: false` with the unknown ones before anything
 * is written. A SKU without a record in the warehouse gets one (reorder point 0).
 */
async function receive(
  input: { reference: string; reason: string; lines: Array<{ sku: string; warehouse?: string; quantity: number }> },
  ctx: Ctx,
) {
  const skus = [...new Set(input.lines.map((l) => l.sku))]
  const stock = await stockOf(ctx, skus)
  const byKey = new Map(stock.map((s) => [`${s.sku}\u0000${s.warehouse}`, s]))
  const lines = input.lines.map((l) => ({ ...l, warehouse: l.warehouse ?? DEFAULT_WAREHOUSE }))
  const unseen = skus.filter((sku) => !stock.some((s) => s.sku === sku))
  if (unseen.length) {
    const { missing } = await ctx.plugins.call<{ missing: string[] }>('@trellis/catalog', 'getProducts', {
      skus: unseen,
    })
    if (missing.length) return { received: false, unknown: missing }
  }
  const out: Array<{ sku: string; warehouse: string; quantity: number; onHand: number; available: number }> = []
  // Written in lock order, not line order: two receipts of (A, B) and (B, A) must not each hold
  // one record the other waits for. The answer keeps the lines' order; the events follow the writes.
  const writes = lockOrder(lines.map((l, i) => ({ l, i, rec: byKey.get(`${l.sku}\u0000${l.warehouse}`) })))
  for (const { l, i } of writes) {
    const key = `${l.sku}\u0000${l.warehouse}`
    const s = byKey.get(key)
    const after = s
      ? await writeStock(ctx, s, (fresh) => ({ onHand: fresh.onHand + l.quantity }))
      : ((await ctx.data.stock.insert({
          sku: l.sku,
          warehouse: l.warehouse,
          onHand: l.quantity,
          reserved: 0,
          reorderPoint: 0,
        })) as StoredStock)
    byKey.set(key, after)
    out[i] = {
      sku: l.sku,
      warehouse: l.warehouse,
      quantity: l.quantity,
      onHand: after.onHand,
      available: available(after),
    }
    await ctx.events.emit(
      'inventory.stock.adjusted',
      {
        sku: after.sku,
        warehouse: after.warehouse,
        onHand: after.onHand,
        reserved: after.reserved,
        available: available(after),
        reorderPoint: after.reorderPoint,
        delta: l.quantity,
        reason: input.reason,
        reference: input.reference,
      },
      { subject: after.sku },
    )
  }
  return { received: true, lines: out }
}

/** Stock levels of SKUs per warehouse (what a planner compares a forecast with); read only. */
async function levels(input: { skus: string[] }, ctx: Ctx) {
  const recs = await stockOf(ctx, [...new Set(input.skus)])
  return { levels: recs.map(level) }
}

async function importStock(
  req: RouteRequest<{ rows: Array<{ sku: string; warehouse?: string; onHand: number; reorderPoint?: number }> }>,
  ctx: Ctx,
): Promise<RouteResponse> {
  const rows = req.body.rows.map((r) => ({ ...r, warehouse: r.warehouse ?? DEFAULT_WAREHOUSE }))
  const errors: Array<{ row: number; field: string; code: string; message: string }> = []
  const seen = new Map<string, number>()
  rows.forEach((r, i) => {
    const key = `${r.sku}\u0000${r.warehouse}`
    if (seen.has(key))
      errors.push({
        row: i + 1,
        field: 'sku',
        code: 'duplicate',
        message: `${r.sku} in ${r.warehouse} is also on row ${seen.get(key)}`,
      })
    else seen.set(key, i + 1)
  })
  const skus = [...new Set(rows.map((r) => r.sku))]
  const { missing } = await ctx.plugins.call<{ missing: string[] }>('@trellis/catalog', 'getProducts', { skus })
  const unknown = new Set(missing)
  rows.forEach(
    (r, i) =>
      unknown.has(r.sku) &&
      errors.push({ row: i + 1, field: 'sku', code: 'unknown_product', message: `no product ${r.sku}` }),
  )
  const stock = await stockOf(ctx, skus)
  const byKey = new Map(stock.map((s) => [`${s.sku}\u0000${s.warehouse}`, s]))
  rows.forEach((r, i) => {
    const s = byKey.get(`${r.sku}\u0000${r.warehouse}`)
    if (s && r.onHand < s.reserved)
      errors.push({
        row: i + 1,
        field: 'onHand',
        code: 'below_reserved',
        message: `${r.sku} in ${r.warehouse}: ${s.reserved} are reserved, on hand cannot be ${r.onHand}`,
      })
  })
  if (errors.length) return rowsProblem(INV.INVALID_ROWS, errors, rows.length)
  let created = 0
  let updated = 0
  // Existing records in lock order (two imports of (A, B) and (B, A) must not each hold one the
  // other waits for), then the new ones.
  for (const { r, rec: s } of lockOrder(rows.map((r) => ({ r, rec: byKey.get(`${r.sku}\u0000${r.warehouse}`) })))) {
    if (!s) {
      const rec = await ctx.data.stock.insert({
        sku: r.sku,
        warehouse: r.warehouse,
        onHand: r.onHand,
        reserved: 0,
        reorderPoint: r.reorderPoint ?? 0,
      })
      created++
      if (available(rec) <= rec.reorderPoint) await emitLow(ctx, rec)
    } else {
      await writeStock(ctx, s, (fresh) =>
        r.onHand >= fresh.reserved
          ? { onHand: r.onHand, ...(r.reorderPoint !== undefined ? { reorderPoint: r.reorderPoint } : {}) }
          : null,
      )
      updated++
    }
  }
  return { status: 200, body: { rows: rows.length, created, updated } }
}

async function adjust(
  req: RouteRequest<{ sku: string; warehouse?: string; delta: number; reason: string }>,
  ctx: Ctx,
): Promise<RouteResponse> {
  const warehouse = req.body.warehouse ?? DEFAULT_WAREHOUSE
  const s = (await ctx.data.stock.find({ where: { sku: req.body.sku, warehouse }, limit: 1 })).items[0] as
    | StoredStock
    | undefined
  let after: Stock
  if (!s) {
    const { missing } = await ctx.plugins.call<{ missing: string[] }>('@trellis/catalog', 'getProducts', {
      skus: [req.body.sku],
    })
    if (missing.length) return problem(INV.UNKNOWN_PRODUCT, `no product ${req.body.sku}`)
    if (req.body.delta < 0) return problem(INV.INSUFFICIENT_STOCK, `${req.body.sku} has no stock in ${warehouse}`)
    after = await ctx.data.stock.insert({
      sku: req.body.sku,
      warehouse,
      onHand: req.body.delta,
      reserved: 0,
      reorderPoint: 0,
    })
  } else {
    if (s.onHand + req.body.delta < s.reserved)
      return problem(
        INV.INSUFFICIENT_STOCK,
        `${req.body.sku} in ${warehouse}: ${s.onHand} on hand, ${s.reserved} reserved; cannot take ${-req.body.delta}`,
      )
    after = await writeStock(ctx, s, (fresh) =>
      fresh.onHand + req.body.delta >= fresh.reserved ? { onHand: fresh.onHand + req.body.delta } : null,
    )
  }
  await ctx.events.emit(
    'inventory.stock.adjusted',
    {
      sku: after.sku,
      warehouse,
      onHand: after.onHand,
      reserved: after.reserved,
      available: available(after),
      reorderPoint: after.reorderPoint,
      delta: req.body.delta,
      reason: req.body.reason,
    },
    { subject: after.sku },
  )
  return { status: 200, body: after }
}

export const inventoryPlugin = definePlugin({
  manifest,
  collections: { stock: collection<Stock>(), reservations: collection<Reservation>() },
  routes: {
    'GET /stock': async (req: RouteRequest<null, Record<string, string>, Record<string, string>>, ctx: Ctx) => {
      const where: Record<string, string> = {}
      if (req.query.sku) where.sku = req.query.sku
      if (req.query.warehouse) where.warehouse = req.query.warehouse
      return {
        status: 200,
        body: await ctx.data.stock.find({
          where,
          limit: 1000,
          ...(req.query.cursor ? { cursor: req.query.cursor } : {}),
        }),
      }
    },
    'GET /stock/:sku': async (req: RouteRequest<null, { sku: string }>, ctx: Ctx) => {
      const recs = await stockOf(ctx, [req.params.sku])
      if (!recs.length) return problem(INV.NO_STOCK_RECORD, `no stock record for ${req.params.sku}`)
      const onHand = recs.reduce((a, r) => a + r.onHand, 0)
      const reserved = recs.reduce((a, r) => a + r.reserved, 0)
      return {
        status: 200,
        body: { sku: req.params.sku, onHand, reserved, available: onHand - reserved, warehouses: recs },
      }
    },
    'POST /stock/import': importStock,
    'POST /stock/adjust': adjust,
    'GET /reservations/:order': async (req: RouteRequest<null, { order: string }>, ctx: Ctx) => {
      const r = await reservationOf(ctx, req.params.order)
      return r ? { status: 200, body: r } : problem(INV.NO_RESERVATION, `no reservation for order ${req.params.order}`)
    },
  },
  actions: { reserve, release, issue, receive, levels },
})
