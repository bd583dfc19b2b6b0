// POST /orders: quote, reserve, record, and raise what needs a person.
import { problem, type RouteRequest, type RouteResponse } from '@trellis/plugin-sdk'
import { ORD } from './errors.js'
import type { Ctx, ExceptionKind, Order, OrderException, Quote, Reservation } from './types.js'
import { creditProblem, customerOf, eventBase, now, orderOf, shortReason, today, who } from './store.js'

/**
 * Raises an exception's event; for a price approval while the workflow is on, starts the
 * pricing-exception workflow with it — in this invocation, with the start key the event's
 * delivery would use (`event:<id>`), so the delivery starts no second instance — and answers
 * what it started.
 */
async function raise(ctx: Ctx, o: Order, kind: ExceptionKind, reason: string): Promise<StartedByException> {
  const data = { order: o.number, customer: o.customer, kind, reason }
  const { id } = await ctx.events.emit('orders.exception.raised', data, { subject: o.number })
  if (kind !== 'price_approval' || ctx.settings.priceApprovalWorkflow === false) return { kind, event: id }
  const event = {
    id,
    tenantId: ctx.tenant.id,
    type: 'orders.exception.raised',
    source: '@trellis/orders',
    subject: o.number,
    time: now(),
    data,
  }
  const { instanceId } = await ctx.workflows.start('priceException', { event }, { startKey: `event:${id}` })
  return {
    kind,
    event: id,
    workflow: {
      plugin: '@trellis/orders',
      name: 'priceException',
      instanceId,
      instance: `/v1/workflows/instances/${instanceId}`,
      task: {
        role: typeof ctx.settings.approverRole === 'string' ? ctx.settings.approverRole : 'pricing_manager',
        list: '/v1/tasks',
        match: { instanceId, 'data.order': o.number },
      },
    },
  }
}

/**
 * What placing an order set going, in its answer: each exception's event and, for a price
 * approval, the workflow instance it started (committed with the order). The instance's first
 * step opens the approver's task moments after the answer: the task whose `instanceId` is this
 * one.
 */
export interface StartedByException {
  kind: ExceptionKind
  event: string
  workflow?: {
    plugin: string
    name: string
    instanceId: string
    instance: string
    task: { role: string; list: string; match: Record<string, string> }
  }
}

interface PlaceBody {
  number?: string
  customer: string
  /** The employee (sales representative) who took the order. */
  employeeId?: string
  orderDate?: string
  requiredDate?: string
  lines: Array<{ sku: string; quantity: number; discount?: string | number }>
}

export async function placeOrder(req: RouteRequest<PlaceBody>, ctx: Ctx): Promise<RouteResponse> {
  const b = req.body
  const number = b.number ?? `SO-${ctx.invocationId.replace(/-/g, '').slice(-12).toUpperCase()}`
  // Everything that can refuse the order is checked before stock is reserved: a refusal writes nothing.
  // The two look-ups are independent: asked together, they leave the sandbox in one message.
  const [existing, customer] = await Promise.all([orderOf(ctx, number), customerOf(ctx, b.customer)])
  if (existing) return problem(ORD.ORDER_EXISTS, `order ${number} exists already`)
  if (!customer) return problem(ORD.UNKNOWN_CUSTOMER, `no customer ${b.customer}`)
  const orderDate = b.orderDate ?? today()
  const quote = await ctx.plugins.call<Quote>('@trellis/pricing', 'quote', {
    customer: customer.code,
    ...(customer.group ? { group: customer.group } : {}),
    date: orderDate,
    lines: b.lines,
  })
  if (quote.errors.length)
    return problem(ORD.INVALID_LINES, quote.errors.map((e) => e.message).join('; '), { errors: quote.errors })

  const at = now()
  const exceptions: OrderException[] = []
  const reservation = await ctx.plugins.call<Reservation>('@trellis/inventory', 'reserve', {
    order: number,
    lines: b.lines.map((l) => ({ sku: l.sku, quantity: l.quantity })),
  })
  if (!reservation.ok)
    exceptions.push({ kind: 'stock_short', reason: shortReason(reservation.short ?? []), status: 'open', raisedAt: at })
  const credit = creditProblem(customer, quote.total)
  if (credit) exceptions.push({ kind: 'credit_hold', reason: credit, status: 'open', raisedAt: at })
  if (quote.needsApproval)
    exceptions.push({ kind: 'price_approval', reason: quote.approvalReasons.join('; '), status: 'open', raisedAt: at })

  const record: Order = {
    number,
    customer: customer.code,
    customerName: customer.name,
    ...(b.employeeId ? { employeeId: b.employeeId } : {}),
    status: 'placed',
    orderDate,
    ...(b.requiredDate ? { requiredDate: b.requiredDate } : {}),
    currency: quote.currency,
    lines: quote.lines,
    subtotal: quote.subtotal,
    discountTotal: quote.discountTotal,
    total: quote.total,
    totalExact: quote.totalExact,
    stock: reservation.ok ? 'reserved' : 'short',
    exceptions,
    history: [{ status: 'placed', at, by: who(ctx) }],
  }
  // The event needs nothing the insert answers, so both go in one message; a failed insert
  // fails the invocation, and the event rolls back with it.
  const [order] = await Promise.all([
    ctx.data.orders.insert(record),
    ctx.events.emit(
      'orders.order.placed',
      { ...eventBase(record), exceptions: exceptions.map((e) => e.kind) },
      { subject: number },
    ),
  ])
  const started: StartedByException[] = []
  for (const e of exceptions) started.push(await raise(ctx, order, e.kind, e.reason))
  return { status: 201, body: { ...order, started }, headers: { location: `/orders/${encodeURIComponent(number)}` } }
}
