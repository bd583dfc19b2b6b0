/**
 * What plugins exchange with the kernel's knowledge bases (`ctx.knowledge`): searching and
 * asking (capability `knowledge:search`) and adding drafts (capability `knowledge:write`).
 * Every answer is trimmed to what the invoking user's roles may read.
 */

/** Arguments of `knowledge.search`. */
export interface KnowledgeSearchArgs {
  /** The knowledge base's slug or id: the tenant's own, or one its partner shares. */
  kb: string
  query: string
  /** How many passages (default 5, at most 50). */
  k?: number
  /** Only documents carrying every one of these tags. */
  tags?: string[]
}

/** One retrieved passage of an approved, current document. */
export interface KnowledgePassage {
  documentId: string
  /** Stable across re-ingestion of unchanged text. */
  chunkId: string
  title: string
  source: string
  version: number
  heading: string
  text: string
  /** Reciprocal-rank-fusion score of the full-text and vector rankings. */
  rrf: number
  /** Cosine similarity of the query and the passage. */
  similarity: number
}

/** The answer of `knowledge.search`. */
export interface KnowledgeSearchResult {
  items: KnowledgePassage[]
}

/** Arguments of `knowledge.ask`. */
export interface KnowledgeAskArgs {
  kb: string
  question: string
  /** Passages retrieved for the answer (default 5, at most 20). */
  k?: number
  tags?: string[]
}

/** A passage an answer cites (or, with no answer, one of the closest sources), numbered as the model saw it. */
export interface KnowledgeCitation extends KnowledgePassage {
  n: number
}

/** The answer of `knowledge.ask`: cited, or "I don't know" with the closest sources and an escalation. */
export interface KnowledgeAnswer {
  askId: string
  /** False: not grounded well enough — `text` says so and `escalationId` names the escalation. */
  answered: boolean
  text: string
  model: string
  citations: KnowledgeCitation[]
  sources: KnowledgeCitation[]
  escalationId: string | null
  topScore: number | null
}

/** Arguments of `knowledge.write`: a document added to one of the tenant's own bases as a draft. */
export interface KnowledgeWriteArgs {
  kb: string
  title: string
  /** Where it comes from; versions of one source share it. */
  source: string
  format: 'text' | 'markdown' | 'html' | 'pdf' | 'csv'
  /** The text (for a PDF, its bytes in base64). */
  content: string
  owner?: string
  tags?: string[]
  classification?: string
  /** Roles that may read it (none: everybody in the tenant). */
  roles?: string[]
}

/** The document `knowledge.write` added: a draft, retrieved only once a knowledge owner approves it. */
export interface KnowledgeDocument {
  id: string
  title: string
  source: string
  version: number
  status: 'draft'
  chunks: number
}
