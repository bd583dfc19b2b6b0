// Supplier invoices, matched three ways: each invoiced line against the purchase order's line
// (unit cost, within the price tolerance) and against what was received and not yet invoiced
// (quantity, within the quantity tolerance). A match is payable; a mismatch is an invoice
// exception, a task for accounts payable, and payable only once they approve it.
import { problem, problemFromError, type RouteRequest, type RouteResponse } from '@trellis/plugin-sdk'
import { PUR } from './errors.js'
import type { Ctx, InvoiceStatus, PurchaseOrder, Stored, SupplierInvoice } from './types.js'
import { cents, micros } from './money.js'
import { now, poOf, setting, who } from './store.js'

type InvoiceBody = Pick<SupplierInvoice, 'number' | 'supplier' | 'po' | 'lines'> & { invoiceDate?: string }

export async function invoiceOf(ctx: Ctx, number: string): Promise<Stored<SupplierInvoice> | null> {
  return ((await ctx.data.invoices.find({ where: { number }, limit: 1 })).items[0] as Stored<SupplierInvoice>) ?? null
}

/** Quantity per PO line already on the order's other invoices (rejected ones do not count). */
async function invoicedBefore(ctx: Ctx, po: string): Promise<Map<number, number>> {
  const page = await ctx.data.invoices.find({ where: { po, status: { ne: 'rejected' } }, limit: 1000 })
  const out = new Map<number, number>()
  for (const inv of page.items) for (const l of inv.lines) out.set(l.line, (out.get(l.line) ?? 0) + l.quantity)
  return out
}

/** Fraction → 10^-6 units of a fraction (0.02 → 20000n). */
const frac = (v: number) => BigInt(Math.round(v * 1_000_000))

export function match(
  po: PurchaseOrder,
  lines: SupplierInvoice['lines'],
  before: Map<number, number>,
  tol: { price: number; quantity: number },
): SupplierInvoice['mismatches'] {
  const out: SupplierInvoice['mismatches'] = []
  for (const l of lines) {
    const pl = po.lines.find((x) => x.line === l.line)
    if (!pl) {
      out.push({ line: l.line, kind: 'line', detail: `purchase order ${po.number} has no line ${l.line}` })
      continue
    }
    const open = pl.received - (before.get(l.line) ?? 0)
    // |invoiced − received| ≤ tolerance × received, in whole units.
    if (Math.abs(l.quantity - open) > Math.floor(open * tol.quantity))
      out.push({
        line: l.line,
        kind: 'quantity',
        detail: `line ${l.line} (${pl.sku}): ${l.quantity} invoiced, ${open} received and not yet invoiced`,
      })
    const ordered = micros(pl.unitCost)!
    const diff = micros(l.unitCost)! - ordered
    if ((diff < 0n ? -diff : diff) * 1_000_000n > ordered * frac(tol.price))
      out.push({
        line: l.line,
        kind: 'price',
        detail: `line ${l.line} (${pl.sku}): invoiced at ${l.unitCost}, ordered at ${pl.unitCost} (tolerance ${tol.price * 100} %)`,
      })
  }
  return out
}

