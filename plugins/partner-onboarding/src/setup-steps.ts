// The workflow's second half: partner operations configures the partner, training is assigned, the partner is activated.
import { flow, type JsonValue, type Stored, type TaskResult } from '@trellis/plugin-sdk'
import type { Ctx, Onboarding } from './types.js'
import { DEFAULTS, DEFAULT_TRAINING, setting } from './defaults.js'
import { now } from './store.js'
import { decisionOf, emptyFields, isTaskResult, load, type StepInput } from './step-input.js'

/** Approved (by compliance, or clean extraction): partner operations creates the first tenant. */
export async function setupTenant(input: StepInput, ctx: Ctx) {
  let o = await load(ctx, input)
  const patch: Partial<Onboarding> = { status: 'configuring' }
  if (isTaskResult(input)) {
    const decision = decisionOf(input, o.round ?? 0)
    const overrides = decision.overrides ?? {}
    patch.fields = { ...(o.fields ?? emptyFields()), ...overrides }
    patch.decisions = [...(o.decisions ?? []), decision]
    patch.risks = (o.risks ?? []).map((r) =>
      r.status === 'open' ? { ...r, status: 'accepted' as const, acceptedBy: input.by } : r,
    )
  }
  o = await ctx.data.onboardings.update(o.id, patch, o.version)
  return opsTask(ctx, o, {
    title: `Create the first tenant for ${o.fields?.legalName ?? o.partnerName}`,
    form: {
      type: 'object',
      additionalProperties: false,
      required: ['tenantId'],
      properties: {
        tenantId: { type: 'string', minLength: 1, maxLength: 100 },
        note: { type: 'string', maxLength: 1000 },
      },
    },
    next: 'setupPriceList',
  })
}

export async function setupPriceList(input: TaskResult<{ onboardingId: string }, { tenantId: string }>, ctx: Ctx) {
  let o = await load(ctx, input)
  o = await ctx.data.onboardings.update(
    o.id,
    { setup: { ...(o.setup ?? {}), tenantId: String(input.data.tenantId) } },
    o.version,
  )
  return opsTask(ctx, o, {
    title: `Create the default price list for ${o.fields?.legalName ?? o.partnerName}`,
    form: {
      type: 'object',
      additionalProperties: false,
      required: ['priceListId'],
      properties: {
        priceListId: { type: 'string', minLength: 1, maxLength: 100 },
        currency: { type: 'string', pattern: '^[A-Z]{3}$' },
      },
    },
    next: 'setupUsers',
  })
}

export async function setupUsers(input: TaskResult<{ onboardingId: string }, { priceListId: string }>, ctx: Ctx) {
  let o = await load(ctx, input)
  o = await ctx.data.onboardings.update(
    o.id,
    { setup: { ...(o.setup ?? {}), priceListId: String(input.data.priceListId) } },
    o.version,
  )
  return opsTask(ctx, o, {
    title: `Invite the users of ${o.fields?.legalName ?? o.partnerName}`,
    form: {
      type: 'object',
      additionalProperties: false,
      required: ['users'],
      properties: {
        users: { type: 'integer', minimum: 1, maximum: 10000 },
        adminEmail: { type: 'string', maxLength: 320, pattern: '^[^@\\s]+@[^@\\s]+$' },
      },
    },
    next: 'assignTraining',
  })
}

/** Assigns the training modules of the partner's tier. */
export async function assignTraining(
  input: TaskResult<{ onboardingId: string }, { users: number; adminEmail?: string }>,
  ctx: Ctx,
) {
  const o = await load(ctx, input)
  const tier = o.fields?.tier ?? null
  const modules = (ctx.settings.trainingModules ?? DEFAULT_TRAINING).filter(
    (m) => !m.tiers || (tier !== null && m.tiers.includes(tier)),
  )
  const assignedAt = now()
  const dueAt = new Date(Date.now() + DEFAULTS.trainingDueMs).toISOString()
  for (const m of modules)
    await ctx.data.training.insert({
      onboardingId: o.id,
      partnerName: o.partnerName,
      module: m.module,
      title: m.title,
      status: 'assigned',
      assignedAt,
      dueAt,
    })
  const setup = {
    ...(o.setup ?? {}),
    users: Number(input.data.users),
    ...(input.data.adminEmail ? { adminEmail: String(input.data.adminEmail) } : {}),
  }
  await ctx.data.onboardings.update(o.id, { status: 'training', setup, trainingAssigned: modules.length }, o.version)
  return { onboardingId: o.id }
}

export async function activate(input: StepInput, ctx: Ctx) {
  const o = await load(ctx, input)
  const activatedAt = now()
  const timeToActivationMs = Math.max(0, Date.parse(activatedAt) - Date.parse(o.receivedAt))
  await ctx.data.onboardings.update(o.id, { status: 'active', activatedAt, timeToActivationMs }, o.version)
  const f = o.fields ?? emptyFields()
  await ctx.events.emit(
    'partner-onboarding.partner.activated',
    {
      onboardingId: o.id,
      agreementId: o.agreementId,
      partnerName: o.partnerName,
      legalName: f.legalName,
      tier: f.tier,
      region: f.region,
      timeToActivationMs,
    },
    { subject: o.id },
  )
  return flow.complete({
    onboardingId: o.id,
    status: 'active',
    timeToActivationMs,
    fields: f as unknown as JsonValue,
    setup: (o.setup ?? {}) as JsonValue,
    trainingAssigned: o.trainingAssigned ?? 0,
  })
}

function opsTask(ctx: Ctx, o: Stored<Onboarding>, t: { title: string; form: Record<string, unknown>; next: string }) {
  return flow.task({
    title: t.title,
    role: setting(ctx, 'opsRole'),
    form: t.form,
    outcomes: ['done'],
    next: { done: t.next },
    slaMs: setting(ctx, 'setupSlaMs'),
    escalateTo: setting(ctx, 'opsEscalationRole'),
    data: {
      onboardingId: o.id,
      partnerName: o.partnerName,
      fields: (o.fields ?? null) as unknown as JsonValue,
      setup: (o.setup ?? {}) as JsonValue,
    },
    input: { onboardingId: o.id },
  })
}
