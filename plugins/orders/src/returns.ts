// Goods coming back: what an order's lines can still take back, the credit at the order's own
// prices and discounts, and the returns recorded on the order (its sales figures net them out).
import { ORD } from './errors.js'
import type { Ctx, Order, OrderReturn, StoredOrder } from './types.js'
import { fmtMicros, roundToCents, toMicros } from './money.js'
import { now, orderOf } from './store.js'

interface ReturnLines {
  order: string
  lines?: Array<{ line: number; quantity: number }>
}

/** Quantity of each line taken back by the returns recorded on the order. */
export function returnedByLine(o: Order): Map<number, number> {
  const out = new Map<number, number>()
  for (const r of o.returns ?? []) for (const l of r.lines) out.set(l.line, (out.get(l.line) ?? 0) + l.quantity)
  return out
}

/** Exact credit (10^-6) of `quantity` of a line: unit price × quantity × (1 − discount), as the order priced it. */
export function creditMicros(l: { unitPrice: string; discount: string }, quantity: number): bigint {
  const cents = toMicros(l.unitPrice) / 10_000n
  const bp = toMicros(l.discount) / 100n
  return cents * BigInt(quantity) * (10_000n - bp)
}

const shippedStates = new Set(['shipped', 'invoiced'])

/** The credit for the asked lines, or the refusal (unknown line, more than shipped less returned). */
function credit(o: Order, asked: Array<{ line: number; quantity: number }>) {
  const returned = returnedByLine(o)
  const problems: string[] = []
  let total = 0n
  const lines = asked.map((a) => {
    const l = o.lines.find((x) => x.line === a.line)
    if (!l) {
      problems.push(`order ${o.number} has no line ${a.line}`)
      return null
    }
    const open = (shippedStates.has(o.status) ? l.quantity : 0) - (returned.get(a.line) ?? 0)
    if (a.quantity > open)
      problems.push(`line ${a.line} (${l.sku}): ${a.quantity} asked back, ${open} shipped and not yet returned`)
    const m = creditMicros(l, a.quantity)
    total += m
    return {
      line: l.line,
      sku: l.sku,
      name: l.name,
      quantity: a.quantity,
      unitPrice: l.unitPrice,
      discount: l.discount,
      amountExact: fmtMicros(m),
    }
  })
  return { problems, lines, total: roundToCents(total), totalExact: fmtMicros(total) }
}

const view = (o: Order) => {
  const returned = returnedByLine(o)
  return {
    number: o.number,
    customer: o.customer,
    status: o.status,
    currency: o.currency,
    invoiceNumber: o.invoiceNumber,
    invoicedDate: o.invoicedDate,
    shippedDate: o.shippedDate,
    lines: o.lines.map((l) => ({
      line: l.line,
      sku: l.sku,
      name: l.name,
      shipped: shippedStates.has(o.status) ? l.quantity : 0,
      returned: returned.get(l.line) ?? 0,
      unitPrice: l.unitPrice,
      discount: l.discount,
    })),
  }
}

/** The `quoteReturn` action: the order's returnable lines and, for asked lines, the credit. */
export async function quoteReturn(input: ReturnLines, ctx: Ctx) {
  const o = await orderOf(ctx, input.order)
  if (!o) return { ok: false, code: ORD.ORDER_NOT_FOUND.code, detail: `no order ${input.order}` }
  if (!input.lines) return { ok: true, order: view(o) }
  const c = credit(o, input.lines)
  if (c.problems.length)
    return { ok: false, code: ORD.RETURN_EXCEEDS.code, detail: c.problems.join('; '), order: view(o) }
  return { ok: true, order: view(o), credit: { lines: c.lines, total: c.total, totalExact: c.totalExact } }
}

/**
 * The `recordReturn` action: books goods taken back against an invoiced order (once per
 * reference), at its prices and discounts; never more than shipped less returned. Concurrent
 * returns of one order race for its record: a version conflict re-reads it and checks again.
 */
export async function recordReturn(
  input: ReturnLines & { reference: string; lines: Array<{ line: number; quantity: number }> },
  ctx: Ctx,
) {
  for (let attempt = 0; ; attempt++) {
    const o = (await orderOf(ctx, input.order)) as StoredOrder | null
    if (!o) return { ok: false, code: ORD.ORDER_NOT_FOUND.code, detail: `no order ${input.order}` }
    const done = (o.returns ?? []).find((r) => r.reference === input.reference)
    if (done) return { ok: true, credit: done, alreadyRecorded: true }
    if (o.status !== 'invoiced')
      return { ok: false, code: ORD.INVALID_TRANSITION.code, detail: `order ${o.number} is ${o.status}, not invoiced` }
    const c = credit(o, input.lines)
    if (c.problems.length) return { ok: false, code: ORD.RETURN_EXCEEDS.code, detail: c.problems.join('; ') }
    const entry: OrderReturn = {
      reference: input.reference,
      at: now(),
      lines: c.lines.map((l) => l!),
      total: c.total,
      totalExact: c.totalExact,
    }
    try {
      await ctx.data.orders.update(o.id, { returns: [...(o.returns ?? []), entry] }, o.version)
    } catch (err) {
      if ((err as { code?: string }).code === 'KRN_ERR_CONFLICT' && attempt < 5) continue
      throw err
    }
    await ctx.events.emit(
      'orders.order.returned',
      { order: o.number, customer: o.customer, status: o.status, reference: input.reference, credit: entry.total },
      { subject: o.number },
    )
    return { ok: true, credit: entry }
  }
}
