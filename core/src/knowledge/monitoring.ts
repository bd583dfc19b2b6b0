import type { Tx } from '../db/database.js'
import type { Embed } from './embedding.js'
import { KB } from './errors.js'
import { type SearchPath, searchBase } from './retrieval.js'
import type { BaseRow } from './store.js'

export interface BaseMetrics {
  questions: number
  answered: number
  noAnswerRate: number
  escalationRate: number
  /** Over answered questions: cited passages ÷ passages given. */
  citationCoverage: number
  topScore: { p10: number | null; p50: number | null; p90: number | null; histogram: number[] }
  feedback: { helpful: number; notHelpful: number }
}

/** Retrieval monitoring of one base over the asker organisation's questions (optionally since a time). */
export async function baseMetrics(tx: Tx, base: BaseRow, since: string | null): Promise<BaseMetrics> {
  const [row] = await tx.sql<{
    questions: number
    answered: number
    escalated: number
    coverage: number | null
    p10: number | null
    p50: number | null
    p90: number | null
    helpful: number
    not_helpful: number
    histogram: number[]
  }>(
    `select count(*)::int as questions,
            count(*) filter (where answered)::int as answered,
            count(*) filter (where escalated)::int as escalated,
            avg(cited::float8 / nullif(passages, 0)) filter (where answered) as coverage,
            percentile_cont(0.1) within group (order by top_score) as p10,
            percentile_cont(0.5) within group (order by top_score) as p50,
            percentile_cont(0.9) within group (order by top_score) as p90,
            count(*) filter (where helpful)::int as helpful,
            count(*) filter (where not helpful)::int as not_helpful,
            array(select count(a2.*)::int from generate_series(0, 9) b
                    left join knowledge_asks a2 on a2.kb_id = ?::uuid and (?::timestamptz is null or a2.created_at >= ?::timestamptz)
                     and least(greatest(floor(coalesce(a2.top_score, 0) * 10), 0), 9) = b
                   group by b order by b) as histogram
       from knowledge_asks where kb_id = ?::uuid and (?::timestamptz is null or created_at >= ?::timestamptz)`,
    [base.id, since, since, base.id, since, since],
  )
  const r = row as NonNullable<typeof row>
  const rate = (n: number) => (r.questions === 0 ? 0 : n / r.questions)
  const num = (v: number | null) => (v === null ? null : Number(v))
  return {
    questions: r.questions,
    answered: r.answered,
    noAnswerRate: rate(r.questions - r.answered),
    escalationRate: rate(r.escalated),
    citationCoverage: r.coverage === null ? 0 : Number(r.coverage),
    topScore: { p10: num(r.p10), p50: num(r.p50), p90: num(r.p90), histogram: r.histogram },
    feedback: { helpful: r.helpful, notHelpful: r.not_helpful },
  }
}

export interface EvaluationResult {
  questions: number
  k: number
  hitRate: number
  mrr: number
  misses: Array<{ question: string; expect: string }>
}

/**
 * Runs the base's test questions through retrieval: a hit at k when a passage among the first k
 * contains the expected text; MRR over the rank of the first such passage (within 10).
 */
export async function evaluateBase(
  inTx: <T>(fn: (tx: Tx) => Promise<T>) => Promise<T>,
  deps: { embed: Embed; path: SearchPath },
  base: BaseRow,
  orgId: string,
  roles: string[],
  k: number,
): Promise<EvaluationResult> {
  const questions = await inTx((tx) =>
    tx.sql<{ question: string; expect: string }>(
      'select question, expect from knowledge_eval_questions where kb_id = ?::uuid order by id',
      [base.id],
    ),
  )
  if (questions.length === 0) throw KB.NO_EVAL_QUESTIONS({ kb: base.slug })
  const { vectors } = await deps.embed(
    orgId,
    base.embedding_model,
    questions.map((q) => q.question),
  )
  const depth = Math.max(k, 10)
  let hits = 0
  let reciprocal = 0
  const misses: EvaluationResult['misses'] = []
  // The questions are embedded between transactions; the searches share one.
  const ranked = await inTx(async (tx) => {
    const out = []
    for (const [i, q] of questions.entries())
      out.push(await searchBase(tx, base, vectors[i] as number[], q.question, roles, depth, {}, deps.path))
    return out
  })
  for (const [i, q] of questions.entries()) {
    const passages = ranked[i] ?? []
    const norm = (s: string) => s.replace(/\s+/g, ' ').toLowerCase()
    const rank = passages.findIndex((p) => norm(p.text).includes(norm(q.expect))) + 1
    if (rank > 0 && rank <= k) hits++
    else misses.push(q)
    if (rank > 0) reciprocal += 1 / rank
  }
  return {
    questions: questions.length,
    k,
    hitRate: hits / questions.length,
    mrr: reciprocal / questions.length,
    misses,
  }
}
