// Purchase orders: draft → (pending_approval →) approved → sent → partly_received / received →
// closed, or cancelled. Above the approval threshold a purchasing manager decides through a task.
import { problem, problemFromError, type RouteRequest, type RouteResponse } from '@trellis/plugin-sdk'
import { PUR } from './errors.js'
import type { Ctx, PoLine, PoStatus, PurchaseOrder, Stored } from './types.js'
import { micros } from './money.js'
import { lineAmount, now, poEvent, poOf, pricesOf, setting, supplierOf, totals, who } from './store.js'

type LineInput = { sku: string; quantity: number; unitCost?: string }

/** Priced lines from a supplier's price list (a given unit cost wins), or the problems. */
export async function priceLines(ctx: Ctx, supplier: string, input: LineInput[]) {
  const skus = [...new Set(input.map((l) => l.sku))]
  const prices = await pricesOf(ctx, { supplier, sku: { in: skus } })
  const { missing } = await ctx.plugins.call<{ missing: string[] }>('@trellis/catalog', 'getProducts', { skus })
  const problems: string[] = missing.map((sku) => `no product ${sku}`)
  const lines: PoLine[] = input.map((l, i) => {
    const cost = l.unitCost ?? prices.find((p) => p.sku === l.sku)?.cost
    if (cost === undefined) problems.push(`line ${i + 1}: ${supplier} has no price for ${l.sku}; give a unitCost`)
    else if (micros(cost) === null) problems.push(`line ${i + 1}: ${cost} is not an amount`)
    const unitCost = cost ?? '0'
    return {
      line: i + 1,
      sku: l.sku,
      quantity: l.quantity,
      unitCost,
      received: 0,
      over: 0,
      amountExact: micros(unitCost) === null ? '0.00' : lineAmount(unitCost, l.quantity),
    }
  })
  return { lines, problems }
}

/** Moves a purchase order to `status` (version-checked), records who and why, emits its event. */
export async function move(
  ctx: Ctx,
  po: Stored<PurchaseOrder>,
  status: PoStatus,
  by: string,
  patch: Partial<PurchaseOrder> = {},
  note?: string,
): Promise<Stored<PurchaseOrder>> {
  const updated = (await ctx.data.purchaseOrders.update(
    po.id,
    { ...patch, status, history: [...po.history, { status, at: now(), by, ...(note ? { note } : {}) }] },
    po.version,
  )) as Stored<PurchaseOrder>
  const verb = status === 'pending_approval' ? 'submitted' : status === 'partly_received' ? 'part-received' : status
  await poEvent(ctx, verb, updated, note ? { note } : {})
  return updated
}

/** A suggested draft keeps its supplier's draft slot only while it is a draft. */
const leaveDraft = (po: PurchaseOrder) => (po.draftKey ? { draftKey: `${po.supplier}/${po.number}` } : {})

async function create(
  req: RouteRequest<{ number?: string; supplier: string; expectedDate?: string; lines: LineInput[] }>,
  ctx: Ctx,
): Promise<RouteResponse> {
  const number = req.body.number ?? `PO-${ctx.invocationId.replace(/-/g, '').slice(-10).toUpperCase()}`
  if (await poOf(ctx, number)) return problem(PUR.PO_EXISTS, `purchase order ${number} exists already`)
  if (!(await supplierOf(ctx, req.body.supplier)))
    return problem(PUR.UNKNOWN_SUPPLIER, `no supplier ${req.body.supplier}`)
  const { lines, problems } = await priceLines(ctx, req.body.supplier, req.body.lines)
  if (problems.length) return problem(PUR.INVALID_LINES, problems.join('; '))
  const by = who(ctx)
  const po = await ctx.data.purchaseOrders.insert({
    number,
    supplier: req.body.supplier,
    status: 'draft',
    source: 'manual',
    lines,
    ...totals(lines),
    createdBy: by,
    history: [{ status: 'draft', at: now(), by }],
    ...(req.body.expectedDate ? { expectedDate: req.body.expectedDate } : {}),
  })
  await poEvent(ctx, 'created', po)
  return { status: 201, body: po, headers: { location: `/purchase-orders/${encodeURIComponent(number)}` } }
}

/** A buyer reviews a draft: new quantities (0 drops a line) or costs. */
async function revise(req: RouteRequest<{ lines: LineInput[] }, { number: string }>, ctx: Ctx): Promise<RouteResponse> {
  const po = await poOf(ctx, req.params.number)
  if (!po) return problem(PUR.PO_NOT_FOUND, `no purchase order ${req.params.number}`)
  if (po.status !== 'draft')
    return problem(PUR.INVALID_TRANSITION, `purchase order ${po.number} is ${po.status}; only a draft can be revised`)
  const { lines, problems } = await priceLines(ctx, po.supplier, req.body.lines)
  if (problems.length) return problem(PUR.INVALID_LINES, problems.join('; '))
  const updated = await ctx.data.purchaseOrders.update(po.id, { lines, ...totals(lines) }, po.version)
  await poEvent(ctx, 'revised', updated)
  return { status: 200, body: updated }
}

