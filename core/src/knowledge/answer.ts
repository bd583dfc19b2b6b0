import { v7 as uuidv7 } from 'uuid'
import type { Tx } from '../db/database.js'
import { answerExtractive, NO_ANSWER_TEXT } from '../ai/local/extractive-answerer.js'
import type { AiService } from '../ai/service.js'
import { emitEvents } from '../events/outbox.js'
import type { Embed, PluginVia } from './embedding.js'
import { type Passage, type SearchFilters, type SearchPath, searchBase } from './retrieval.js'
import { neutralised } from './neutralise.js'
import type { BaseRow } from './store.js'

export interface Asker {
  orgId: string
  userId: string | null
  roles: string[]
  /** The plugin asking for the user (`ctx.knowledge.ask`), when one does. */
  via?: PluginVia
}

export interface AnswerCitation extends Passage {
  n: number
}

export interface Answer {
  askId: string
  answered: boolean
  text: string
  model: string
  /** The passages the answer cites (answered), or the closest sources (not answered). */
  citations: AnswerCitation[]
  sources: AnswerCitation[]
  escalationId: string | null
  topScore: number | null
}

const CITATION = /\[(\d{1,3})\]/g

/**
 * Retrieves, answers with numbered passages, keeps only citations of passages that were given,
 * and refuses to answer without one (or when the best passage is under the base's threshold):
 * then the caller gets "I don't know" with the closest sources and the base's support role an
 * escalation. Every question is logged for the base's monitoring.
 */
export async function ask(
  inTx: <T>(fn: (tx: Tx) => Promise<T>) => Promise<T>,
  deps: { embed: Embed; ai?: AiService; path: SearchPath },
  base: BaseRow,
  asker: Asker,
  question: string,
  opts: { k?: number; filters?: SearchFilters } = {},
): Promise<Answer> {
  const { vectors } = await deps.embed(asker.orgId, base.embedding_model, [question], asker.userId, asker.via)
  // The model is called between transactions: a long answer holds no connection (the embedded
  // database has one), and the question's record is written once the answer is known.
  const passages = await inTx((tx) =>
    searchBase(tx, base, vectors[0] as number[], question, asker.roles, opts.k ?? 5, opts.filters ?? {}, deps.path),
  )
  const numbered: AnswerCitation[] = passages.map((p, i) => ({ ...p, n: i + 1 }))
  const topScore = numbered.reduce<number | null>(
    (max, p) => (max === null || p.similarity > max ? p.similarity : max),
    null,
  )
  let text = NO_ANSWER_TEXT
  let model = 'local-extractive'
  let cited: number[] = []
  if (topScore !== null && topScore >= base.threshold) {
    const given = numbered.map((p) => ({ n: p.n, id: p.chunkId, text: neutralised(p.text), score: p.similarity }))
    if (deps.ai) {
      const via = asker.via
      const out = await deps.ai.complete(
        {
          tenantId: asker.orgId,
          userId: asker.userId,
          feature: via ? `${via.pluginId}:knowledge` : 'knowledge',
          ...(via ? { installationId: via.installationId, pluginId: via.pluginId } : {}),
        },
        { messages: [{ role: 'user', content: question }], passages: given },
        {
          retrieval: { chunks: numbered.map((p) => ({ id: p.chunkId, score: p.similarity })) },
          ...(via?.within ? { within: via.within } : {}),
        },
      )
      text = out.text
      model = out.model
      cited = out.escalate ? [] : [...text.matchAll(CITATION)].map((m) => Number(m[1]))
    } else {
      const out = answerExtractive(question, given)
      text = out.text
      model = out.model
      cited = out.escalate ? [] : out.citations
    }
  }
  // Citations of passages that were not retrieved are rejected; none left means no answer.
  const valid = [...new Set(cited)].filter((n) => numbered.some((p) => p.n === n))
  const answered = valid.length > 0
  if (!answered) text = NO_ANSWER_TEXT
  else text = text.replace(CITATION, (all, n) => (valid.includes(Number(n)) ? all : ''))
  const askId = uuidv7()
  const sources = numbered.slice(0, 3)
  const escalationId = answered ? null : uuidv7()
  await inTx(async (tx) => {
    await tx.sql(
      `insert into knowledge_asks (id, kb_id, asked_by, question, answered, escalated, top_score, passages, cited, chunk_keys, model)
     values (?::uuid, ?::uuid, ?::uuid, ?, ?, ?, ?, ?, ?, ?::text[], ?)`,
      [
        askId,
        base.id,
        asker.userId,
        question,
        answered,
        !answered,
        topScore,
        numbered.length,
        valid.length,
        numbered.map((p) => p.chunkId),
        model,
      ],
    )
    if (escalationId) {
      await tx.sql(
        `insert into knowledge_escalations (id, kb_id, ask_id, question, role, closest) values (?::uuid, ?::uuid, ?::uuid, ?, ?, ?::jsonb)`,
        [
          escalationId,
          base.id,
          askId,
          question,
          base.support_role,
          JSON.stringify(
            sources.map((s) => ({
              documentId: s.documentId,
              chunkId: s.chunkId,
              title: s.title,
              similarity: s.similarity,
            })),
          ),
        ],
      )
      await emitEvents(tx, {
        type: 'knowledge.question.escalated',
        subject: `knowledge/${base.id}`,
        data: { escalationId, askId, kbId: base.id, role: base.support_role },
      })
    }
  })
  return {
    askId,
    answered,
    text,
    model,
    citations: answered ? numbered.filter((p) => valid.includes(p.n)) : [],
    sources: answered ? numbered.filter((p) => valid.includes(p.n)) : sources,
    escalationId,
    topScore,
  }
}
