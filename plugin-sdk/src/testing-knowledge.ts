/**
 * `ctx.knowledge` in the in-memory test host: approved documents given as data, searched by
 * shared words (not the kernel's hybrid ranking — for a plugin's logic, not retrieval
 * quality), trimmed by the caller's roles like the kernel, and drafts written kept aside.
 */
import { TrellisError } from './errors.js'
import type {
  KnowledgeAnswer,
  KnowledgeCitation,
  KnowledgeDocument,
  KnowledgeSearchResult,
  KnowledgeWriteArgs,
} from './knowledge-types.js'
import type { HostOps } from './protocol.js'

/** An approved document of a test knowledge base. */
export interface TestKnowledgeDocument {
  title: string
  text: string
  source?: string
  tags?: string[]
  /** Roles that may read it (none: everybody). */
  roles?: string[]
}

/** Knowledge for {@link TestKnowledgeOptions}: approved documents by base slug. */
export interface TestKnowledgeOptions {
  bases: Record<string, TestKnowledgeDocument[]>
  /** The invoking user's roles in the tenant (default none: only unrestricted documents). */
  roles?: string[]
  /** Lowest share of the question's words a passage must hold to answer (default 0.3). */
  threshold?: number
}

const words = (s: string) => new Set(s.toLowerCase().match(/[\p{L}\p{N}]{3,}/gu) ?? [])

type Denied = (reason: string) => TrellisError

/** The three knowledge host operations over `options`, recording drafts in `drafts`. */
export function testKnowledgeOps(
  options: TestKnowledgeOptions | undefined,
  can: (kind: string) => boolean,
  denied: Denied,
  drafts: KnowledgeWriteArgs[],
  nextId: () => string,
) {
  const base = (kb: string) => {
    const docs = options?.bases[kb]
    if (!docs)
      throw new TrellisError('KB_ERR_BASE_NOT_FOUND', 404, 'Knowledge base not found', `no knowledge base ${kb}`)
    return docs
  }
  const search = (kb: string, query: string, k: number, tags: string[] = []): KnowledgeCitation[] => {
    const roles = options?.roles ?? []
    const asked = words(query)
    return base(kb)
      .map((d, i) => ({ d, i }))
      .filter(({ d }) => !d.roles?.length || d.roles.some((r) => roles.includes(r)))
      .filter(({ d }) => tags.every((t) => d.tags?.includes(t)))
      .map(({ d, i }) => {
        const have = words(`${d.title} ${d.text}`)
        const shared = [...asked].filter((w) => have.has(w)).length
        return { d, i, score: asked.size ? shared / asked.size : 0 }
      })
      .filter((x) => x.score > 0)
      .sort((a, b) => b.score - a.score || a.i - b.i)
      .slice(0, k)
      .map(({ d, i, score }, n) => ({
        n: n + 1,
        documentId: `${kb}-${i + 1}`,
        chunkId: `${kb}-${i + 1}-0`,
        title: d.title,
        source: d.source ?? d.title,
        version: 1,
        heading: d.title,
        text: d.text,
        rrf: score,
        similarity: score,
      }))
  }
  return {
    'knowledge.search': (a: HostOps['knowledge.search']['args']): KnowledgeSearchResult => {
      if (!can('knowledge:search')) throw denied('the plugin was not granted "knowledge:search"')
      return { items: search(a.kb, a.query, a.k ?? 5, a.tags).map(({ n: _n, ...p }) => p) }
    },
    'knowledge.ask': (a: HostOps['knowledge.ask']['args']): KnowledgeAnswer => {
      if (!can('knowledge:search')) throw denied('the plugin was not granted "knowledge:search"')
      const found = search(a.kb, a.question, a.k ?? 5, a.tags)
      const top = found[0]
      const grounded = top !== undefined && top.similarity >= (options?.threshold ?? 0.3)
      return {
        askId: nextId(),
        answered: grounded,
        text: grounded ? `${top.text} [1]` : "I don't know: no approved passage answers this.",
        model: 'test-knowledge',
        citations: grounded ? [top] : [],
        sources: grounded ? [top] : found.slice(0, 3),
        escalationId: grounded ? null : nextId(),
        topScore: top?.similarity ?? null,
      }
    },
    'knowledge.write': (a: HostOps['knowledge.write']['args']): KnowledgeDocument => {
      if (!can('knowledge:write')) throw denied('the plugin was not granted "knowledge:write"')
      base(a.kb)
      drafts.push(a)
      const version = drafts.filter((d) => d.kb === a.kb && d.source === a.source).length
      return { id: nextId(), title: a.title, source: a.source, version, status: 'draft', chunks: 1 }
    },
  }
}
