// Return authorisations: requested against an invoiced order (never more than shipped less what
// live authorisations hold), approved by rule (recent and small) or by a person through a task,
// received with an inspection outcome per line, and credited at the order's prices.
import { problem, problemFromError, type RouteRequest, type RouteResponse } from '@trellis/plugin-sdk'
import { RET } from './errors.js'
import type { Ctx, Outcome, Reason, Rma, RmaStatus, ReturnQuote, Stored } from './types.js'
import { hold } from './ledger.js'
import { inspect } from './inspection.js'

export const now = () => new Date().toISOString()
export const who = (ctx: Ctx) => `${ctx.caller.kind}:${ctx.caller.id}`
const setting = <T>(ctx: Ctx, name: string, fallback: T): T =>
  ((ctx.settings as Record<string, unknown>)[name] as T | undefined) ?? fallback

export async function rmaOf(ctx: Ctx, number: string): Promise<Stored<Rma> | null> {
  return ((await ctx.data.rmas.find({ where: { number }, limit: 1 })).items[0] as Stored<Rma>) ?? null
}

export const rmaEvent = (ctx: Ctx, verb: string, r: Rma, extra: Record<string, unknown> = {}) =>
  ctx.events.emit(
    `returns.rma.${verb}`,
    { rma: r.number, order: r.order, customer: r.customer, status: r.status, value: r.value, ...extra },
    { subject: r.number },
  )

/** Cents of a "12.34" amount (the value rule compares whole cents). */
const cents = (s: string) => {
  const [i, d = ''] = s.split('.')
  return BigInt(i!) * 100n + BigInt(d.padEnd(2, '0').slice(0, 2))
}
const daysBetween = (from: string, to: string) => Math.floor((Date.parse(to) - Date.parse(from)) / 86_400_000)

interface RequestBody {
  number?: string
  order: string
  lines: Array<{ line: number; quantity: number; reason: Reason; note?: string }>
}

async function request(req: RouteRequest<RequestBody>, ctx: Ctx): Promise<RouteResponse> {
  const b = req.body
  const number = b.number ?? `RMA-${ctx.invocationId.replace(/-/g, '').slice(-10).toUpperCase()}`
  if (await rmaOf(ctx, number)) return problem(RET.RMA_EXISTS, `return authorisation ${number} exists already`)
  const lines = new Map<number, number>()
  for (const l of b.lines) lines.set(l.line, (lines.get(l.line) ?? 0) + l.quantity)
  const asked = [...lines].map(([line, quantity]) => ({ line, quantity }))
  const q = await ctx.plugins.call<ReturnQuote>('@trellis/orders', 'quoteReturn', { order: b.order, lines: asked })
  if (!q.order) return problem(RET.ORDER_NOT_FOUND, `no order ${b.order}`)
  if (q.order.status !== 'invoiced')
    return problem(
      RET.NOT_INVOICED,
      `order ${b.order} is ${q.order.status}; goods come back only from an invoiced order`,
    )
  if (!q.ok || !q.credit)
    return problem(
      q.code === 'ORD_ERR_RETURN_EXCEEDS' ? RET.EXCEEDS_SHIPPED : RET.INVALID_LINES,
      q.detail ?? 'invalid lines',
    )
  const shipped = new Map(q.order.lines.map((l) => [l.line, l.shipped]))
  const refused = await hold(ctx, b.order, asked, (held) => {
    const over = asked.filter((a) => (held.get(a.line) ?? 0) > (shipped.get(a.line) ?? 0))
    return over.length
      ? over
          .map((a) => {
            const before = (held.get(a.line) ?? 0) - a.quantity
            return `line ${a.line}: ${a.quantity} asked back, ${shipped.get(a.line)} shipped of which ${before} are on other return authorisations`
          })
          .join('; ')
      : null
  })
  if (refused) return problem(RET.EXCEEDS_SHIPPED, refused)

  const by = who(ctx)
  const at = now()
  const days = q.order.invoicedDate ? daysBetween(q.order.invoicedDate, at.slice(0, 10)) : Number.POSITIVE_INFINITY
  const maxDays = Number(setting(ctx, 'autoApproveDays', 30))
  const maxValue = setting(ctx, 'autoApproveValue', '250.00')
  const auto = days <= maxDays && cents(q.credit.total) <= cents(maxValue)
  const skuOf = new Map(q.order.lines.map((l) => [l.line, l.sku]))
  const rma = await ctx.data.rmas.insert({
    number,
    order: b.order,
    customer: q.order.customer,
    status: auto ? 'approved' : 'pending_approval',
    lines: b.lines.map((l) => ({ ...l, sku: skuOf.get(l.line)! })),
    value: q.credit.total,
    valueExact: q.credit.totalExact,
    createdBy: by,
    ...(auto
      ? {
          approval: {
            by: 'rule',
            rule: `invoiced ${days} days ago (at most ${maxDays}) and worth ${q.credit.total} (at most ${maxValue})`,
            at,
          },
        }
      : {}),
    history: [{ status: 'requested', at, by }, ...(auto ? [{ status: 'approved' as const, at, by: 'rule' }] : [])],
  })
  await rmaEvent(ctx, 'requested', rma)
  if (auto) {
    await rmaEvent(ctx, 'approved', rma, { by: 'rule' })
    return { status: 201, body: rma, headers: { location: `/rmas/${number}` } }
  }
  const { instanceId } = await ctx.workflows.start('rmaApproval', { rma: number }, { startKey: `rma:${rma.id}` })
  return {
    status: 201,
    body: { ...rma, approvalWorkflow: { instanceId, task: { role: setting(ctx, 'approverRole', 'returns_manager') } } },
    headers: { location: `/rmas/${number}` },
  }
}

