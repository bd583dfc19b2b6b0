// placed → confirmed → shipped → invoiced, or cancelled (which releases reserved stock).
import { problem, type RouteRequest, type RouteResponse } from '@trellis/plugin-sdk'
import { ORD } from './errors.js'
import type { Ctx, Order, OrderException, OrderStatus, StoredOrder } from './types.js'
import { eventBase, now, open, orderOf, who } from './store.js'

/** The transitions a route may ask for, and the states each starts from. */
const TRANSITIONS: Record<'confirm' | 'ship' | 'invoice' | 'cancel', { from: OrderStatus[]; to: OrderStatus }> = {
  confirm: { from: ['placed'], to: 'confirmed' },
  ship: { from: ['confirmed'], to: 'shipped' },
  invoice: { from: ['shipped'], to: 'invoiced' },
  cancel: { from: ['placed', 'confirmed'], to: 'cancelled' },
}

export async function cancelOrder(
  ctx: Ctx,
  o: StoredOrder,
  reason: string,
  by: string,
  exceptionsPatch?: OrderException[],
): Promise<StoredOrder> {
  const at = now()
  if (o.stock === 'reserved') await ctx.plugins.call('@trellis/inventory', 'release', { order: o.number })
  const exceptions = (exceptionsPatch ?? o.exceptions).map((e) =>
    e.status === 'open'
      ? { ...e, status: 'resolved' as const, decision: 'cancelled' as const, resolution: reason, resolvedAt: at, by }
      : e,
  )
  const updated = (await ctx.data.orders.update(
    o.id,
    {
      status: 'cancelled',
      cancelReason: reason,
      stock: o.stock === 'reserved' ? 'released' : o.stock,
      exceptions,
      history: [...o.history, { status: 'cancelled', at, by }],
    },
    o.version,
  )) as StoredOrder
  await ctx.events.emit('orders.order.cancelled', { ...eventBase(updated), reason }, { subject: o.number })
  return updated
}

export function transition(name: keyof typeof TRANSITIONS) {
  return async (
    req: RouteRequest<{ date?: string; invoiceNumber?: string; reason?: string } | null, { number: string }>,
    ctx: Ctx,
  ): Promise<RouteResponse> => {
    const o = await orderOf(ctx, req.params.number)
    if (!o) return problem(ORD.ORDER_NOT_FOUND, `no order ${req.params.number}`)
    const t = TRANSITIONS[name]
    if (!t.from.includes(o.status))
      return problem(
        ORD.INVALID_TRANSITION,
        `order ${o.number} is ${o.status}; it cannot be ${t.to} (only from ${t.from.join(' or ')})`,
        { orderStatus: o.status },
      )
    const by = who(ctx)
    const body = req.body ?? {}
    if (name === 'cancel') return { status: 200, body: await cancelOrder(ctx, o, body.reason!, by) }
    const pending = open(o)
    if (pending.length) {
      return problem(
        ORD.OPEN_EXCEPTIONS,
        `order ${o.number} has open exceptions: ${pending.map((e) => `${e.kind} (${e.reason})`).join('; ')}`,
        { exceptions: pending },
      )
    }
    const at = now()
    const patch: Partial<Order> = { status: t.to, history: [...o.history, { status: t.to, at, by }] }
    if (name === 'ship') {
      const issued = await ctx.plugins.call<{ issued: boolean; status?: string }>('@trellis/inventory', 'issue', {
        order: o.number,
      })
      if (!issued.issued)
        return problem(ORD.NOT_RESERVED, `order ${o.number} has no reserved stock to ship (${issued.status})`)
      patch.stock = 'issued'
      patch.shippedDate = body.date ?? at.slice(0, 10)
    }
    if (name === 'invoice') {
      patch.invoicedDate = body.date ?? at.slice(0, 10)
      patch.invoiceNumber = body.invoiceNumber ?? `INV-${o.number}`
    }
    const updated = (await ctx.data.orders.update(o.id, patch, o.version)) as StoredOrder
    const extra =
      name === 'ship'
        ? { shippedDate: updated.shippedDate }
        : name === 'invoice'
          ? { invoiceNumber: updated.invoiceNumber, invoicedDate: updated.invoicedDate }
          : {}
    await ctx.events.emit(`orders.order.${t.to}`, { ...eventBase(updated), ...extra }, { subject: o.number })
    return { status: 200, body: updated }
  }
}
