// The routes: signing an agreement, uploading corrected documents, the readiness view.
import { problem, problemFromError, type RouteRequest, type Stored } from '@trellis/plugin-sdk'
import { ONB } from './errors.js'
import type { DocumentContentType } from './extract.js'
import type { Ctx, Onboarding, OnboardingStatus } from './types.js'
import { allDocuments, documentSummary, now, onboardingOfAgreement, readiness, storeDocuments } from './store.js'

export interface UploadedDocument {
  name: string
  contentType: DocumentContentType
  content: string
}

interface SignAgreement {
  partnerName: string
  reference?: string
  signedAt?: string
  signedBy?: string
  documents: UploadedDocument[]
}

/** POST /agreements: the agreement, its onboarding and documents in one invocation, then the event that starts the workflow. */
export async function signAgreement(req: RouteRequest<SignAgreement>, ctx: Ctx) {
  const { partnerName, reference, signedBy, documents } = req.body
  const receivedAt = now()
  const agreement = await ctx.data.agreements.insert({
    partnerName,
    ...(reference === undefined ? {} : { reference }),
    signedAt: req.body.signedAt ?? receivedAt,
    ...(signedBy === undefined ? {} : { signedBy }),
    receivedAt,
  })
  const onboarding = await ctx.data.onboardings.insert({
    agreementId: agreement.id,
    partnerName,
    status: 'received',
    round: 0,
    risks: [],
    decisions: [],
    setup: {},
    trainingAssigned: 0,
    receivedAt,
  })
  const stored = await storeDocuments(ctx, onboarding.id, agreement.id, 1, documents)
  await ctx.events.emit(
    'partner-onboarding.agreement.signed',
    { agreementId: agreement.id, onboardingId: onboarding.id, partnerName, documents: stored.length },
    { subject: onboarding.id },
  )
  ctx.log.info('agreement signed', { agreementId: agreement.id, onboardingId: onboarding.id, documents: stored.length })
  return {
    status: 201,
    headers: { location: `/onboardings/${onboarding.id}` },
    body: {
      agreement,
      onboarding: { id: onboarding.id, status: onboarding.status },
      documents: stored.map(documentSummary),
    },
  }
}

/** POST /agreements/:id/documents: corrected or additional documents; the event resumes a workflow waiting for them. */
export async function uploadDocuments(req: RouteRequest<{ documents: UploadedDocument[] }, { id: string }>, ctx: Ctx) {
  try {
    return await storeCorrections(req, ctx)
  } catch (err) {
    return problemFromError(err, [ONB])
  }
}

async function storeCorrections(req: RouteRequest<{ documents: UploadedDocument[] }, { id: string }>, ctx: Ctx) {
  const agreement = await ctx.data.agreements.get(req.params.id)
  if (!agreement) throw ONB.AGREEMENT_NOT_FOUND({ id: req.params.id })
  const onboarding = await onboardingOfAgreement(ctx, agreement.id)
  if (!onboarding) throw ONB.ONBOARDING_NOT_FOUND({ id: agreement.id })
  if (onboarding.status === 'active' || onboarding.status === 'expired')
    throw ONB.ONBOARDING_CLOSED({ status: onboarding.status })
  // The round is derived from the documents, so this route never races the workflow's writes to the onboarding.
  const round = (await allDocuments(ctx, onboarding.id)).reduce((max, d) => Math.max(max, d.round), 0) + 1
  const stored = await storeDocuments(ctx, onboarding.id, agreement.id, round, req.body.documents)
  await ctx.events.emit(
    'partner-onboarding.documents.corrected',
    { onboardingId: onboarding.id, agreementId: agreement.id, round, documents: stored.map((d) => d.name) },
    { subject: onboarding.id },
  )
  return {
    status: 201,
    body: { onboardingId: onboarding.id, agreementId: agreement.id, round, documents: stored.map(documentSummary) },
  }
}

/** GET /onboardings: the readiness view. */
export async function listOnboardings(req: RouteRequest<null, Record<string, string>, { status?: string }>, ctx: Ctx) {
  const status = typeof req.query.status === 'string' ? req.query.status : undefined
  const all: Array<Stored<Onboarding>> = []
  let cursor: string | undefined
  do {
    const page = await ctx.data.onboardings.find({
      ...(status ? { where: { status: status as OnboardingStatus } } : {}),
      sort: [{ field: 'receivedAt', direction: 'desc' }],
      limit: 1000,
      ...(cursor ? { cursor } : {}),
    })
    all.push(...page.items)
    cursor = page.nextCursor ?? undefined
  } while (cursor && all.length < 10_000)
  const at = Date.now()
  const items = all.map((o) => readiness(o, at))
  const activated = items
    .filter((o) => o.timeToActivationMs !== null)
    .map((o) => o.timeToActivationMs as number)
    .sort((a, b) => a - b)
  const byStatus: Record<string, number> = {}
  for (const o of items) byStatus[o.status] = (byStatus[o.status] ?? 0) + 1
  return {
    status: 200,
    body: {
      items,
      summary: {
        total: items.length,
        byStatus,
        withOpenRisks: items.filter((o) => o.openRisks.length > 0).length,
        activated: activated.length,
        medianTimeToActivationMs: activated.length ? activated[Math.floor((activated.length - 1) / 2)]! : null,
      },
    },
  }
}

/** GET /onboardings/:id: one onboarding with documents (without their content), decisions and training. */
export async function getOnboarding(req: RouteRequest<null, { id: string }>, ctx: Ctx) {
  const onboarding = await ctx.data.onboardings.get(req.params.id)
  if (!onboarding) return problem(ONB.ONBOARDING_NOT_FOUND({ id: req.params.id }))
  const documents = await allDocuments(ctx, onboarding.id)
  const training = await ctx.data.training.find({ where: { onboardingId: onboarding.id }, limit: 1000 })
  return {
    status: 200,
    body: {
      ...readiness(onboarding, Date.now()),
      fields: onboarding.fields ?? null,
      risks: onboarding.risks ?? [],
      decisions: onboarding.decisions ?? [],
      setup: onboarding.setup ?? {},
      documents: documents.map(documentSummary),
      training: training.items.map((t) => ({
        id: t.id,
        module: t.module,
        title: t.title,
        status: t.status,
        assignedAt: t.assignedAt,
        dueAt: t.dueAt ?? null,
      })),
    },
  }
}
