import type { KnowledgeAnswer, KnowledgeCitation, PluginContext } from '@trellis/plugin-sdk'
import type { TriageRecord } from './triage.js'

/** A passage an answer rests on, as the copilot shows it. */
export interface Cited {
  n: number
  title: string
  source: string
  version: number
  heading: string
  text: string
  documentId: string
  chunkId: string
}

/** A question asked and what the copilot answered. */
export interface Question {
  question: string
  kb: string
  topic: 'general' | 'onboarding' | 'order'
  answered: boolean
  text: string
  model: string
  citations: Cited[]
  escalationId: string | null
  askedBy: string
  askedAt: string
}

export type CopilotSettings = {
  knowledgeBase?: string
  onboardingBase?: string
}

export type Ctx = PluginContext<{ questions: Question; triages: TriageRecord }, CopilotSettings>

/** The passages shown with an answer: those it cites, or with no answer the closest sources. */
export function cited(answer: KnowledgeAnswer): Cited[] {
  const shown: KnowledgeCitation[] = answer.answered ? answer.citations : answer.sources
  return shown.map((p) => ({
    n: p.n,
    title: p.title,
    source: p.source,
    version: p.version,
    heading: p.heading,
    text: p.text,
    documentId: p.documentId,
    chunkId: p.chunkId,
  }))
}
