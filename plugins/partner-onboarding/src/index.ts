/**
 * The partner-onboarding accelerator: a signed partner agreement becomes an active partner.
 *
 * `POST /agreements` stores the agreement and its documents and emits
 * `partner-onboarding.agreement.signed`, which starts the `onboarding` workflow (manifest
 * `start.events`). The workflow extracts the key fields from the documents (`extract`, rules
 * in ./extract.ts), asks compliance to review missing or inconsistent fields (a human task;
 * a rejection waits for `partner-onboarding.documents.corrected`, which
 * `POST /agreements/:id/documents` emits, and extracts again), hands configuration to
 * partner operations (first tenant, default price list, users: one human task each), assigns
 * training, and activates the partner. `GET /onboardings` is the readiness view.
 */
import { collection, definePlugin, defineErrors, defineWorkflow, flow, problemFromError } from '@trellis/plugin-sdk'
import type { JsonValue, PluginContext, RouteRequest, Stored, TaskResult, WaitResult } from '@trellis/plugin-sdk'
import manifest from '../trellis.plugin.json' with { type: 'json' }
import {
  DEFAULT_REGIONS,
  DEFAULT_TIERS,
  FIELD_NAMES,
  extractFields,
  normaliseValue,
  type DocumentContentType,
  type Extraction,
  type FieldName,
  type Fields,
  type Problem,
} from './extract.js'

export * from './extract.js'

/** Where an onboarding is. */
export type OnboardingStatus =
  | 'received'
  | 'extracting'
  | 'in_review'
  | 'awaiting_documents'
  | 'configuring'
  | 'training'
  | 'active'
  | 'expired'

export interface Agreement {
  partnerName: string
  reference?: string
  signedAt: string
  signedBy?: string
  receivedAt: string
}

/** A problem found by extraction, open until compliance accepts it or new documents clear it. */
export interface Risk extends Problem {
  status: 'open' | 'accepted'
  round: number
  acceptedBy?: string
}

export interface Decision {
  round: number
  outcome: string
  by: string
  at: string
  comment?: string
  overrides?: Partial<Fields>
}

export interface Onboarding {
  agreementId: string
  partnerName: string
  status: OnboardingStatus
  round?: number
  /** The latest document round the last extraction read. */
  documentsRound?: number
  extractor?: string
  fields?: Fields
  risks?: Risk[]
  decisions?: Decision[]
  setup?: { tenantId?: string; priceListId?: string; users?: number; adminEmail?: string }
  trainingAssigned?: number
  receivedAt: string
  startedAt?: string
  extractedAt?: string
  waitingSince?: string
  activatedAt?: string
  expiredAt?: string
  timeToActivationMs?: number
}

export interface OnboardingDocument {
  onboardingId: string
  agreementId: string
  name: string
  contentType: DocumentContentType
  content: string
  round: number
}

export interface TrainingAssignment {
  onboardingId: string
  partnerName: string
  module: string
  title: string
  status: 'assigned' | 'completed'
  assignedAt: string
  dueAt?: string
}

export interface TrainingModule {
  module: string
  title: string
  /** Only partners of these tiers get it; every tier when absent. */
  tiers?: string[]
}

export type Settings = {
  complianceRole?: string
  complianceEscalationRole?: string
  opsRole?: string
  opsEscalationRole?: string
  reviewSlaMs?: number
  setupSlaMs?: number
  correctionTimeoutMs?: number
  tiers?: string[]
  regions?: string[]
  trainingModules?: TrainingModule[]
}

type Collections = {
  agreements: Agreement
  onboardings: Onboarding
  documents: OnboardingDocument
  training: TrainingAssignment
}
type Ctx = PluginContext<Collections, Settings>

const HOUR = 3_600_000
const DAY = 24 * HOUR
export const DEFAULTS = {
  complianceRole: 'compliance_officer',
  complianceEscalationRole: 'compliance_lead',
  opsRole: 'partner_ops',
  opsEscalationRole: 'partner_ops_lead',
  reviewSlaMs: 2 * DAY,
  setupSlaMs: 3 * DAY,
  correctionTimeoutMs: 14 * DAY,
  trainingDueMs: 30 * DAY,
} as const

