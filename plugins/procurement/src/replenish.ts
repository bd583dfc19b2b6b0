// Replenishment: stock falling to its reorder point puts a suggested line on the draft purchase
// order of the SKU's cheapest supplier (one suggested draft per supplier), for a buyer to review,
// submit and send.
import type { TrellisEvent } from '@trellis/plugin-sdk'
import type { Ctx, PoLine, PurchaseOrder, Stored, SupplierPrice } from './types.js'
import { micros } from './money.js'
import { lineAmount, now, poEvent, pricesOf, setting, supplierOf, totals, who } from './store.js'
import { current, forecastOf, leadTimeDemand } from './demand.js'

export interface StockLow {
  sku: string
  warehouse: string
  available: number
  reorderPoint: number
}

/**
 * The suggested quantity: back above the reorder point (plus the demand expected over the lead
 * time) and one reorder-level lot on top; the economic order quantity √(2·D·S / (c·h)) instead when
 * it is larger and the annual usage D, ordering cost S, unit cost c and holding rate h are known;
 * never under the supplier's minimum.
 */
export function suggest(
  low: StockLow,
  price: SupplierPrice,
  leadTimeDays: number,
  demand: { quantity: number; method?: string } | null,
  costs: { orderCost?: number; holdingRate?: number },
) {
  const lot = Math.max(low.reorderPoint, 1)
  const leadDemand = demand?.quantity ?? 0
  const base = Math.max(0, low.reorderPoint + leadDemand - low.available) + lot
  const unit = Number(price.cost)
  const annual =
    price.annualUsage ?? (demand ? Math.round((demand.quantity * 365) / Math.max(1, leadTimeDays)) : undefined)
  const eoq =
    annual && costs.orderCost && costs.holdingRate && unit > 0
      ? Math.ceil(Math.sqrt((2 * annual * costs.orderCost) / (unit * costs.holdingRate)))
      : undefined
  const quantity = Math.max(base, eoq ?? 0, price.minQuantity ?? 0)
  return {
    quantity,
    basis: {
      available: low.available,
      reorderPoint: low.reorderPoint,
      leadTimeDays,
      ...(demand ? { forecast: demand } : {}),
      ...(eoq !== undefined ? { eoq, annualUsage: annual } : {}),
      rule: eoq !== undefined && eoq >= base ? 'eoq' : demand ? 'reorder point + lead-time forecast' : 'reorder point',
    },
  }
}

const cheapest = (prices: SupplierPrice[]) =>
  [...prices].sort((a, b) => {
    const d = micros(a.cost)! - micros(b.cost)!
    return d !== 0n ? (d < 0n ? -1 : 1) : a.supplier.localeCompare(b.supplier)
  })[0]

/** The price-list entry of the SKU's cheapest supplier, if anyone sells it. */
export async function supplierPriceOf(ctx: Ctx, sku: string): Promise<SupplierPrice | undefined> {
  return cheapest(await pricesOf(ctx, { sku }))
}

/** Days from ordering to delivery: the price entry's, else the supplier's, else a week. */
export async function leadTimeOf(ctx: Ctx, price: SupplierPrice): Promise<number> {
  return price.leadTimeDays ?? (await supplierOf(ctx, price.supplier))?.leadTimeDays ?? 7
}

/**
 * Puts the suggestion for `low.sku` on its supplier's draft purchase order (one suggested draft per
 * supplier, a unique draft key: a concurrent suggestion that created it first is read again and
 * extended), sized by `suggest` with the lead-time demand when a forecast gives one.
 */
export async function placeSuggestion(
  ctx: Ctx,
  low: StockLow,
  price: SupplierPrice,
  demand: { quantity: number; method?: string } | null,
  note: string,
  origin: string,
): Promise<{ po: string; quantity: number }> {
  const leadTimeDays = await leadTimeOf(ctx, price)
  const s = suggest(low, price, leadTimeDays, demand, {
    orderCost: setting<number | undefined>(ctx, 'orderCost', undefined),
    holdingRate: setting<number | undefined>(ctx, 'holdingRate', undefined),
  })
  const line = (n: number): PoLine => ({
    line: n,
    sku: low.sku,
    quantity: s.quantity,
    unitCost: price.cost,
    received: 0,
    over: 0,
    amountExact: lineAmount(price.cost, s.quantity),
    suggestion: { ...s.basis, warehouse: low.warehouse, origin },
  })
  for (let attempt = 0; ; attempt++) {
    const draft = (await ctx.data.purchaseOrders.find({ where: { draftKey: price.supplier }, limit: 1 })).items[0] as
      | Stored<PurchaseOrder>
      | undefined
    try {
      if (!draft) {
        const lines = [line(1)]
        const by = who(ctx)
        const po = await ctx.data.purchaseOrders.insert({
          number: `PO-${ctx.invocationId.replace(/-/g, '').slice(-10).toUpperCase()}`,
          supplier: price.supplier,
          status: 'draft',
          source: 'suggestion',
          draftKey: price.supplier,
          lines,
          ...totals(lines),
          createdBy: by,
          history: [{ status: 'draft', at: now(), by, note: `suggested: ${note}` }],
        })
        await poEvent(ctx, 'suggested', po, { sku: low.sku, quantity: s.quantity })
        return { po: po.number, quantity: s.quantity }
      }
      const existing = draft.lines.find((l) => l.sku === low.sku)
      const lines = existing
        ? draft.lines.map((l) => (l.sku === low.sku ? line(l.line) : l))
        : [...draft.lines, line(Math.max(0, ...draft.lines.map((l) => l.line)) + 1)]
      const po = await ctx.data.purchaseOrders.update(draft.id, { lines, ...totals(lines) }, draft.version)
      await poEvent(ctx, 'suggested', po, { sku: low.sku, quantity: s.quantity })
      return { po: po.number, quantity: s.quantity }
    } catch (err) {
      if ((err as { code?: string }).code !== 'KRN_ERR_CONFLICT' || attempt >= 4) throw err
    }
  }
}

export async function onStockLow(event: TrellisEvent<StockLow>, ctx: Ctx): Promise<void> {
  const low = event.data
  const price = await supplierPriceOf(ctx, low.sku)
  if (!price) {
    ctx.log.info('no supplier sells this SKU: no suggestion', { sku: low.sku })
    return
  }
  // A recorded forecast that still covers today sizes the suggestion with the lead-time demand.
  const today = now().slice(0, 10)
  const f = await forecastOf(ctx, low.sku)
  const demand =
    f && current(f, today)
      ? { quantity: leadTimeDemand(f, today, await leadTimeOf(ctx, price)), method: f.method ?? f.source }
      : null
  await placeSuggestion(ctx, low, price, demand, `${low.sku} at ${low.available}`, `event:${event.id}`)
}
