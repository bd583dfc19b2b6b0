/**
 * Durable workflows: a plugin declares a workflow's steps in its manifest and implements each
 * step as a function; the kernel runs every step as its own sandboxed invocation (one
 * transaction: the step's writes and its result commit together), persists the result, and
 * decides what runs next from what the step returns:
 *
 * - a plain value: the next step in the manifest's order gets it as input (after the last
 *   step, the workflow completes with it);
 * - `flow.next(step, input)`: branch to a named step;
 * - `flow.complete(output)` / `flow.fail(reason)`: end the workflow (failing runs the
 *   compensations of the completed steps, newest first);
 * - `flow.waitForEvent(type, { match, timeoutMs, next, onTimeout })`: wait for the tenant's
 *   event (which the workflow must declare in `waitsFor`);
 * - `flow.sleep(ms, next, input)`: a timer;
 * - `flow.task({...})`: a human task for a role (or a user), with a form, an SLA and an
 *   escalation role; the person's outcome picks the next step.
 *
 * Every helper returns plain JSON, so steps stay pure functions of their input and `ctx`.
 *
 * @example
 * ```ts
 * const approval = defineWorkflow({
 *   steps: {
 *     check: async (input: { orderId: string; discount: number }) =>
 *       input.discount > 0.2
 *         ? flow.task({ title: 'Approve discount', role: 'pricing_manager', outcomes: ['approve', 'reject'], next: { approve: 'apply', reject: 'refuse' }, slaMs: 4 * 3600_000, escalateTo: 'sales_director', input })
 *         : flow.next('apply', { task: null, input }),
 *     apply: async (input, ctx) => { ... },
 *     refuse: async () => flow.complete({ applied: false }),
 *   },
 * })
 * ```
 */
import type { JsonValue } from './context.js'
import type { JsonSchema } from './manifest-types.js'
import type { WorkflowDefinition } from './define-plugin.js'

/** A human task a step asks for. */
export interface HumanTaskSpec {
  /** What the person is asked to do. */
  title: string
  /** Role (name) whose holders may act; or give `assignee`. */
  role?: string
  /** A user id who alone may act. */
  assignee?: string
  /** JSON Schema the person's form data must satisfy. */
  form?: JsonSchema
  /** How long the task may wait before it is escalated (ms). */
  slaMs?: number
  /** Role the task passes to when the SLA is missed. */
  escalateTo?: string
  /** The outcomes a person may choose, e.g. `['approve', 'reject']`. */
  outcomes: string[]
  /** The step each outcome leads to. */
  next: Record<string, string>
  /** What the person sees with the task. */
  data?: JsonValue
  /** Carried to the next step as `input.input`. */
  input?: JsonValue
}

/** What a step may return to steer its workflow (besides a plain value). */
export type StepDirective =
  | { $workflow: 'next'; step: string; input?: JsonValue }
  | { $workflow: 'complete'; output?: JsonValue }
  | { $workflow: 'fail'; reason: string }
  | {
      $workflow: 'wait'
      event: string
      match?: Record<string, JsonValue>
      timeoutMs: number
      next: string
      onTimeout: string
      input?: JsonValue
    }
  | { $workflow: 'sleep'; ms: number; next: string; input?: JsonValue }
  | { $workflow: 'task'; task: HumanTaskSpec }

/** The input of the step after a human task. */
export interface TaskResult<I = JsonValue, D = Record<string, JsonValue>> {
  outcome: string
  /** The form data the person submitted. */
  data: D
  /** The user who completed it. */
  by: string
  /** The task's `input`. */
  input: I
}

/** The input of the step after `waitForEvent`: the event, or a timeout. */
export interface WaitResult<I = JsonValue> {
  /** The event that arrived (null on timeout). */
  event: { id: string; type: string; subject: string; data: JsonValue; time: string } | null
  timedOut: boolean
  input: I
}

/** Builders of {@link StepDirective}s. */
export const flow = {
  /** Go to `step` with `input`. */
  next: (step: string, input?: JsonValue): StepDirective => ({
    $workflow: 'next',
    step,
    ...(input === undefined ? {} : { input }),
  }),
  /** End the workflow successfully. */
  complete: (output?: JsonValue): StepDirective => ({
    $workflow: 'complete',
    ...(output === undefined ? {} : { output }),
  }),
  /** End the workflow as failed (compensations run). */
  fail: (reason: string): StepDirective => ({ $workflow: 'fail', reason }),
  /** Wait for an event of the tenant (`match`: fields of its data that must be equal). */
  waitForEvent: (
    event: string,
    opts: { match?: Record<string, JsonValue>; timeoutMs: number; next: string; onTimeout: string; input?: JsonValue },
  ): StepDirective => ({ $workflow: 'wait', event, ...opts }),
  /** Resume at `next` after `ms`. */
  sleep: (ms: number, next: string, input?: JsonValue): StepDirective => ({
    $workflow: 'sleep',
    ms,
    next,
    ...(input === undefined ? {} : { input }),
  }),
  /** Ask a person. */
  task: (task: HumanTaskSpec): StepDirective => ({ $workflow: 'task', task }),
}

/** Types a workflow definition (identity at run time). */
export function defineWorkflow<W extends WorkflowDefinition>(definition: W): W {
  return definition
}
