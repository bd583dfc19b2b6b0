// Reading and writing onboardings and their documents; the readiness view of one onboarding.
import type { Stored } from '@trellis/plugin-sdk'
import type { Ctx, Onboarding, OnboardingDocument } from './types.js'
import type { UploadedDocument } from './routes.js'

export const now = () => new Date().toISOString()

export function readiness(o: Stored<Onboarding>, at: number) {
  const risks = o.risks ?? []
  return {
    id: o.id,
    agreementId: o.agreementId,
    partnerName: o.partnerName,
    legalName: o.fields?.legalName ?? null,
    tier: o.fields?.tier ?? null,
    region: o.fields?.region ?? null,
    status: o.status,
    round: o.round ?? 0,
    openRisks: risks
      .filter((r) => r.status === 'open')
      .map(({ code, field, message, document }) => ({ code, field, message, ...(document ? { document } : {}) })),
    acceptedRisks: risks.filter((r) => r.status === 'accepted').length,
    trainingAssigned: o.trainingAssigned ?? 0,
    receivedAt: o.receivedAt,
    activatedAt: o.activatedAt ?? null,
    timeToActivationMs: o.timeToActivationMs ?? null,
    // How long an onboarding that is still open has been under way.
    elapsedMs: o.activatedAt || o.expiredAt ? null : Math.max(0, at - Date.parse(o.receivedAt)),
  }
}

export function documentSummary(d: Stored<OnboardingDocument>) {
  return {
    id: d.id,
    name: d.name,
    contentType: d.contentType,
    round: d.round,
    bytes: d.content.length,
    uploadedAt: d.createdAt,
    // What the document agent or a person decided it is, with how sure and who.
    classification: d.classification ?? null,
  }
}

export async function storeDocuments(
  ctx: Ctx,
  onboardingId: string,
  agreementId: string,
  round: number,
  documents: UploadedDocument[],
) {
  const stored: Array<Stored<OnboardingDocument>> = []
  for (const d of documents)
    stored.push(
      await ctx.data.documents.insert({
        onboardingId,
        agreementId,
        name: d.name,
        contentType: d.contentType,
        content: d.content,
        round,
      }),
    )
  return stored
}

export async function allDocuments(ctx: Ctx, onboardingId: string) {
  const out: Array<Stored<OnboardingDocument>> = []
  let cursor: string | undefined
  do {
    const page = await ctx.data.documents.find({ where: { onboardingId }, limit: 1000, ...(cursor ? { cursor } : {}) })
    out.push(...page.items)
    cursor = page.nextCursor ?? undefined
  } while (cursor)
  return out
}

export async function onboardingOfAgreement(ctx: Ctx, agreementId: string) {
  return (await ctx.data.onboardings.find({ where: { agreementId }, limit: 1 })).items[0] ?? null
}

/** The latest version of each document (a document replaces an earlier one of the same name), in upload order. */
export async function latestDocuments(ctx: Ctx, onboardingId: string) {
  const latest = new Map<string, Stored<OnboardingDocument>>()
  const documents = await allDocuments(ctx, onboardingId)
  for (const d of documents.sort((a, b) => a.round - b.round || (a.id < b.id ? -1 : 1))) {
    latest.delete(d.name)
    latest.set(d.name, d)
  }
  return [...latest.values()]
}
