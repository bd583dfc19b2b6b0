// The pricing-exception workflow: a person decides a discount over the approval threshold.
import { defineWorkflow, flow } from '@trellis/plugin-sdk'
import { ORD } from './errors.js'
import type { Ctx, ExceptionKind } from './types.js'
import { orderOf } from './store.js'
import { resolveException } from './exceptions.js'

interface ExceptionRaised {
  event: { data: { order: string; customer: string; kind: ExceptionKind; reason: string } }
}

/**
 * A discount over the approval threshold opens this workflow: a person holding the approver
 * role (with an SLA, then the escalation role) approves or rejects it, and the decision is
 * applied as `resolveException` would — approve keeps the discount, reject reprices the line.
 */
export const priceException = defineWorkflow({
  steps: {
    review: async (input: ExceptionRaised, ctx: Ctx) => {
      const { order, customer, kind, reason } = input.event.data
      if (kind !== 'price_approval' || ctx.settings.priceApprovalWorkflow === false)
        return flow.complete({ order, skipped: true })
      const o = await orderOf(ctx, order)
      const open = o?.exceptions.find((e) => e.kind === 'price_approval' && e.status === 'open')
      if (!o || !open) return flow.complete({ order, alreadyResolved: true })
      return flow.task({
        title: `Approve the discount on order ${order} (${customer})`,
        role: typeof ctx.settings.approverRole === 'string' ? ctx.settings.approverRole : 'pricing_manager',
        escalateTo: typeof ctx.settings.escalateTo === 'string' ? ctx.settings.escalateTo : 'sales_director',
        slaMs: Math.round((typeof ctx.settings.slaHours === 'number' ? ctx.settings.slaHours : 24) * 3_600_000),
        form: {
          type: 'object',
          required: ['reason'],
          properties: { reason: { type: 'string', minLength: 1, maxLength: 500 } },
        },
        outcomes: ['approve', 'reject'],
        next: { approve: 'decide', reject: 'decide' },
        data: {
          order,
          customer,
          reason,
          total: o.total,
          lines: o.lines
            .filter((l) => l.needsApproval)
            .map((l) => ({ sku: l.sku, quantity: l.quantity, discount: l.discount })),
        },
        input: { order },
      })
    },
    decide: async (
      input: { outcome: string; data: { reason: string }; by: string; input: { order: string } },
      ctx: Ctx,
    ) => {
      try {
        const o = await resolveException(ctx, {
          order: input.input.order,
          kind: 'price_approval',
          decision: input.outcome === 'approve' ? 'approve' : 'reject',
          reason: input.data.reason,
          decidedBy: input.by,
        })
        return flow.complete({ order: o.number, decision: input.outcome, total: o.total })
      } catch (err) {
        // Resolved meanwhile through the route: nothing left to decide.
        if (ORD.NO_OPEN_EXCEPTION.is(err)) return flow.complete({ order: input.input.order, alreadyResolved: true })
        throw err
      }
    },
  },
})
