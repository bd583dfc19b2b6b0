import type { Tx } from '../db/database.js'

/** Who asks the AI service, for what: every call is budgeted, recorded and audited against it. */
export interface AiCaller {
  tenantId: string
  userId?: string | null
  installationId?: string | null
  pluginId?: string | null
  /** What the call is for (`copilot.ask`, `knowledge.answer`, `plugin.complete` …): shown in records and usage. */
  feature: string
  /** Roles of the caller in the tenant: personal values are unmasked in the answer only for callers who may see them. */
  mayReadPersonal?: boolean
}

export interface AiMessage {
  role: 'system' | 'user' | 'assistant'
  content: string
}

/** A retrieved passage given to the model as `[n] text`; the answer cites it by `n`. */
export interface AiPassage {
  n: number
  id: string
  text: string
  score?: number
}

export interface AiCompleteRequest {
  /** A model alias the tenant is offered; default: the tenant's chosen chat model. */
  model?: string
  messages: AiMessage[]
  passages?: AiPassage[]
  maxTokens?: number
  /** JSON Schema the answer must satisfy: validated, retried once, then refused with `AI_ERR_SCHEMA_MISMATCH`. */
  schema?: object
  temperature?: number
  /** Values (from collection fields marked personal) masked before the text leaves the kernel. */
  personal?: string[]
}

export interface AiCompleteResult {
  text: string
  /** The model that answered (`local-extractive` for the embedded default). */
  model: string
  json?: unknown
  /** Passage numbers the answer cites; only numbers of passages that were given. */
  citations?: number[]
  /** The local extractive answerer found no supporting passage: the caller should escalate. */
  escalate?: boolean
  usage: { inputTokens: number; outputTokens: number }
  costMicros: number
  /** The AI call record (`GET /v1/ai/records/:id`). */
  recordId: string
}

export interface AiEmbedResult {
  vectors: number[][]
  /** The embedding model's alias (`local-lexical` for the embedded default). */
  model: string
  dims: number
  /** True when the vectors are lexical feature hashes, not a neural embedding. */
  lexical: boolean
  recordId?: string
}

/** Retrieval facts the caller wants written on the call record. */
export interface AiRetrievalNote {
  chunks: { id: string; score: number }[]
}

export interface AiCallOptions {
  signal?: AbortSignal
  /** Chunk ids with scores that were retrieved for this call (recorded). */
  retrieval?: AiRetrievalNote
  /** Run the call's governance in a plugin invocation's open transaction (see {@link AiWithin}). */
  within?: AiWithin
  /** How long one provider attempt may take, instead of the service's default (long generations). */
  timeoutMs?: number
}

/**
 * A plugin invocation's open transaction lent to an AI call on the embedded database, whose
 * one connection it holds: the budget reservation, the settlement and the record are written
 * in it (alone, nothing else of the invocation running meanwhile), and — should the
 * invocation roll back — the usage and the record are written again in a transaction of
 * their own, so they outlive it as they do on PostgreSQL (ADR 0057).
 */
export interface AiWithin {
  run<T>(fn: (tx: Tx) => Promise<T>): Promise<T>
  onRollback(fn: () => Promise<void>): void
}

/** The kernel's governed AI: model registry, budgets, redaction, screening, records. */
export interface AiService {
  complete(caller: AiCaller, req: AiCompleteRequest, opts?: AiCallOptions): Promise<AiCompleteResult>
  embed(
    caller: AiCaller,
    texts: string[],
    opts?: { model?: string; signal?: AbortSignal; within?: AiWithin },
  ): Promise<AiEmbedResult>
}
