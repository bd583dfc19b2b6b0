// The people in procurement's loop: a purchasing manager approves a purchase order over the
// threshold, accounts payable decides an invoice exception — each a task with an SLA, passing to
// the escalation role when it is missed, the way the orders plugin's price exceptions work.
import { defineWorkflow, flow } from '@trellis/plugin-sdk'
import { PUR } from './errors.js'
import type { Ctx, PurchaseOrder } from './types.js'
import { decide } from './purchase-orders.js'
import { decideInvoice, invoiceOf } from './invoices.js'
import { poOf, setting } from './store.js'
import { refreshForecasts } from './refresh.js'

const reasonForm = {
  type: 'object',
  required: ['reason'],
  properties: { reason: { type: 'string', minLength: 1, maxLength: 500 } },
}
const hours = (ctx: Ctx, name: string) => Math.round(Number(setting(ctx, name, 24)) * 3_600_000)

interface Decision {
  outcome: string
  data: { reason: string }
  by: string
  input: { po?: string; invoice?: string }
}

const poTask = (ctx: Ctx, po: PurchaseOrder, note?: string) =>
  flow.task({
    title: `Approve purchase order ${po.number} from ${po.supplier} (${po.total})${note ? ` — ${note}` : ''}`,
    role: setting(ctx, 'approverRole', 'purchasing_manager'),
    escalateTo: setting(ctx, 'escalateTo', 'purchasing_director'),
    slaMs: hours(ctx, 'slaHours'),
    form: reasonForm,
    outcomes: ['approve', 'reject'],
    next: { approve: 'decide', reject: 'decide' },
    data: {
      po: po.number,
      supplier: po.supplier,
      total: po.total,
      raisedBy: po.createdBy,
      lines: po.lines.map((l) => ({ sku: l.sku, quantity: l.quantity, unitCost: l.unitCost })),
    },
    input: { po: po.number },
  })

export const poApproval = defineWorkflow({
  steps: {
    review: async (input: { po: string }, ctx: Ctx) => {
      const po = await poOf(ctx, input.po)
      if (po?.status !== 'pending_approval') return flow.complete({ po: input.po, alreadyDecided: true })
      return poTask(ctx, po)
    },
    decide: async (input: Decision, ctx: Ctx) => {
      try {
        const po = await decide(ctx, {
          po: input.input.po!,
          decision: input.outcome === 'approve' ? 'approve' : 'reject',
          reason: input.data.reason,
          by: `user:${input.by}`,
          workflow: 'poApproval',
        })
        return flow.complete({ po: po.number, decision: input.outcome })
      } catch (err) {
        // The one who raised the order cannot decide it: the task goes back to the role.
        if (PUR.SELF_APPROVAL.is(err)) {
          const po = await poOf(ctx, input.input.po!)
          if (po) return poTask(ctx, po, 'the buyer who raised it cannot decide it')
        }
        if (PUR.INVALID_TRANSITION.is(err)) return flow.complete({ po: input.input.po ?? null, alreadyDecided: true })
        throw err
      }
    },
  },
})

export const invoiceException = defineWorkflow({
  steps: {
    review: async (input: { invoice: string }, ctx: Ctx) => {
      const inv = await invoiceOf(ctx, input.invoice)
      if (inv?.status !== 'exception') return flow.complete({ invoice: input.invoice, alreadyDecided: true })
      return flow.task({
        title: `Invoice ${inv.number} from ${inv.supplier} does not match purchase order ${inv.po}`,
        role: setting(ctx, 'payablesRole', 'accounts_payable'),
        escalateTo: setting(ctx, 'payablesEscalateTo', 'purchasing_manager'),
        slaMs: hours(ctx, 'invoiceSlaHours'),
        form: reasonForm,
        outcomes: ['approve', 'reject'],
        next: { approve: 'decide', reject: 'decide' },
        data: { invoice: inv.number, po: inv.po, supplier: inv.supplier, total: inv.total, mismatches: inv.mismatches },
        input: { invoice: inv.number },
      })
    },
    decide: async (input: Decision, ctx: Ctx) => {
      try {
        const inv = await decideInvoice(ctx, {
          invoice: input.input.invoice!,
          decision: input.outcome === 'approve' ? 'approve' : 'reject',
          reason: input.data.reason,
          by: `user:${input.by}`,
        })
        return flow.complete({ invoice: inv.number, status: inv.status, payable: inv.payable })
      } catch (err) {
        if (PUR.NO_OPEN_EXCEPTION.is(err))
          return flow.complete({ invoice: input.input.invoice ?? null, alreadyDecided: true })
        throw err
      }
    },
  },
})

/**
 * Nightly (or started through the API, with `{ sku }` for one SKU): the SKUs' demand forecasts
 * refreshed from the insights layer and recorded, suggesting what projected stock calls for.
 */
export const forecastRefresh = defineWorkflow({
  steps: {
    refresh: async (input: { sku?: string } | null, ctx: Ctx) =>
      flow.complete({ ...(await refreshForecasts(ctx, input?.sku ? [input.sku] : undefined)) }),
  },
})