async function move(ctx: Ctx, r: Stored<Rma>, status: RmaStatus, by: string, patch: Partial<Rma>, note?: string) {
  const updated = (await ctx.data.rmas.update(
    r.id,
    { ...patch, status, history: [...r.history, { status, at: now(), by, ...(note ? { note } : {}) }] },
    r.version,
  )) as Stored<Rma>
  await rmaEvent(ctx, status, updated, { by, ...(note ? { note } : {}) })
  return updated
}

/** Approve or reject a return waiting for a person; whoever asked for it cannot decide it. */
export async function decide(
  ctx: Ctx,
  input: { rma: string; decision: 'approve' | 'reject'; reason: string; by: string },
): Promise<Stored<Rma>> {
  const r = await rmaOf(ctx, input.rma)
  if (!r) throw RET.RMA_NOT_FOUND({ detail: `no return authorisation ${input.rma}` })
  if (r.status !== 'pending_approval')
    throw RET.INVALID_TRANSITION({
      detail: `return authorisation ${r.number} is ${r.status}, not waiting for approval`,
    })
  if (input.by === r.createdBy)
    throw RET.SELF_APPROVAL({
      detail: `return authorisation ${r.number} was asked for by ${input.by}, who cannot decide it`,
    })
  if (input.decision === 'approve')
    return move(ctx, r, 'approved', input.by, { approval: { by: input.by, reason: input.reason, at: now() } })
  await hold(
    ctx,
    r.order,
    r.lines.map((l) => ({ line: l.line, quantity: -l.quantity })),
    () => null,
  )
  return move(ctx, r, 'rejected', input.by, {}, input.reason)
}

interface ReceiveBody {
  warehouse?: string
  lines: Array<{ line: number; quantity: number; outcome: Outcome }>
}

/**
 * The goods arrive: each line inspected (restock, scrap, return to supplier); restocked ones go
 * back into stock through inventory's `receive`; every received unit is credited at the order's
 * prices and discounts (orders' `recordReturn`, which the sales report nets out) on a credit note.
 */