export const DEFAULT_TRAINING: TrainingModule[] = [
  { module: 'platform-basics', title: 'Trellis platform basics' },
  { module: 'compliance-essentials', title: 'Compliance essentials for partners' },
  { module: 'tenant-administration', title: 'Administering your tenants' },
  { module: 'advanced-pricing', title: 'Price lists, rebates and promotions', tiers: ['gold', 'platinum'] },
  { module: 'co-selling', title: 'Co-selling playbook', tiers: ['platinum'] },
]

export const ONB = defineErrors('ONB', {
  AGREEMENT_NOT_FOUND: {
    status: 404,
    title: 'Agreement not found',
    message: (d: { id: string }) => `Agreement ${d.id} was not found`,
  },
  ONBOARDING_NOT_FOUND: {
    status: 404,
    title: 'Onboarding not found',
    message: (d: { id: string }) => `Onboarding ${d.id} was not found`,
  },
  ONBOARDING_CLOSED: {
    status: 409,
    title: 'Onboarding closed',
    message: (d: { status: string }) => `The onboarding is ${d.status}; it takes no more documents`,
  },
})

const STEP = 'onboarding'

/**
 * The plugin's own refusals answer as the kernel's RFC 9457 problems, with their status and `ONB_ERR_*` code
 * (thrown, they would reach the caller as a 502 SBX_ERR_PLUGIN_ERROR); anything else propagates.
 */
function problem(err: unknown) {
  return problemFromError(err, [ONB])
}
const now = () => new Date().toISOString()

// ---------------------------------------------------------------------------------------------
// Routes

