// The workflow's first half: intake, extraction, the compliance review and the wait for corrections.
import { flow, type JsonValue, type TaskResult, type WaitResult } from '@trellis/plugin-sdk'
import { DEFAULT_REGIONS, DEFAULT_TIERS, extractFields, type Extraction } from './extract.js'
import type { Ctx, OnboardingStatus, Risk } from './types.js'
import { setting } from './defaults.js'
import { allDocuments, latestDocuments, now } from './store.js'
import { afterDocuments, agentOn, proposedCandidates } from './document-agent.js'
import { REVIEW_FORM, decisionOf, load, type StepInput } from './step-input.js'

/** Claims the onboarding for this instance; a second start for the same agreement ends quietly. */
export async function intake(input: StepInput, ctx: Ctx) {
  const o = await load(ctx, input)
  if (o.status !== 'received') {
    ctx.log.warn('onboarding already under way; this instance ends', { onboardingId: o.id, status: o.status })
    return flow.complete({ onboardingId: o.id, duplicate: true, status: o.status })
  }
  await ctx.data.onboardings.update(o.id, { status: 'extracting', startedAt: now() }, o.version)
  return agentOn(ctx) ? flow.next('classify', { onboardingId: o.id }) : { onboardingId: o.id }
}

/**
 * Extracts the key fields from the latest version of each document (a document replaces an
 * earlier one of the same name). Clean: on to configuration. Problems: a compliance review.
 * This is the step an AI extractor slots into: it only has to return an {@link Extraction}.
 */
export async function extract(input: StepInput, ctx: Ctx) {
  const o = await load(ctx, input)
  const latest = await latestDocuments(ctx, o.id)
  const documentsRound = latest.reduce((max, d) => Math.max(max, d.round), 0)
  const extraction: Extraction = extractFields(latest, {
    tiers: ctx.settings.tiers ?? DEFAULT_TIERS,
    regions: ctx.settings.regions ?? DEFAULT_REGIONS,
    proposed: proposedCandidates(latest),
  })
  const round = (o.round ?? 0) + 1
  const risks: Risk[] = extraction.problems.map((p) => ({ ...p, status: 'open', round }))
  const status: OnboardingStatus = risks.length ? 'in_review' : 'configuring'
  await ctx.data.onboardings.update(
    o.id,
    {
      status,
      round,
      documentsRound,
      extractor: extraction.extractor,
      fields: extraction.fields,
      risks,
      extractedAt: now(),
    },
    o.version,
  )
  ctx.log.info('fields extracted', { onboardingId: o.id, round, problems: risks.length, documents: latest.length })
  if (!risks.length) return { onboardingId: o.id, round, reviewed: false }
  return flow.task({
    title: `Compliance review: ${o.partnerName} (round ${round})`,
    role: setting(ctx, 'complianceRole'),
    form: REVIEW_FORM,
    outcomes: ['approve', 'reject'],
    next: { approve: 'setupTenant', reject: 'requestCorrections' },
    slaMs: setting(ctx, 'reviewSlaMs'),
    escalateTo: setting(ctx, 'complianceEscalationRole'),
    data: {
      onboardingId: o.id,
      agreementId: o.agreementId,
      partnerName: o.partnerName,
      round,
      fields: extraction.fields,
      problems: extraction.problems,
      documents: latest.map((d) => ({
        name: d.name,
        kind: d.classification?.kind ?? null,
        confidence: d.classification?.confidence ?? null,
        decidedBy: d.classification?.decidedBy ?? null,
      })),
    } as unknown as JsonValue,
    input: { onboardingId: o.id, round },
  })
}

/** A rejection: wait for corrected documents (or go straight back if they already came during the review). */
export async function requestCorrections(
  input: TaskResult<{ onboardingId: string; round: number }, { comment?: string }>,
  ctx: Ctx,
) {
  const o = await load(ctx, input)
  const decision = decisionOf(input, o.round ?? 0)
  const newer = (await allDocuments(ctx, o.id)).some((d) => d.round > (o.documentsRound ?? 0))
  await ctx.data.onboardings.update(
    o.id,
    { status: 'awaiting_documents', decisions: [...(o.decisions ?? []), decision], waitingSince: now() },
    o.version,
  )
  await ctx.events.emit(
    'partner-onboarding.corrections.requested',
    {
      onboardingId: o.id,
      agreementId: o.agreementId,
      ...(decision.comment ? { comment: decision.comment } : {}),
      problems: (o.risks ?? [])
        .filter((r) => r.status === 'open')
        .map((r) => ({ code: r.code, field: r.field, message: r.message })),
    },
    { subject: o.id },
  )
  if (newer) return flow.next(afterDocuments(ctx), { onboardingId: o.id })
  return flow.waitForEvent('partner-onboarding.documents.corrected', {
    match: { onboardingId: o.id },
    timeoutMs: setting(ctx, 'correctionTimeoutMs'),
    next: afterDocuments(ctx),
    onTimeout: 'expire',
    input: { onboardingId: o.id },
  })
}

/** No corrected documents in time. */
export async function expire(input: WaitResult<{ onboardingId: string }>, ctx: Ctx) {
  const o = await load(ctx, input)
  await ctx.data.onboardings.update(o.id, { status: 'expired', expiredAt: now() }, o.version)
  await ctx.events.emit(
    'partner-onboarding.onboarding.expired',
    { onboardingId: o.id, agreementId: o.agreementId },
    { subject: o.id },
  )
  return flow.fail(`no corrected documents arrived within ${setting(ctx, 'correctionTimeoutMs')} ms`)
}
