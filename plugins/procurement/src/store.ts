// Lookups and small rules the procurement operations share.
import type { Ctx, PoLine, PurchaseOrder, Stored, Supplier, SupplierPrice } from './types.js'
import { cents, exact, micros } from './money.js'

export const now = () => new Date().toISOString()
export const who = (ctx: Ctx) => `${ctx.caller.kind}:${ctx.caller.id}`

export async function supplierOf(ctx: Ctx, code: string): Promise<Stored<Supplier> | null> {
  return ((await ctx.data.suppliers.find({ where: { code }, limit: 1 })).items[0] as Stored<Supplier>) ?? null
}

export async function poOf(ctx: Ctx, number: string): Promise<Stored<PurchaseOrder> | null> {
  return (
    ((await ctx.data.purchaseOrders.find({ where: { number }, limit: 1 })).items[0] as Stored<PurchaseOrder>) ?? null
  )
}

/** Every price-list entry for the SKUs (all suppliers). */
export async function pricesOf(ctx: Ctx, where: Record<string, unknown>): Promise<Array<Stored<SupplierPrice>>> {
  const out: Array<Stored<SupplierPrice>> = []
  let cursor: string | undefined
  do {
    const page = await ctx.data.prices.find({ where, limit: 1000, ...(cursor ? { cursor } : {}) })
    out.push(...(page.items as Array<Stored<SupplierPrice>>))
    cursor = page.nextCursor ?? undefined
  } while (cursor)
  return out
}

/** A line's exact amount, and the order's totals from its lines. */
export const lineAmount = (unitCost: string, quantity: number) => exact(micros(unitCost)! * BigInt(quantity))
export function totals(lines: PoLine[]): { total: string; totalExact: string } {
  const sum = lines.reduce((a, l) => a + micros(l.amountExact)!, 0n)
  return { total: cents(sum), totalExact: exact(sum) }
}

/** The event every state change of a purchase order emits: `procurement.po.<verb>`. */
export const poEvent = (ctx: Ctx, verb: string, po: PurchaseOrder, extra: Record<string, unknown> = {}) =>
  ctx.events.emit(
    `procurement.po.${verb}`,
    { po: po.number, supplier: po.supplier, status: po.status, total: po.total, ...extra },
    { subject: po.number },
  )

export const setting = <T>(ctx: Ctx, name: string, fallback: T): T =>
  (ctx.settings as Record<string, unknown>)[name] === undefined
    ? fallback
    : ((ctx.settings as Record<string, T>)[name] as T)