interface UploadedDocument {
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
async function signAgreement(req: RouteRequest<SignAgreement>, ctx: Ctx) {
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
async function uploadDocuments(req: RouteRequest<{ documents: UploadedDocument[] }, { id: string }>, ctx: Ctx) {
  try {
    return await storeCorrections(req, ctx)
  } catch (err) {
    return problem(err)
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
async function listOnboardings(req: RouteRequest<null, Record<string, string>, { status?: string }>, ctx: Ctx) {
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
async function getOnboarding(req: RouteRequest<null, { id: string }>, ctx: Ctx) {
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

function readiness(o: Stored<Onboarding>, at: number) {
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

function documentSummary(d: Stored<OnboardingDocument>) {
  return {
    id: d.id,
    name: d.name,
    contentType: d.contentType,
    round: d.round,
    bytes: d.content.length,
    uploadedAt: d.createdAt,
  }
}

async function storeDocuments(
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

async function allDocuments(ctx: Ctx, onboardingId: string) {
  const out: Array<Stored<OnboardingDocument>> = []
  let cursor: string | undefined
  do {
    const page = await ctx.data.documents.find({ where: { onboardingId }, limit: 1000, ...(cursor ? { cursor } : {}) })
    out.push(...page.items)
    cursor = page.nextCursor ?? undefined
  } while (cursor)
  return out
}

async function onboardingOfAgreement(ctx: Ctx, agreementId: string) {
  return (await ctx.data.onboardings.find({ where: { agreementId }, limit: 1 })).items[0] ?? null
}

// ---------------------------------------------------------------------------------------------
// The workflow

/** Input a step may get: `{ onboardingId }`, the starting event, a TaskResult or a WaitResult carrying it. */
type StepInput = Record<string, any> | null

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

function isTaskResult(input: unknown): input is TaskResult<{ onboardingId: string }, Record<string, any>> {
  return (
    !!input &&
    typeof input === 'object' &&
    typeof (input as Record<string, unknown>).outcome === 'string' &&
    'input' in (input as object)
  )
}

async function load(ctx: Ctx, input: StepInput): Promise<Stored<Onboarding>> {
  const id = onboardingIdOf(input)
  const found = id ? await ctx.data.onboardings.get(id) : null
  if (found) return found
  // Started through the API with an agreement id.
  const agreementId = input && typeof input.agreementId === 'string' ? input.agreementId : null
  const byAgreement = agreementId ? await onboardingOfAgreement(ctx, agreementId) : null
  if (byAgreement) return byAgreement
  throw ONB.ONBOARDING_NOT_FOUND({ id: id ?? agreementId ?? '(none given)' })
}

const setting = <K extends keyof typeof DEFAULTS & keyof Settings>(ctx: Ctx, key: K) =>
  (ctx.settings[key] ?? DEFAULTS[key]) as (typeof DEFAULTS)[K]

/** Claims the onboarding for this instance; a second start for the same agreement ends quietly. */
async function intake(input: StepInput, ctx: Ctx) {
  const o = await load(ctx, input)
  if (o.status !== 'received') {
    ctx.log.warn('onboarding already under way; this instance ends', { onboardingId: o.id, status: o.status })
    return flow.complete({ onboardingId: o.id, duplicate: true, status: o.status })
  }
  await ctx.data.onboardings.update(o.id, { status: 'extracting', startedAt: now() }, o.version)
  return { onboardingId: o.id }
}

/**
 * Extracts the key fields from the latest version of each document (a document replaces an
 * earlier one of the same name). Clean: on to configuration. Problems: a compliance review.
 * This is the step an AI extractor slots into: it only has to return an {@link Extraction}.
 */
async function extract(input: StepInput, ctx: Ctx) {
  const o = await load(ctx, input)
  const latest = new Map<string, Stored<OnboardingDocument>>()
  const documents = await allDocuments(ctx, o.id)
  const documentsRound = documents.reduce((max, d) => Math.max(max, d.round), 0)
  for (const d of documents.sort((a, b) => a.round - b.round || (a.id < b.id ? -1 : 1))) {
    latest.delete(d.name)
    latest.set(d.name, d)
  }
  const extraction: Extraction = extractFields([...latest.values()], {
    tiers: ctx.settings.tiers ?? DEFAULT_TIERS,
    regions: ctx.settings.regions ?? DEFAULT_REGIONS,
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
  ctx.log.info('fields extracted', { onboardingId: o.id, round, problems: risks.length, documents: latest.size })
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
    } as unknown as JsonValue,
    input: { onboardingId: o.id, round },
  })
}

/** A rejection: wait for corrected documents (or go straight back if they already came during the review). */
async function requestCorrections(
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
  if (newer) return flow.next('extract', { onboardingId: o.id })
  return flow.waitForEvent('partner-onboarding.documents.corrected', {
    match: { onboardingId: o.id },
    timeoutMs: setting(ctx, 'correctionTimeoutMs'),
    next: 'extract',
    onTimeout: 'expire',
    input: { onboardingId: o.id },
  })
}

/** No corrected documents in time. */
async function expire(input: WaitResult<{ onboardingId: string }>, ctx: Ctx) {
  const o = await load(ctx, input)
  await ctx.data.onboardings.update(o.id, { status: 'expired', expiredAt: now() }, o.version)
  await ctx.events.emit(
    'partner-onboarding.onboarding.expired',
    { onboardingId: o.id, agreementId: o.agreementId },
    { subject: o.id },
  )
  return flow.fail(`no corrected documents arrived within ${setting(ctx, 'correctionTimeoutMs')} ms`)
}

/** Approved (by compliance, or clean extraction): partner operations creates the first tenant. */
async function setupTenant(input: StepInput, ctx: Ctx) {
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

async function setupPriceList(input: TaskResult<{ onboardingId: string }, { tenantId: string }>, ctx: Ctx) {
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

async function setupUsers(input: TaskResult<{ onboardingId: string }, { priceListId: string }>, ctx: Ctx) {
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
async function assignTraining(
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

async function activate(input: StepInput, ctx: Ctx) {
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

function decisionOf(input: TaskResult<unknown, Record<string, any>>, round: number): Decision {
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

function emptyFields(): Fields {
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

export const onboardingWorkflow = defineWorkflow({
  steps: {
    intake,
    extract,
    setupTenant,
    setupPriceList,
    setupUsers,
    assignTraining,
    activate,
    requestCorrections,
    expire,
  },
})

export const partnerOnboardingPlugin = definePlugin<Collections>({
  manifest,
  collections: {
    agreements: collection<Agreement>(),
    onboardings: collection<Onboarding>(),
    documents: collection<OnboardingDocument>(),
    training: collection<TrainingAssignment>(),
  },
  routes: {
    'POST /agreements': signAgreement,
    'POST /agreements/:id/documents': uploadDocuments,
    'GET /onboardings': listOnboardings,
    'GET /onboardings/:id': getOnboarding,
  },
  workflows: { [STEP]: onboardingWorkflow },
})