async function receive(req: RouteRequest<ReceiveBody, { number: string }>, ctx: Ctx): Promise<RouteResponse> {
  const r = await rmaOf(ctx, req.params.number)
  if (!r) return problem(RET.RMA_NOT_FOUND, `no return authorisation ${req.params.number}`)
  if (r.status !== 'approved')
    return problem(
      RET.INVALID_TRANSITION,
      `return authorisation ${r.number} is ${r.status}; goods are received once it is approved`,
    )
  const { inspected, problems } = inspect(r.lines, req.body.lines)
  if (problems.length) return problem(RET.INVALID_LINES, problems.join('; '))
  const by = who(ctx)
  const lines = r.lines.map((l) => {
    const parts = inspected.get(l.line) ?? []
    const received = parts.reduce((a, p) => a + p.quantity, 0)
    return {
      ...l,
      received,
      ...(parts.length === 1 ? { outcome: parts[0]!.outcome } : {}),
      ...(parts.length ? { inspection: parts } : {}),
    }
  })
  // Only the units inspected as restockable go back into stock.
  const restock = lines
    .map((l) => ({ ...l, restocked: (l.inspection ?? []).find((p) => p.outcome === 'restock')?.quantity ?? 0 }))
    .filter((l) => l.restocked > 0)
  if (restock.length) {
    const res = await ctx.plugins.call<{ received: boolean; unknown?: string[] }>('@trellis/inventory', 'receive', {
      reference: r.number,
      reason: `returned goods restocked (return authorisation ${r.number}, order ${r.order})`,
      lines: restock.map((l) => ({
        sku: l.sku,
        quantity: l.restocked,
        ...(req.body.warehouse ? { warehouse: req.body.warehouse } : {}),
      })),
    })
    if (!res.received) throw RET.INVALID_LINES({ detail: `inventory does not know ${res.unknown?.join(', ')}` })
  }
  // What was authorised and did not come back is released for later returns.
  const released = lines.filter((l) => l.received < l.quantity)
  if (released.length)
    await hold(
      ctx,
      r.order,
      released.map((l) => ({ line: l.line, quantity: -(l.quantity - l.received) })),
      () => null,
    )
  const credited = lines.filter((l) => l.received > 0)
  let creditNote: string | undefined
  if (credited.length) {
    const c = await ctx.plugins.call<{
      ok: boolean
      code?: string
      detail?: string
      credit?: NonNullable<ReturnQuote['credit']>
    }>('@trellis/orders', 'recordReturn', {
      order: r.order,
      reference: r.number,
      lines: credited.map((l) => ({ line: l.line, quantity: l.received })),
    })
    if (!c.ok) throw RET.EXCEEDS_SHIPPED({ detail: c.detail ?? 'the order refused the return' })
    creditNote = `CN-${r.number}`
    const note = await ctx.data.creditNotes.insert({
      number: creditNote,
      rma: r.number,
      order: r.order,
      customer: r.customer,
      lines: c.credit!.lines,
      total: c.credit!.total,
      totalExact: c.credit!.totalExact,
      issuedAt: now(),
    })
    await ctx.events.emit(
      'returns.credit.issued',
      { creditNote: note.number, rma: r.number, order: r.order, customer: r.customer, total: note.total },
      { subject: note.number },
    )
  }
  const updated = await move(
    ctx,
    r,
    credited.length ? 'credited' : 'cancelled',
    by,
    { lines, ...(creditNote ? { creditNote } : {}) },
    lines
      .map(
        (l) =>
          `line ${l.line}: ${l.received} received${l.inspection ? ` (${l.inspection.map((p) => `${p.quantity} ${p.outcome}`).join(', ')})` : ''}`,
      )
      .join('; '),
  )
  await rmaEvent(ctx, 'received', updated, {
    lines: lines.map((l) => ({
      line: l.line,
      sku: l.sku,
      received: l.received,
      outcome: l.outcome ?? null,
      inspection: l.inspection ?? [],
    })),
  })
  return { status: 200, body: updated }
}

export const routes = {
  'POST /rmas': request,
  'GET /rmas': async (
    req: RouteRequest<null, Record<string, string>, { status?: string; order?: string; cursor?: string }>,
    ctx: Ctx,
  ) => {
    const where: Record<string, string> = {}
    if (req.query.status) where.status = req.query.status
    if (req.query.order) where.order = req.query.order
    return {
      status: 200,
      body: await ctx.data.rmas.find({ where, limit: 100, ...(req.query.cursor ? { cursor: req.query.cursor } : {}) }),
    }
  },
  'GET /rmas/:number': async (req: RouteRequest<null, { number: string }>, ctx: Ctx) => {
    const r = await rmaOf(ctx, req.params.number)
    return r ? { status: 200, body: r } : problem(RET.RMA_NOT_FOUND, `no return authorisation ${req.params.number}`)
  },
  'POST /rmas/:number/decision': async (
    req: RouteRequest<{ decision: 'approve' | 'reject'; reason: string }, { number: string }>,
    ctx: Ctx,
  ): Promise<RouteResponse> => {
    try {
      return { status: 200, body: await decide(ctx, { rma: req.params.number, ...req.body, by: who(ctx) }) }
    } catch (err) {
      return problemFromError(err, [RET])
    }
  },
  'POST /rmas/:number/receive': receive,
  'GET /credit-notes/:number': async (req: RouteRequest<null, { number: string }>, ctx: Ctx) => {
    const c = (await ctx.data.creditNotes.find({ where: { number: req.params.number }, limit: 1 })).items[0]
    return c ? { status: 200, body: c } : problem(RET.CREDIT_NOTE_NOT_FOUND, `no credit note ${req.params.number}`)
  },
}
