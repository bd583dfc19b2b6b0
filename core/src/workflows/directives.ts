import type { ManifestWorkflow, StepDirective } from '@trellis/plugin-sdk'
import { compileJsonSchema } from '@trellis/plugin-sdk'
import { WFL } from './errors.js'

/** What the runtime does after a step, decided from the step's (untrusted) output. */
export type Next =
  | { kind: 'step'; step: string; input: unknown }
  | { kind: 'complete'; output: unknown }
  | { kind: 'fail'; reason: string }
  | {
      kind: 'wait'
      event: string
      match: Record<string, unknown>
      timeoutMs: number
      next: string
      onTimeout: string
      input: unknown
    }
  | { kind: 'sleep'; ms: number; next: string; input: unknown }
  | { kind: 'task'; task: TaskSpec }

export interface TaskSpec {
  title: string
  role: string | null
  assignee: string | null
  form: Record<string, unknown> | null
  slaMs: number | null
  escalateTo: string | null
  outcomes: string[]
  next: Record<string, string>
  data: unknown
  input: unknown
}

const MAX_WAIT_MS = 366 * 24 * 3600_000
const ROLE = /^[a-z][a-z0-9_-]{0,99}$/
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const OUTCOME = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/

/** The steps a plain return value walks through: the manifest's order without compensation steps. */
export function mainSteps(wf: ManifestWorkflow): string[] {
  const comp = new Set(Object.values(wf.compensate ?? {}))
  return wf.steps.filter((s) => !comp.has(s))
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const nonNegative = (v: unknown, max: number) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max

/** Reads what a step returned; a malformed directive is the step's error (`WFL_ERR_BAD_DIRECTIVE`). */
export function nextAfter(wf: ManifestWorkflow, step: string, output: unknown): Next {
  const steps = new Set(wf.steps)
  const known = (s: unknown, what: string): string => {
    if (typeof s !== 'string' || !steps.has(s))
      throw WFL.BAD_DIRECTIVE({ reason: `${what} "${String(s)}" is not a step of the workflow` })
    return s
  }
  if (!isObject(output) || typeof output.$workflow !== 'string') {
    const order = mainSteps(wf)
    const i = order.indexOf(step)
    const following = i >= 0 ? order[i + 1] : undefined
    return following
      ? { kind: 'step', step: following, input: output ?? null }
      : { kind: 'complete', output: output ?? null }
  }
  const d = output as unknown as StepDirective & Record<string, unknown>
  switch (d.$workflow) {
    case 'next':
      return { kind: 'step', step: known(d.step, 'next'), input: d.input ?? null }
    case 'complete':
      return { kind: 'complete', output: d.output ?? null }
    case 'fail':
      return { kind: 'fail', reason: typeof d.reason === 'string' ? d.reason.slice(0, 2000) : 'failed' }
    case 'wait': {
      if (typeof d.event !== 'string' || !(wf.waitsFor ?? []).includes(d.event))
        throw WFL.BAD_DIRECTIVE({
          reason: `the workflow may only wait for events it declares in waitsFor (not "${String(d.event)}")`,
        })
      if (!nonNegative(d.timeoutMs, MAX_WAIT_MS))
        throw WFL.BAD_DIRECTIVE({ reason: 'waitForEvent needs a timeoutMs of at most a year' })
      if (d.match !== undefined && !isObject(d.match))
        throw WFL.BAD_DIRECTIVE({ reason: 'match must be an object of data fields' })
      return {
        kind: 'wait',
        event: d.event,
        match: (d.match as Record<string, unknown>) ?? {},
        timeoutMs: d.timeoutMs,
        next: known(d.next, 'next'),
        onTimeout: known(d.onTimeout, 'onTimeout'),
        input: d.input ?? null,
      }
    }
    case 'sleep':
      if (!nonNegative(d.ms, MAX_WAIT_MS)) throw WFL.BAD_DIRECTIVE({ reason: 'sleep needs ms of at most a year' })
      return { kind: 'sleep', ms: d.ms, next: known(d.next, 'next'), input: d.input ?? null }
    case 'task':
      return { kind: 'task', task: readTask(d.task, known) }
  }
  throw WFL.BAD_DIRECTIVE({ reason: `unknown directive "${String((output as { $workflow: unknown }).$workflow)}"` })
}

function readTask(t: unknown, known: (s: unknown, what: string) => string): TaskSpec {
  if (!isObject(t)) throw WFL.BAD_DIRECTIVE({ reason: 'task must be an object' })
  if (typeof t.title !== 'string' || t.title.length === 0 || t.title.length > 300)
    throw WFL.BAD_DIRECTIVE({ reason: 'a task needs a title of 1 to 300 characters' })
  const role = t.role === undefined ? null : t.role
  const assignee = t.assignee === undefined ? null : t.assignee
  if (role !== null && (typeof role !== 'string' || !ROLE.test(role)))
    throw WFL.BAD_DIRECTIVE({ reason: 'task.role must be a role name' })
  if (assignee !== null && (typeof assignee !== 'string' || !UUID.test(assignee)))
    throw WFL.BAD_DIRECTIVE({ reason: 'task.assignee must be a user id' })
  if (role === null && assignee === null) throw WFL.BAD_DIRECTIVE({ reason: 'a task needs a role or an assignee' })
  if (
    !Array.isArray(t.outcomes) ||
    t.outcomes.length === 0 ||
    t.outcomes.length > 20 ||
    !t.outcomes.every((o) => typeof o === 'string' && OUTCOME.test(o))
  ) {
    throw WFL.BAD_DIRECTIVE({ reason: 'a task needs 1 to 20 outcomes (names)' })
  }
  const outcomes = [...new Set(t.outcomes as string[])]
  if (!isObject(t.next)) throw WFL.BAD_DIRECTIVE({ reason: 'task.next maps each outcome to a step' })
  const next: Record<string, string> = {}
  for (const o of outcomes) next[o] = known((t.next as Record<string, unknown>)[o], `the step for outcome ${o}`)
  const escalateTo = t.escalateTo === undefined ? null : t.escalateTo
  if (escalateTo !== null && (typeof escalateTo !== 'string' || !ROLE.test(escalateTo)))
    throw WFL.BAD_DIRECTIVE({ reason: 'task.escalateTo must be a role name' })
  const slaMs = t.slaMs === undefined || t.slaMs === null ? null : (t.slaMs as number)
  if (slaMs !== null && !nonNegative(slaMs, MAX_WAIT_MS))
    throw WFL.BAD_DIRECTIVE({ reason: 'task.slaMs must be at most a year' })
  let form: Record<string, unknown> | null = null
  if (t.form !== undefined) {
    if (!isObject(t.form)) throw WFL.BAD_DIRECTIVE({ reason: 'task.form must be a JSON Schema object' })
    try {
      compileJsonSchema(t.form)
    } catch (err) {
      throw WFL.BAD_DIRECTIVE({ reason: `task.form is not a valid JSON Schema: ${(err as Error).message}` })
    }
    form = t.form
  }
  return {
    title: t.title,
    role,
    assignee,
    form,
    slaMs,
    escalateTo,
    outcomes,
    next,
    data: t.data ?? null,
    input: t.input ?? null,
  }
}
