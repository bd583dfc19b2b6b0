// The document agent: each submitted document classified and its key fields extracted — by the
// tenant's chat model, else by the nearest labelled examples (its embedding model), else by the
// rules — and a person confirms or corrects whatever is below the installation's threshold.
import { agentStep, flow, type AgentAnswer, type AgentOutcome, type JsonValue, type Stored } from '@trellis/plugin-sdk'
import {
  classificationText,
  DOCUMENT_KINDS,
  EXAMPLE_TEXTS,
  fieldsByRules,
  kindByRules,
  nearestKind,
  type DocumentProposal,
  type ProposedField,
} from './classify.js'
import { DEFAULT_REGIONS, DEFAULT_TIERS, FIELD_NAMES, type DocumentContentType, type FieldName } from './extract.js'
import type { Ctx, DocumentClassification, OnboardingDocument } from './types.js'
import { DEFAULTS, setting } from './defaults.js'
import { latestDocuments, now } from './store.js'
import { load, type StepInput } from './step-input.js'

/** What the agent is given about one document. */
export type DocumentInput = {
  onboardingId: string
  documentId: string
  name: string
  contentType: DocumentContentType
  /** The name and opening of the document ({@link classificationText}). */
  excerpt: string
  /** The key fields the extraction rules find in the whole document. */
  ruleFields: Record<FieldName, ProposedField>
  threshold: number
  reviewRole: string
}

const FIELD = {
  type: 'object',
  required: ['value', 'confidence'],
  properties: {
    value: { type: ['string', 'null'], maxLength: 200 },
    confidence: { type: 'number', minimum: 0, maximum: 1 },
  },
}
const PROPOSAL_SCHEMA = {
  type: 'object',
  required: ['kind'],
  properties: {
    kind: { type: 'string', enum: [...DOCUMENT_KINDS] },
    fields: { type: 'object', properties: Object.fromEntries(FIELD_NAMES.map((f) => [f, FIELD])) },
  },
}

/** The nearest labelled examples by the tenant's embedding model (on the embedded default: lexical overlap). */
async function nearestExamples(input: DocumentInput, ctx: Ctx): Promise<AgentAnswer<DocumentProposal>> {
  const r = await ctx.ai.embed([input.excerpt, ...EXAMPLE_TEXTS])
  const guess = nearestKind(r.vectors[0]!, r.vectors.slice(1))
  return {
    proposal: { kind: guess.kind, fields: input.ruleFields },
    confidence: guess.confidence,
    reasons: guess.reasons,
    model: r.model,
    recordId: r.recordId ?? null,
  }
}

/** Today's rules: keywords in the name and heading; a person always confirms them. */
function rules(input: DocumentInput): AgentAnswer<DocumentProposal> {
  const guess = kindByRules({ name: input.name, contentType: input.contentType, content: input.excerpt })
  return {
    proposal: { kind: guess.kind, fields: input.ruleFields },
    confidence: guess.confidence,
    reasons: guess.reasons,
  }
}

/** The two steps of the agent (`classify` asks through {@link classify}; `classifyDecided` takes the person's decision). */
export const documentAgent = agentStep<DocumentInput, DocumentProposal>(
  {
    name: 'onboarding-document-classifier',
    prompt: 'classifyDocument',
    slots: (i) => ({ name: i.name, contentType: i.contentType, excerpt: i.excerpt }),
    proposal: PROPOSAL_SCHEMA,
    threshold: (i) => i.threshold,
    role: (i) => i.reviewRole,
    title: (i) => `Confirm what "${i.name}" is`,
    propose: (i, ctx) => nearestExamples(i, ctx as Ctx),
    fallback: rules,
    next: 'classified',
  },
  'classifyDecided',
)

/** Whether the installation classifies documents before extraction. */
export const agentOn = (ctx: Ctx) => ctx.settings.documentAgent ?? DEFAULTS.documentAgent

/** Where the workflow goes once the documents of a round are in: the agent first, when it is on. */
export const afterDocuments = (ctx: Ctx) => (agentOn(ctx) ? 'classify' : 'extract')

/** Asks the agent about the next document of the onboarding not yet classified; with none left, on to extraction. */
export async function classify(input: StepInput, ctx: Ctx) {
  const o = await load(ctx, input)
  const pending = (await latestDocuments(ctx, o.id)).find((d) => !d.classification)
  if (!pending || !agentOn(ctx)) return flow.next('extract', { onboardingId: o.id })
  const options = { tiers: ctx.settings.tiers ?? DEFAULT_TIERS, regions: ctx.settings.regions ?? DEFAULT_REGIONS }
  const docInput: DocumentInput = {
    onboardingId: o.id,
    documentId: pending.id,
    name: pending.name,
    contentType: pending.contentType,
    excerpt: classificationText(pending),
    ruleFields: fieldsByRules(pending, options),
    threshold: ctx.settings.documentThreshold ?? DEFAULTS.documentThreshold,
    reviewRole: ctx.settings.documentReviewRole ?? setting(ctx, 'complianceRole'),
  }
  return documentAgent.ask(docInput, ctx)
}

/** Keeps the decision on the document (fields the proposal left out are the rules'), then the next document. */
export async function classified(out: AgentOutcome<DocumentInput, DocumentProposal | null>, ctx: Ctx) {
  const { decision, input } = out
  const doc = await ctx.data.documents.get(input.documentId)
  if (doc && !doc.classification) {
    const proposed = decision.proposal
    const classification: DocumentClassification = {
      kind: proposed && DOCUMENT_KINDS.includes(proposed.kind) ? proposed.kind : 'other',
      confidence: decision.confidence,
      reasons: decision.reasons,
      fields: Object.fromEntries(
        FIELD_NAMES.map((f) => [f, proposed?.fields?.[f] ?? input.ruleFields[f]]),
      ) as DocumentClassification['fields'],
      model: decision.model,
      recordId: decision.recordId,
      decidedBy: decision.decidedBy,
      overridden: decision.overridden,
      referral: decision.referral,
      decidedAt: now(),
    }
    await ctx.data.documents.update(doc.id, { classification }, doc.version)
    ctx.log.info('document classified', {
      onboardingId: input.onboardingId,
      document: doc.name,
      kind: classification.kind,
      decidedBy: classification.decidedBy === 'agent' ? 'agent' : 'person',
    })
  }
  return flow.next('classify', { onboardingId: input.onboardingId } as JsonValue)
}

export const classifyDecided = documentAgent.decided

/** The field values decided per document, for extraction to use in place of the rules' reading. */
export function proposedCandidates(documents: Array<Stored<OnboardingDocument>>) {
  const out = new Map<string, Partial<Record<FieldName, string | null>>>()
  for (const d of documents) {
    const fields = d.classification?.fields
    if (fields) out.set(d.name, Object.fromEntries(FIELD_NAMES.map((f) => [f, fields[f]?.value ?? null])))
  }
  return out
}
