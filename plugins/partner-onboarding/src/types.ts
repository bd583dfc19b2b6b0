// The partner-onboarding plugin's records and settings.
import type { AgentDecision, PluginContext } from '@trellis/plugin-sdk'
import type { DocumentKind, ProposedField } from './classify.js'
import type { DocumentContentType, FieldName, Fields, Problem } from './extract.js'

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
  /** What the document agent (or the person it asked) decided the document is. */
  classification?: DocumentClassification
}

/** A document's kind and key fields as decided, with the agent decision's trail (model, record, who decided, why a person was asked). */
export type DocumentClassification = Pick<
  AgentDecision,
  'confidence' | 'reasons' | 'model' | 'recordId' | 'decidedBy' | 'overridden' | 'referral'
> & {
  kind: DocumentKind
  fields: Record<FieldName, ProposedField> | null
  decidedAt: string
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
  documentAgent?: boolean
  documentThreshold?: number
  documentReviewRole?: string
}

export type Collections = {
  agreements: Agreement
  onboardings: Onboarding
  documents: OnboardingDocument
  training: TrainingAssignment
}
export type Ctx = PluginContext<Collections, Settings>
