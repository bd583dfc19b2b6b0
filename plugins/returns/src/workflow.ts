// A return outside the automatic-approval rules waits for the returns manager: a task with an
// SLA, passing to the escalation role when it is missed.
import { defineWorkflow, flow } from '@trellis/plugin-sdk'
import { RET } from './errors.js'
import type { Ctx, Rma } from './types.js'
import { decide, rmaOf } from './rmas.js'

const setting = (ctx: Ctx, name: string, fallback: string | number) =>
  ((ctx.settings as Record<string, unknown>)[name] as string | number | undefined) ?? fallback

const task = (ctx: Ctx, r: Rma, note?: string) =>
  flow.task({
    title: `Approve return ${r.number} of order ${r.order} (${r.customer}, ${r.value})${note ? ` — ${note}` : ''}`,
    role: String(setting(ctx, 'approverRole', 'returns_manager')),
    escalateTo: String(setting(ctx, 'escalateTo', 'sales_director')),
    slaMs: Math.round(Number(setting(ctx, 'slaHours', 24)) * 3_600_000),
    form: {
      type: 'object',
      required: ['reason'],
      properties: { reason: { type: 'string', minLength: 1, maxLength: 500 } },
    },
    outcomes: ['approve', 'reject'],
    next: { approve: 'decide', reject: 'decide' },
    data: {
      rma: r.number,
      order: r.order,
      customer: r.customer,
      value: r.value,
      lines: r.lines.map((l) => ({ line: l.line, sku: l.sku, quantity: l.quantity, reason: l.reason })),
    },
    input: { rma: r.number },
  })

export const rmaApproval = defineWorkflow({
  steps: {
    review: async (input: { rma: string }, ctx: Ctx) => {
      const r = await rmaOf(ctx, input.rma)
      return r?.status === 'pending_approval' ? task(ctx, r) : flow.complete({ rma: input.rma, alreadyDecided: true })
    },
    decide: async (
      input: { outcome: string; data: { reason: string }; by: string; input: { rma: string } },
      ctx: Ctx,
    ) => {
      try {
        const r = await decide(ctx, {
          rma: input.input.rma,
          decision: input.outcome === 'approve' ? 'approve' : 'reject',
          reason: input.data.reason,
          by: `user:${input.by}`,
        })
        return flow.complete({ rma: r.number, status: r.status })
      } catch (err) {
        if (RET.SELF_APPROVAL.is(err)) {
          const r = await rmaOf(ctx, input.input.rma)
          if (r) return task(ctx, r, 'whoever asked for it cannot decide it')
        }
        if (RET.INVALID_TRANSITION.is(err)) return flow.complete({ rma: input.input.rma, alreadyDecided: true })
        throw err
      }
    },
  },
})
