import { agentStep, defineWorkflow, flow, type AgentAnswer, type AgentOutcome } from '@trellis/plugin-sdk'
import type { Ctx } from './types.js'

/** What `orders.exception.raised` carries. */
export type RaisedException = {
  order: string
  customer?: string
  kind: string
  reason: string
  /** The approved passage on handling such an exception, when the knowledge base has one. */
  guidance?: string
}

/** The triage an agent proposes: what to do and which role decides. */
export type TriageProposal = {
  action: string
  role: string
}

/** A triage decided, as the copilot keeps it (`GET /triages`). */
export interface TriageRecord {
  order: string
  kind: string
  reason: string
  action: string
  role: string
  confidence: number
  reasons: string[]
  model: string
  recordId: string | null
  decidedBy: string
  overridden: boolean
  referral: string | null
  decidedAt: string
}

/** Today's rules: what each kind of exception gets without a model, and who decides it. */
const RULES: Record<string, TriageProposal> = {
  credit_hold: { action: 'review the customer’s credit and release or keep the hold', role: 'credit_controller' },
  price_approval: { action: 'approve the discount or reprice the line', role: 'pricing_manager' },
  stock_short: { action: 'expedite a purchase or split the delivery', role: 'inventory_planner' },
}

function rules(input: RaisedException): AgentAnswer<TriageProposal> | null {
  const rule = RULES[input.kind]
  // Below any threshold: the rules propose, a person decides.
  return rule ? { proposal: rule, confidence: 0.5, reasons: [`rule for ${input.kind} exceptions`] } : null
}

const triage = agentStep<RaisedException, TriageProposal>(
  {
    name: 'order-exception-triage',
    prompt: 'triage',
    slots: (i) => ({ kind: i.kind, reason: i.reason, order: i.order, guidance: i.guidance ?? 'none' }),
    proposal: {
      type: 'object',
      required: ['action', 'role'],
      properties: { action: { type: 'string', maxLength: 300 }, role: { type: 'string', maxLength: 100 } },
    },
    threshold: 0.8,
    role: (i, p) => p?.role ?? RULES[i.kind]?.role ?? 'sales_manager',
    title: (i) => `Triage the ${i.kind.replace(/_/g, ' ')} exception on order ${i.order}`,
    fallback: rules,
    next: 'record',
    slaMs: 8 * 3_600_000,
  },
  'triageDecided',
)

/**
 * Order exceptions triaged by an agent: each new exception gets a recommended action and the
 * role that should decide it, grounded in the approved passage on such exceptions when there
 * is one. A sure recommendation is recorded as the agent's; an unsure one (or none, with the
 * rules' proposal) is a task for that role, and the person's decision is recorded as theirs.
 * The copilot changes no order: the exception stays for its owner to resolve.
 */
export const exceptionTriage = defineWorkflow({
  steps: {
    intake: async (input: { event: { data: RaisedException } }, ctx: Ctx) => {
      const e = input.event.data
      const kb = ctx.settings.knowledgeBase ?? 'sales'
      let guidance = ''
      try {
        const found = await ctx.knowledge.search(kb, `${e.kind.replace(/_/g, ' ')} exception`, { k: 1 })
        guidance = found.items[0]?.text ?? ''
      } catch (err) {
        if (!(err as { code?: string }).code?.startsWith('KB_ERR_')) throw err
      }
      return flow.next('triage', { order: e.order, kind: e.kind, reason: e.reason, guidance })
    },
    triage: triage.ask,
    triageDecided: triage.decided,
    record: async (out: AgentOutcome<RaisedException, TriageProposal | null>, ctx: Ctx) => {
      const d = out.decision
      const rec: TriageRecord = {
        order: out.input.order,
        kind: out.input.kind,
        reason: out.input.reason,
        action: d.proposal?.action ?? '',
        role: d.proposal?.role ?? '',
        confidence: d.confidence,
        reasons: d.reasons,
        model: d.model,
        recordId: d.recordId,
        decidedBy: d.decidedBy,
        overridden: d.overridden,
        referral: d.referral,
        decidedAt: new Date().toISOString(),
      }
      await ctx.data.triages.insert(rec)
      return flow.complete(rec as unknown as Record<string, string>)
    },
  },
})
