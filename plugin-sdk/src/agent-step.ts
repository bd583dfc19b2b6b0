/**
 * Agents as workflow steps: a bounded task (classify, extract, triage, route) asked of the
 * tenant's model through `ctx.ai.complete` with an output schema, answered as a proposal with a
 * confidence and its reasons. At or above the threshold the workflow proceeds with the
 * proposal; below it — or when the model cannot answer (AI off, budget spent, an answer that
 * does not fit the schema) — a task goes to the accountable role with the proposal prefilled,
 * and the person's decision is what proceeds. Every decision carries its inputs' record, the
 * model, the confidence and who decided (`agent`, or the person who confirmed or overrode it).
 *
 * AI assists, people decide: an agent whose proposal would change prices, credit or contracts
 * sets `threshold: 'always-ask'`, so a person always decides.
 */
import type { JsonValue, PluginContext } from './context.js'
import type { JsonSchema } from './manifest-types.js'
import type { TaskResult } from './workflow.js'
import { flow, type StepDirective } from './workflow.js'

/** What the model is asked to return around the proposal. */
export interface AgentAnswer<P> {
  proposal: P
  /** 0..1: how sure the model is. */
  confidence: number
  reasons: string[]
  /** Who proposed, when not the chat model (e.g. the embedding model that found the nearest examples). */
  model?: string
  /** The AI call's record behind the proposal, when there is one. */
  recordId?: string | null
}

/** A decision an agent step took or a person took for it. */
export interface AgentDecision<P = JsonValue> {
  agent: string
  proposal: P
  confidence: number
  reasons: string[]
  /** `agent` when the proposal passed the threshold; else the user who decided. */
  decidedBy: string
  /** Set when a person changed the proposal. */
  overridden: boolean
  /** The model that answered (`rules` when the fallback proposed). */
  model: string
  /** The AI call's record (its masked inputs, model, answer, tokens): `GET /v1/ai/records/<id>`. */
  recordId: string | null
  /** Why the model did not decide, when it did not (an `AI_ERR_*` code, or `below-threshold`). */
  referral: string | null
}

/** An agent step's definition. */
export interface AgentSpec<I, P extends JsonValue> {
  /** The agent's name (shown on tasks and decisions). */
  name: string
  /** A prompt template declared in the manifest's `prompts`, and its slots from the input. */
  prompt: string
  slots: (input: I) => Record<string, string>
  /** JSON Schema of the proposal. */
  proposal: JsonSchema
  /** Proceed without a person at or above this confidence (it may depend on the input, e.g. an installation's setting); `always-ask` sends every proposal to a person. */
  threshold: number | 'always-ask' | ((input: I) => number | 'always-ask')
  /** The role accountable for the decision (may depend on the proposal). */
  role: (input: I, proposal: P | null) => string
  /** The task's title for a person. */
  title: (input: I) => string
  /**
   * A second proposer, asked when the chat model cannot answer in the schema (the embedded
   * default's extractive model never can) — e.g. the nearest labelled examples by the tenant's
   * embedding model. Its answer names its `model`; at or above the threshold it proceeds like the
   * chat model's. An `AI_ERR_*` it throws sends the step on to `fallback`.
   */
  propose?: (input: I, ctx: PluginContext) => Promise<AgentAnswer<P> | null>
  /** Today's rules: a proposal and its confidence when no model gives one (or null: ask a person with nothing prefilled). A person always decides it. */
  fallback?: (input: I) => AgentAnswer<P> | null
  /** The step that receives `{ decision, input }` once decided (by the agent or a person). */
  next: string
  /** How long the task may wait (ms), and who it passes to after that. */
  slaMs?: number
  escalateTo?: string
}

/** The input of the step after an agent step. */
export interface AgentOutcome<I = JsonValue, P = JsonValue> {
  decision: AgentDecision<P>
  input: I
}

const wrapped = (proposal: JsonSchema): Record<string, unknown> => ({
  type: 'object',
  required: ['proposal', 'confidence', 'reasons'],
  properties: {
    proposal,
    confidence: { type: 'number', minimum: 0, maximum: 1 },
    reasons: { type: 'array', items: { type: 'string' }, maxItems: 10 },
  },
})

/**
 * The two steps of an agent: `ask` (put it in the workflow under any name, e.g. `triage`) and
 * `decided` (under the name `<ask>Decided`, the step the task leads to), which turns the person's
 * decision into the same {@link AgentOutcome} the agent's own decision gives `next`.
 */
export function agentStep<I extends JsonValue, P extends JsonValue>(spec: AgentSpec<I, P>, decidedStep: string) {
  const ask = async (input: I, ctx: PluginContext): Promise<StepDirective> => {
    let answer: AgentAnswer<P> | null = null
    let model = 'rules'
    let recordId: string | null = null
    let referral: string | null = null
    try {
      const r = await ctx.ai.complete({
        prompt: spec.prompt,
        slots: spec.slots(input),
        schema: wrapped(spec.proposal),
      })
      answer = r.json as AgentAnswer<P>
      model = r.model
      recordId = r.recordId
    } catch (err) {
      referral = aiRefusal(err)
    }
    if (answer === null && spec.propose) {
      try {
        answer = await spec.propose(input, ctx)
        if (answer) {
          model = answer.model ?? 'unnamed'
          recordId = answer.recordId ?? null
          referral = null
        }
      } catch (err) {
        referral = aiRefusal(err)
      }
    }
    if (answer === null) answer = spec.fallback?.(input) ?? null
    const threshold = typeof spec.threshold === 'function' ? spec.threshold(input) : spec.threshold
    const sure = answer !== null && model !== 'rules' && threshold !== 'always-ask' && answer.confidence >= threshold
    const decision: AgentDecision<P | null> = {
      agent: spec.name,
      proposal: answer?.proposal ?? null,
      confidence: answer?.confidence ?? 0,
      reasons: answer?.reasons ?? [],
      decidedBy: 'agent',
      overridden: false,
      model,
      recordId,
      referral: sure ? null : (referral ?? 'below-threshold'),
    }
    if (sure) return flow.next(spec.next, { decision, input } as unknown as JsonValue)
    return flow.task({
      title: spec.title(input),
      role: spec.role(input, answer?.proposal ?? null),
      outcomes: ['accept', 'override'],
      next: { accept: decidedStep, override: decidedStep },
      form: { type: 'object', properties: { proposal: spec.proposal } },
      data: decision as unknown as JsonValue,
      input: { decision, input } as unknown as JsonValue,
      ...(spec.slaMs ? { slaMs: spec.slaMs } : {}),
      ...(spec.escalateTo ? { escalateTo: spec.escalateTo } : {}),
    })
  }
  const decided = async (result: TaskResult<AgentOutcome<I, P | null>, { proposal?: P }>): Promise<StepDirective> => {
    const { decision, input } = result.input
    const overridden = result.outcome === 'override' && result.data.proposal !== undefined
    const out: AgentOutcome<I, P | null> = {
      input,
      decision: {
        ...decision,
        proposal: overridden ? (result.data.proposal as P) : decision.proposal,
        decidedBy: result.by,
        overridden,
      },
    }
    return flow.next(spec.next, out as unknown as JsonValue)
  }
  return { ask, decided }
}

/** The code of a model call the kernel refused (`AI_ERR_*`); anything else is the step's own failure. */
function aiRefusal(err: unknown): string {
  const code = (err as { code?: string }).code
  if (!code?.startsWith('AI_ERR_')) throw err
  return code
}