/** draft → approved (at or under the threshold) or pending_approval with a task for the purchasing manager. */
async function submit(req: RouteRequest<null, { number: string }>, ctx: Ctx): Promise<RouteResponse> {
  const po = await poOf(ctx, req.params.number)
  if (!po) return problem(PUR.PO_NOT_FOUND, `no purchase order ${req.params.number}`)
  if (po.status !== 'draft')
    return problem(PUR.INVALID_TRANSITION, `purchase order ${po.number} is ${po.status}; only a draft is submitted`)
  const threshold = setting(ctx, 'approvalThreshold', '1000.00')
  const by = who(ctx)
  if (micros(po.totalExact)! <= micros(threshold)!) {
    const at = now()
    const approved = await move(ctx, po, 'approved', by, {
      ...leaveDraft(po),
      submittedBy: by,
      approval: { by: 'rule', rule: `total ${po.total} is at or under the approval threshold ${threshold}`, at },
    })
    return { status: 200, body: approved }
  }
  const pending = await move(ctx, po, 'pending_approval', by, { ...leaveDraft(po), submittedBy: by })
  const { instanceId } = await ctx.workflows.start(
    'poApproval',
    { po: po.number },
    { startKey: `po:${po.id}:${po.version}` },
  )
  return {
    status: 200,
    body: {
      ...pending,
      approvalWorkflow: {
        instanceId,
        task: { role: setting(ctx, 'approverRole', 'purchasing_manager'), list: '/v1/tasks' },
      },
    },
  }
}

/**
 * Applies a decision on a pending purchase order: approve → approved, reject → back to draft.
 * Whoever raised it cannot decide it. Throws PUR_ERR_* refusals.
 */
export async function decide(
  ctx: Ctx,
  input: { po: string; decision: 'approve' | 'reject'; reason: string; by: string; workflow?: string },
): Promise<Stored<PurchaseOrder>> {
  const po = await poOf(ctx, input.po)
  if (!po) throw PUR.PO_NOT_FOUND({ detail: `no purchase order ${input.po}` })
  if (po.status !== 'pending_approval')
    throw PUR.INVALID_TRANSITION({ detail: `purchase order ${po.number} is ${po.status}, not waiting for approval` })
  if (input.by === po.createdBy || input.by === po.submittedBy)
    throw PUR.SELF_APPROVAL({ detail: `purchase order ${po.number} was raised by ${input.by}, who cannot decide it` })
  const at = now()
  if (input.decision === 'reject') return move(ctx, po, 'draft', input.by, {}, `rejected: ${input.reason}`)
  return move(ctx, po, 'approved', input.by, {
    approval: { by: input.by, reason: input.reason, at, ...(input.workflow ? { workflow: input.workflow } : {}) },
  })
}

function simple(from: PoStatus[], to: PoStatus, extra?: (po: Stored<PurchaseOrder>) => Partial<PurchaseOrder>) {
  return async (
    req: RouteRequest<{ reason?: string } | null, { number: string }>,
    ctx: Ctx,
  ): Promise<RouteResponse> => {
    const po = await poOf(ctx, req.params.number)
    if (!po) return problem(PUR.PO_NOT_FOUND, `no purchase order ${req.params.number}`)
    if (!from.includes(po.status))
      return problem(
        PUR.INVALID_TRANSITION,
        `purchase order ${po.number} is ${po.status}; it cannot be ${to} (only from ${from.join(' or ')})`,
        { poStatus: po.status },
      )
    const patch = { ...leaveDraft(po), ...(extra?.(po) ?? {}) }
    return { status: 200, body: await move(ctx, po, to, who(ctx), patch, req.body?.reason) }
  }
}

export const poRoutes = {
  'POST /purchase-orders': create,
  'GET /purchase-orders': async (
    req: RouteRequest<null, Record<string, string>, { status?: string; supplier?: string; cursor?: string }>,
    ctx: Ctx,
  ) => {
    const where: Record<string, string> = {}
    if (req.query.status) where.status = req.query.status
    if (req.query.supplier) where.supplier = req.query.supplier
    return {
      status: 200,
      body: await ctx.data.purchaseOrders.find({
        where,
        limit: 100,
        ...(req.query.cursor ? { cursor: req.query.cursor } : {}),
      }),
    }
  },
  'GET /purchase-orders/:number': async (req: RouteRequest<null, { number: string }>, ctx: Ctx) => {
    const po = await poOf(ctx, req.params.number)
    return po ? { status: 200, body: po } : problem(PUR.PO_NOT_FOUND, `no purchase order ${req.params.number}`)
  },
  'PATCH /purchase-orders/:number': revise,
  'POST /purchase-orders/:number/submit': submit,
  'POST /purchase-orders/:number/decision': async (
    req: RouteRequest<{ decision: 'approve' | 'reject'; reason: string }, { number: string }>,
    ctx: Ctx,
  ): Promise<RouteResponse> => {
    try {
      return { status: 200, body: await decide(ctx, { po: req.params.number, ...req.body, by: who(ctx) }) }
    } catch (err) {
      return problemFromError(err, [PUR])
    }
  },
  'POST /purchase-orders/:number/send': simple(['approved'], 'sent'),
  // Nothing was received in these states: once goods arrive, the order is closed instead.
  'POST /purchase-orders/:number/cancel': simple(['draft', 'pending_approval', 'approved', 'sent'], 'cancelled'),
  /** Under-delivery, explicitly: the rest will not come; what is missing is recorded. */
  'POST /purchase-orders/:number/close': simple(['partly_received', 'received'], 'closed', (po) => ({
    shortClosed: po.lines
      .filter((l) => l.received < l.quantity)
      .map((l) => ({ line: l.line, sku: l.sku, quantity: l.quantity - l.received })),
  })),
}
