// Goods arriving against a sent purchase order: stock goes up through inventory's `receive`,
// by exactly what arrived; over-delivery within the tolerance is accepted and recorded, beyond it
// refused; under-delivery leaves the order partly received until more comes or it is closed.
import { problem, type RouteRequest, type RouteResponse } from '@trellis/plugin-sdk'
import { PUR } from './errors.js'
import type { Ctx, PoLine, Receipt } from './types.js'
import { move } from './purchase-orders.js'
import { now, poOf, setting, who } from './store.js'

interface ReceiptBody {
  reference?: string
  warehouse?: string
  lines: Array<{ line: number; quantity: number }>
}

/** The lines after the receipt, or what cannot be taken. */
function apply(lines: PoLine[], asked: ReceiptBody['lines'], tolerance: number) {
  const problems: string[] = []
  const next = lines.map((l) => ({ ...l }))
  for (const a of asked) {
    const l = next.find((x) => x.line === a.line)
    if (!l) {
      problems.push(`the purchase order has no line ${a.line}`)
      continue
    }
    const allowed = l.quantity + Math.floor(l.quantity * tolerance)
    if (l.received + a.quantity > allowed)
      problems.push(
        `line ${l.line} (${l.sku}): ${l.quantity} ordered, ${l.received} received, ${a.quantity} more is over the ${allowed} the over-delivery tolerance allows`,
      )
    l.received += a.quantity
    l.over = Math.max(0, l.received - l.quantity)
  }
  return { next, problems }
}

export async function receive(req: RouteRequest<ReceiptBody, { number: string }>, ctx: Ctx): Promise<RouteResponse> {
  const tolerance = Number(setting(ctx, 'overDeliveryTolerance', 0))
  const by = who(ctx)
  // Concurrent receipts of one order race for its record: a version conflict reads it again and
  // checks again, so two deliveries together can never take more than the order allows.
  for (let attempt = 0; ; attempt++) {
    const po = await poOf(ctx, req.params.number)
    if (!po) return problem(PUR.PO_NOT_FOUND, `no purchase order ${req.params.number}`)
    if (po.status !== 'sent' && po.status !== 'partly_received')
      return problem(
        PUR.INVALID_TRANSITION,
        `purchase order ${po.number} is ${po.status}; goods are received only once it is sent`,
        {
          poStatus: po.status,
        },
      )
    const { next, problems } = apply(po.lines, req.body.lines, tolerance)
    if (problems.length) return problem(PUR.OVER_DELIVERY, problems.join('; '))
    const done = next.every((l) => l.received >= l.quantity)
    const number = `${po.number}-R${po.history.filter((h) => h.status.endsWith('received')).length + 1}`
    let updated: Awaited<ReturnType<typeof move>>
    try {
      updated = await move(ctx, po, done ? 'received' : 'partly_received', by, { lines: next }, `receipt ${number}`)
    } catch (err) {
      if ((err as { code?: string }).code === 'KRN_ERR_CONFLICT' && attempt < 8) continue
      throw err
    }
    const lines = req.body.lines.map((a) => {
      const l = next.find((x) => x.line === a.line)!
      const before = po.lines.find((x) => x.line === a.line)!
      return { line: a.line, sku: l.sku, quantity: a.quantity, over: l.over - before.over }
    })
    const stock = await ctx.plugins.call<{ received: boolean; unknown?: string[] }>('@trellis/inventory', 'receive', {
      reference: number,
      reason: `goods received against purchase order ${po.number}`,
      lines: lines.map((l) => ({
        sku: l.sku,
        quantity: l.quantity,
        ...(req.body.warehouse ? { warehouse: req.body.warehouse } : {}),
      })),
    })
    if (!stock.received) throw PUR.INVALID_LINES({ detail: `inventory does not know ${stock.unknown?.join(', ')}` })
    const receipt: Receipt = {
      number,
      po: po.number,
      ...(req.body.reference ? { reference: req.body.reference } : {}),
      lines,
      at: now(),
      by,
    }
    const stored = await ctx.data.receipts.insert(receipt)
    await ctx.events.emit(
      'procurement.receipt.recorded',
      { receipt: number, po: po.number, supplier: po.supplier, lines },
      { subject: po.number },
    )
    return { status: 201, body: { receipt: stored, purchaseOrder: updated } }
  }
}
