// What every step reads: the onboarding its input names, and the decision a task carried.
import type { Stored, TaskResult } from '@trellis/plugin-sdk'
import { ONB } from './errors.js'
import { FIELD_NAMES, normaliseValue, type FieldName, type Fields } from './extract.js'
import type { Ctx, Decision, Onboarding } from './types.js'
import { now, onboardingOfAgreement } from './store.js'

/** Input a step may get: `{ onboardingId }`, the starting event, a TaskResult or a WaitResult carrying it. */
export type StepInput = Record<string, any> | null

/** The onboarding id carried by any step input (TaskResult/WaitResult `input`, a start event's `data`, or plain). */
export function onboardingIdOf(input: unknown): string | null {
  if (!input || typeof input !== 'object') return null
  const i = input as Record<string, any>
  if (typeof i.onboardingId === 'string') return i.onboardingId
  if (i.input && typeof i.input === 'object') return onboardingIdOf(i.input)
  if (i.event && typeof i.event === 'object') return onboardingIdOf(i.event)
  if (i.data && typeof i.data === 'object' && typeof i.data.onboardingId === 'string') return i.data.onboardingId
  return null
}

export function isTaskResult(input: unknown): input is TaskResult<{ onboardingId: string }, Record<string, any>> {
  return (
    !!input &&
    typeof input === 'object' &&
    typeof (input as Record<string, unknown>).outcome === 'string' &&
    'input' in (input as object)
  )
}

export async function load(ctx: Ctx, input: StepInput): Promise<Stored<Onboarding>> {
  const id = onboardingIdOf(input)
  const found = id ? await ctx.data.onboardings.get(id) : null
  if (found) return found
  // Started through the API with an agreement id.
  const agreementId = input && typeof input.agreementId === 'string' ? input.agreementId : null
  const byAgreement = agreementId ? await onboardingOfAgreement(ctx, agreementId) : null
  if (byAgreement) return byAgreement
  throw ONB.ONBOARDING_NOT_FOUND({ id: id ?? agreementId ?? '(none given)' })
}

export function decisionOf(input: TaskResult<unknown, Record<string, any>>, round: number): Decision {
  const data = input.data ?? {}
  const overrides: Partial<Fields> = {}
  for (const [k, v] of Object.entries((data.overrides ?? {}) as Record<string, unknown>)) {
    if ((FIELD_NAMES as readonly string[]).includes(k) && typeof v === 'string' && v.trim())
      overrides[k as FieldName] = normaliseValue(k as FieldName, v)
  }
  return {
    round,
    outcome: input.outcome,
    by: input.by,
    at: now(),
    ...(typeof data.comment === 'string' && data.comment ? { comment: data.comment } : {}),
    ...(Object.keys(overrides).length ? { overrides } : {}),
  }
}

export function emptyFields(): Fields {
  return Object.fromEntries(FIELD_NAMES.map((f) => [f, null])) as Fields
}

/** What compliance fills in: a comment, and corrected values that replace the extracted ones on approval. */
export const REVIEW_FORM = {
  type: 'object',
  additionalProperties: false,
  properties: {
    comment: { type: 'string', maxLength: 2000 },
    overrides: {
      type: 'object',
      additionalProperties: false,
      properties: {
        legalName: { type: 'string', minLength: 1, maxLength: 200 },
        taxId: { type: 'string', minLength: 4, maxLength: 30 },
        region: { type: 'string', minLength: 1, maxLength: 50 },
        tier: { type: 'string', minLength: 1, maxLength: 50 },
        signatory: { type: 'string', minLength: 1, maxLength: 200 },
        startDate: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}$' },
      },
    },
  },
} as const
