import { problem, type RouteRequest } from '@trellis/plugin-sdk'
import { askAndKeep, answering } from './ask.js'
import { CPL } from './errors.js'
import type { Cited, Ctx } from './types.js'

/** The part of an order (from `@trellis/orders#getOrder`) the copilot reads. */
interface OrderView {
  number: string
  customer: string
  customerName?: string
  status: string
  total: string
  currency: string
  stock: string
  exceptions: Array<{ kind: string; reason: string; status: 'open' | 'resolved'; raisedAt: string }>
}

/** What the copilot says blocks an order, and on what it rests. */
export interface Blockers {
  order: { number: string; customer: string; status: string; total: string; currency: string }
  blocked: boolean
  blockers: Array<{
    kind: string
    reason: string
    raisedAt: string
    /** The approved passages on how such an exception is resolved, or none (then escalated). */
    guidance: { answered: boolean; text: string; citations: Cited[]; escalationId: string | null }
  }>
  /** The records the answer used. */
  records: Array<{ plugin: string; kind: string; id: string }>
}

/**
 * What blocks an order: its open exceptions, read through `@trellis/orders#getOrder` with the
 * caller's permissions, each with the approved passages on how it is resolved (asked of the
 * knowledge base for the caller, so only passages their roles may read). The copilot changes
 * nothing: the people who own the exceptions decide.
 */
export async function orderBlockers(req: RouteRequest, ctx: Ctx) {
  const number = String(req.params.number)
  const order = await ctx.plugins.call<OrderView | null>('@trellis/orders', 'getOrder', { order: number })
  if (!order) return problem(CPL.ORDER_NOT_FOUND, `no order ${number}`)
  return answering(async (): Promise<Blockers> => {
    const kb = ctx.settings.knowledgeBase ?? 'sales'
    const open = order.exceptions.filter((e) => e.status === 'open')
    const blockers: Blockers['blockers'] = []
    for (const e of open) {
      // The kind in words ("credit hold"): the reason's amounts would only dilute the retrieval.
      const q = await askAndKeep(ctx, kb, 'order', `Who resolves a ${e.kind.replace(/_/g, ' ')} exception?`)
      blockers.push({
        kind: e.kind,
        reason: e.reason,
        raisedAt: e.raisedAt,
        guidance: { answered: q.answered, text: q.text, citations: q.citations, escalationId: q.escalationId },
      })
    }
    return {
      order: {
        number: order.number,
        customer: order.customerName ?? order.customer,
        status: order.status,
        total: order.total,
        currency: order.currency,
      },
      blocked: open.length > 0,
      blockers,
      records: [{ plugin: '@trellis/orders', kind: 'order', id: order.number }],
    }
  })
}