async function record(req: RouteRequest<InvoiceBody>, ctx: Ctx): Promise<RouteResponse> {
  const b = req.body
  if (await invoiceOf(ctx, b.number))
    return problem(PUR.INVOICE_EXISTS, `supplier invoice ${b.number} is recorded already`)
  const po = await poOf(ctx, b.po)
  if (!po) return problem(PUR.PO_NOT_FOUND, `no purchase order ${b.po}`)
  if (po.supplier !== b.supplier)
    return problem(PUR.UNKNOWN_SUPPLIER, `purchase order ${po.number} is from ${po.supplier}, not ${b.supplier}`)
  const bad = b.lines.filter((l) => micros(l.unitCost) === null)
  if (bad.length)
    return problem(PUR.INVALID_LINES, bad.map((l) => `line ${l.line}: ${l.unitCost} is not an amount`).join('; '))
  const mismatches = match(po, b.lines, await invoicedBefore(ctx, po.number), {
    price: Number(setting(ctx, 'priceTolerance', 0.02)),
    quantity: Number(setting(ctx, 'quantityTolerance', 0)),
  })
  const status: InvoiceStatus = mismatches.length ? 'exception' : 'matched'
  const total = cents(b.lines.reduce((a, l) => a + micros(l.unitCost)! * BigInt(l.quantity), 0n))
  const by = who(ctx)
  const inv = await ctx.data.invoices.insert({
    number: b.number,
    supplier: b.supplier,
    po: po.number,
    ...(b.invoiceDate ? { invoiceDate: b.invoiceDate } : {}),
    lines: b.lines,
    total,
    status,
    payable: !mismatches.length,
    mismatches,
    history: [{ status, at: now(), by }],
  })
  await ctx.events.emit(
    `procurement.invoice.${status === 'matched' ? 'matched' : 'exception'}`,
    { invoice: inv.number, po: po.number, supplier: po.supplier, total, payable: inv.payable, mismatches },
    { subject: inv.number },
  )
  if (!mismatches.length) return { status: 201, body: inv }
  const { instanceId } = await ctx.workflows.start(
    'invoiceException',
    { invoice: inv.number },
    { startKey: `invoice:${inv.id}` },
  )
  return {
    status: 201,
    body: {
      ...inv,
      exceptionWorkflow: { instanceId, task: { role: setting(ctx, 'payablesRole', 'accounts_payable') } },
    },
  }
}

/** Accounts payable decides an invoice exception: approve makes it payable, reject refuses it. */
export async function decideInvoice(
  ctx: Ctx,
  input: { invoice: string; decision: 'approve' | 'reject'; reason: string; by: string },
): Promise<Stored<SupplierInvoice>> {
  const inv = await invoiceOf(ctx, input.invoice)
  if (!inv) throw PUR.INVOICE_NOT_FOUND({ detail: `no supplier invoice ${input.invoice}` })
  if (inv.status !== 'exception')
    throw PUR.NO_OPEN_EXCEPTION({ detail: `supplier invoice ${inv.number} is ${inv.status}, not an open exception` })
  const status: InvoiceStatus = input.decision === 'approve' ? 'approved' : 'rejected'
  const updated = (await ctx.data.invoices.update(
    inv.id,
    {
      status,
      payable: status === 'approved',
      history: [...inv.history, { status, at: now(), by: input.by, note: input.reason }],
    },
    inv.version,
  )) as Stored<SupplierInvoice>
  await ctx.events.emit(
    `procurement.invoice.${status}`,
    {
      invoice: inv.number,
      po: inv.po,
      supplier: inv.supplier,
      total: inv.total,
      payable: updated.payable,
      by: input.by,
    },
    { subject: inv.number },
  )
  return updated
}

export const invoiceRoutes = {
  'POST /invoices': record,
  'GET /invoices': async (
    req: RouteRequest<
      null,
      Record<string, string>,
      { status?: string; po?: string; payable?: string; cursor?: string }
    >,
    ctx: Ctx,
  ) => {
    const where: Record<string, unknown> = {}
    if (req.query.status) where.status = req.query.status
    if (req.query.po) where.po = req.query.po
    if (req.query.payable) where.payable = req.query.payable === 'true'
    return {
      status: 200,
      body: await ctx.data.invoices.find({
        where,
        limit: 100,
        ...(req.query.cursor ? { cursor: req.query.cursor } : {}),
      }),
    }
  },
  'GET /invoices/:number': async (req: RouteRequest<null, { number: string }>, ctx: Ctx) => {
    const inv = await invoiceOf(ctx, req.params.number)
    return inv ? { status: 200, body: inv } : problem(PUR.INVOICE_NOT_FOUND, `no supplier invoice ${req.params.number}`)
  },
  'POST /invoices/:number/decision': async (
    req: RouteRequest<{ decision: 'approve' | 'reject'; reason: string }, { number: string }>,
    ctx: Ctx,
  ): Promise<RouteResponse> => {
    try {
      return { status: 200, body: await decideInvoice(ctx, { invoice: req.params.number, ...req.body, by: who(ctx) }) }
    } catch (err) {
      return problemFromError(err, [PUR])
    }
  },
}
