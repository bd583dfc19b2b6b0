// Resolving an order's exceptions: by a route, by another plugin's action call, or by the
// price-exception workflow's decision step. Refusals are thrown as ORD_ERR_* errors.
import {
  isTrellisError,
  problemFromError,
  type RouteRequest,
  type RouteResponse,
  type TrellisError,
} from '@trellis/plugin-sdk'
import { ORD } from './errors.js'
import type { Ctx, ExceptionKind, Order, Quote, Reservation, StoredOrder } from './types.js'
import { customerOf, now, orderOf, shortReason, who } from './store.js'
import { cancelOrder } from './transitions.js'

/** What deciding an exception takes. */
export interface ExceptionDecision {
  order: string
  kind: ExceptionKind
  decision: 'approve' | 'reject'
  reason: string
  decidedBy?: string
}

/**
 * Resolves an open exception. price_approval: approve keeps the requested discounts, reject
 * reprices the flagged lines without their discount. credit_hold: approve releases the hold,
 * reject cancels the order. stock_short: approve retries the reservation (still short → refused,
 * nothing changes), reject cancels the order.
 */
export async function resolveException(ctx: Ctx, input: ExceptionDecision): Promise<StoredOrder> {
  const o = await orderOf(ctx, input.order)
  if (!o) throw ORD.ORDER_NOT_FOUND({ detail: `no order ${input.order}` })
  const idx = o.exceptions.findIndex((e) => e.kind === input.kind && e.status === 'open')
  if (idx < 0) throw ORD.NO_OPEN_EXCEPTION({ detail: `order ${o.number} has no open ${input.kind} exception` })
  const by = who(ctx, input.decidedBy)
  const at = now()
  const decision = input.decision === 'approve' ? ('approved' as const) : ('rejected' as const)
  const exceptions = o.exceptions.map((e, i) =>
    i === idx ? { ...e, status: 'resolved' as const, decision, resolution: input.reason, resolvedAt: at, by } : e,
  )
  const emitResolved = (target: Order) =>
    ctx.events.emit(
      'orders.exception.resolved',
      { order: target.number, customer: target.customer, kind: input.kind, decision, reason: input.reason, by },
      { subject: target.number },
    )

  if (input.decision === 'reject' && input.kind !== 'price_approval') {
    const cancelled = await cancelOrder(ctx, o, `${input.kind} rejected: ${input.reason}`, by, exceptions)
    await emitResolved(cancelled)
    return cancelled
  }
  const patch: Partial<Order> = { exceptions }
  if (input.kind === 'price_approval' && input.decision === 'reject') {
    const customer = await customerOf(ctx, o.customer)
    const lines = o.lines.map((l) => ({
      sku: l.sku,
      quantity: l.quantity,
      ...(l.needsApproval ? {} : { discount: l.discount }),
    }))
    const q = await ctx.plugins.call<Quote>('@trellis/pricing', 'quote', {
      customer: o.customer,
      ...(customer?.group ? { group: customer.group } : {}),
      date: o.orderDate,
      lines,
    })
    if (q.errors.length)
      throw ORD.REPRICE_FAILED({
        detail: `order ${o.number} cannot be repriced: ${q.errors.map((e) => e.message).join('; ')}`,
      })
    Object.assign(patch, {
      lines: q.lines,
      subtotal: q.subtotal,
      discountTotal: q.discountTotal,
      total: q.total,
      totalExact: q.totalExact,
    })
  }
  if (input.kind === 'stock_short') {
    const r = await ctx.plugins.call<Reservation>('@trellis/inventory', 'reserve', {
      order: o.number,
      lines: o.lines.map((l) => ({ sku: l.sku, quantity: l.quantity })),
    })
    if (!r.ok)
      throw ORD.STOCK_STILL_SHORT({
        detail: `order ${o.number}: still short (${shortReason(r.short ?? [])})`,
        extra: { short: r.short ?? [] },
      })
    patch.stock = 'reserved'
  }
  const updated = (await ctx.data.orders.update(o.id, patch, o.version)) as StoredOrder
  await emitResolved(updated)
  return updated
}

export async function resolveRoute(
  req: RouteRequest<{ decision: 'approve' | 'reject'; reason: string }, { number: string; kind: ExceptionKind }>,
  ctx: Ctx,
): Promise<RouteResponse> {
  try {
    return {
      status: 200,
      body: await resolveException(ctx, {
        order: req.params.number,
        kind: req.params.kind,
        decision: req.body.decision,
        reason: req.body.reason,
      }),
    }
  } catch (err) {
    return problemFromError(err, [ORD])
  }
}

/** True for a refusal from this plugin's catalog (ORD_ERR_*). */
export const isOrderRefusal = (err: unknown): err is TrellisError =>
  isTrellisError(err) && ORD.entries.some((e) => e.code === err.code)

/**
 * The `resolveException` action. Who may decide: a caller holding orders.approve, or a call no
 * person made (the kernel, an event, or a workflow step — the runtime runs steps as the system
 * with no permissions, so a step's call arrives as a plugin caller with none). There the
 * authority is the human task (assigned to a role with orders.approve) and the tenant's grant
 * of plugins:call:@trellis/orders#resolveException to the workflow's plugin.
 */
export async function resolveExceptionAction(input: ExceptionDecision, ctx: Ctx) {
  const person =
    ctx.caller.kind === 'user' ||
    ctx.caller.kind === 'api_key' ||
    (ctx.caller.kind === 'plugin' && ctx.caller.permissions.length > 0)
  if (person && !ctx.caller.permissions.includes('orders.approve')) {
    return {
      ok: false,
      code: ORD.FORBIDDEN.code,
      detail: 'resolving an order exception needs the orders.approve permission',
    }
  }
  try {
    return { ok: true, order: await resolveException(ctx, input) }
  } catch (err) {
    if (isOrderRefusal(err)) return { ok: false, code: err.code, detail: err.message }
    throw err
  }
}
