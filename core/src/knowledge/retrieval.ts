import type { KnowledgePassage } from '@trellis/plugin-sdk'
import { sqlArray, type Tx } from '../db/database.js'
import { contentTerms } from '../ai/local/text-features.js'
import { vectorLiteral } from './embedding.js'
import { type BaseIndexes, type LexicalPlan, prefixQuery } from './base-index.js'
import type { BaseRow } from './store.js'

export interface SearchFilters {
  /** Only documents carrying every one of these tags. */
  tags?: string[]
}

/** A retrieved passage, as the HTTP API and `ctx.knowledge` answer it. */
export type Passage = KnowledgePassage

/** Candidates each ranking contributes to the fusion, and the fusion constant (Cormack et al.). */
const DEPTH = 50
const RRF_K = 60
/** The full-text side asks for at most this many of the question's terms: the rarest in the base. */
const LEXICAL_TERMS = 3
/**
 * Past this many candidate chunks (the question's rarest terms are common in the base) the
 * full-text statement tests every chunk of the visible documents instead of the ones named.
 */
const CANDIDATES = 2_000
/** The question's content words a tsquery may hold (letters and digits only). */
function queryTerms(question: string): string[] {
  return [...new Set(contentTerms(question))].filter((w) => /^[\p{L}\p{N}]+$/u.test(w)).slice(0, 32)
}

/** How a database ranks by vectors, and the process's cache of bases (ADR 0086). */
export interface SearchPath {
  /** pgvector: `<#>` in SQL when the in-process scan cannot serve a base; otherwise `real[]` arithmetic. */
  hasVector: boolean
  indexes: BaseIndexes
}

/**
 * The hybrid query in one statement (ADR 0030) over the given documents (`?::uuid[]`): the
 * fallback when a base's vectors are not all of its size, so the in-process scan cannot serve it.
 * With pgvector the similarity is `<#>`; without it the exact scan of `real[]` dot products.
 */
export function hybridSql(hasVector: boolean): string {
  const sim = hasVector ? '(-(c.embedding_v <#> q.v))' : 'trellis_real_dot(c.embedding, q.e)'
  const qv = hasVector ? '?::real[]::vector as v' : '?::real[] as e'
  const vec = `select c.document_id, c.chunk_key, row_number() over (order by ${sim} desc, c.chunk_key) as r
    from knowledge_chunks c, q
   where c.kb_id = ?::uuid and c.document_id = any(?::uuid[])
   order by r limit ${DEPTH}`
  return `
with q as (select ${qv}, ?::tsquery as t),
lex as (
  select c.document_id, c.chunk_key, row_number() over (order by ts_rank_cd(c.tsv, q.t) desc, c.chunk_key) as r
    from knowledge_chunks c, q
   where c.kb_id = ?::uuid and c.document_id = any(?::uuid[]) and c.tsv @@ q.t
   order by r limit ${DEPTH}
),
vec as (
  ${vec}
),
fused as (
  select document_id, chunk_key, sum(1.0 / (${RRF_K} + r)) as rrf
    from (select document_id, chunk_key, r from lex union all select document_id, chunk_key, r from vec) u
   group by document_id, chunk_key
   order by rrf desc limit ?
)
select c.document_id, c.chunk_key, c.heading, c.text, d.title, d.source, d.version,
       f.rrf::float8 as rrf, ${sim}::float8 as similarity
  from fused f
  join knowledge_chunks c on c.document_id = f.document_id and c.chunk_key = f.chunk_key
  join knowledge_documents d on d.id = c.document_id, q
 order by f.rrf desc, c.chunk_key`
}

type PassageRow = {
  document_id: string
  chunk_key: string
  heading: string
  text: string
  title: string
  source: string
  version: number
  rrf: number
  similarity: number
}

const passage = (r: PassageRow): Passage => ({
  documentId: r.document_id,
  chunkId: r.chunk_key,
  title: r.title,
  source: r.source,
  version: r.version,
  heading: r.heading,
  text: r.text,
  rrf: Number(r.rrf),
  similarity: Number(r.similarity),
})

/** The approved, current documents of a base the caller's roles may read, with the filter's tags (RLS scopes the tenant). */
async function visibleDocuments(tx: Tx, base: BaseRow, roles: string[], filters: SearchFilters): Promise<string[]> {
  const rows = await tx.sql<{ id: string }>(
    `select id from knowledge_documents
      where kb_id = ?::uuid and status = 'approved'
        and (cardinality(roles) = 0 or roles && ?::text[])
        and tags @> ?::text[]`,
    [base.id, sqlArray(roles), sqlArray(filters.tags ?? [])],
  )
  return rows.map((r) => r.id)
}

/**
 * The full-text top {@link DEPTH}: `ts_rank_cd` over the chunks that match the plan's tsquery, in
 * the caller's transaction under RLS. With candidates (ADR 0100) the chunks are reached by their
 * primary key alone — which row-level security lets PostgreSQL use, where it cannot use the GIN
 * index for `@@`; no other condition it could prefer (the base's id would lead it to every chunk
 * of the base when the table has no statistics, as on the embedded database) — and `@@` is still
 * tested on each; without candidates, every chunk of the visible documents.
 */
async function rankLexical(
  tx: Tx,
  base: BaseRow,
  plan: LexicalPlan,
  ids: string,
): Promise<Array<{ document_id: string; chunk_key: string }>> {
  if (plan.candidates)
    return tx.sql(
      `select c.document_id, c.chunk_key
         from unnest(?::uuid[], ?::text[]) as f(document_id, chunk_key)
         join knowledge_chunks c on c.document_id = f.document_id and c.chunk_key = f.chunk_key,
              (select ?::tsquery as t) q
        where c.tsv @@ q.t
        order by ts_rank_cd(c.tsv, q.t) desc, c.chunk_key limit ${DEPTH}`,
      [
        `{${plan.candidates.map((c) => c.documentId).join(',')}}`,
        sqlArray(plan.candidates.map((c) => c.chunkKey)),
        plan.query,
      ],
    )
  return tx.sql(
    `select c.document_id, c.chunk_key
       from knowledge_chunks c, (select ?::tsquery as t) q
      where c.kb_id = ?::uuid and c.document_id = any(?::uuid[]) and c.tsv @@ q.t
      order by ts_rank_cd(c.tsv, q.t) desc, c.chunk_key limit ${DEPTH}`,
    [plan.query, base.id, ids],
  )
}

/**
 * The hybrid query: PostgreSQL full-text ranking over the question's rarest terms and vector
 * similarity over the approved, current documents of one base the caller's roles may read
 * (tenant by RLS), merged by reciprocal rank fusion (ADR 0030, ADR 0086). The similarity is the
 * exact scan in process over the base's cached vectors, on both databases; SQL lists the visible
 * documents, ranks by full text, and gives the chosen passages' texts, all in the caller's
 * transaction.
 */
export async function searchBase(
  tx: Tx,
  base: BaseRow,
  vector: number[],
  question: string,
  roles: string[],
  k: number,
  filters: SearchFilters,
  path: SearchPath,
): Promise<Passage[]> {
  const docs = await visibleDocuments(tx, base, roles, filters)
  if (docs.length === 0) return []
  const view = await path.indexes.ensure(tx, base, docs)
  const terms = await path.indexes.lexemesOf(tx, queryTerms(question))
  const plan = path.indexes.lexical(view, terms, LEXICAL_TERMS, docs, CANDIDATES)
  const ids = `{${docs.join(',')}}`
  if (!view.complete) {
    // Counts over part of the base: when none of the loaded chunks holds a term, ask for all of them.
    const rows = await tx.sql<PassageRow>(hybridSql(path.hasVector), [
      vectorLiteral(vector),
      plan.query || prefixQuery([...new Set(terms.flat())]) || "''",
      base.id,
      ids,
      base.id,
      ids,
      k,
    ])
    return rows.map(passage)
  }
  const lex = plan.query === '' || plan.candidates?.length === 0 ? [] : await rankLexical(tx, base, plan, ids)
  const vec = path.indexes.scan(view, docs, vector, DEPTH)
  const fused = new Map<string, { documentId: string; chunkKey: string; rrf: number; similarity: number | null }>()
  const add = (documentId: string, chunkKey: string, r: number, similarity: number | null) => {
    const key = `${documentId}/${chunkKey}`
    const f = fused.get(key) ?? { documentId, chunkKey, rrf: 0, similarity }
    f.rrf += 1 / (RRF_K + r)
    f.similarity ??= similarity
    fused.set(key, f)
  }
  for (const [i, row] of lex.entries()) add(row.document_id, row.chunk_key, i + 1, null)
  for (const [i, c] of vec.entries()) add(c.documentId, c.chunkKey, i + 1, c.score)
  const top = [...fused.values()]
    .sort((a, b) => b.rrf - a.rrf || (a.chunkKey < b.chunkKey ? -1 : a.chunkKey > b.chunkKey ? 1 : 0))
    .slice(0, k)
  if (top.length === 0) return []
  const rows = await tx.sql<Omit<PassageRow, 'rrf' | 'similarity'>>(
    `select c.document_id, c.chunk_key, c.heading, c.text, d.title, d.source, d.version
       from unnest(?::uuid[], ?::text[]) as f(document_id, chunk_key)
       join knowledge_chunks c on c.document_id = f.document_id and c.chunk_key = f.chunk_key
       join knowledge_documents d on d.id = c.document_id`,
    [`{${top.map((f) => f.documentId).join(',')}}`, sqlArray(top.map((f) => f.chunkKey))],
  )
  const byKey = new Map(rows.map((r) => [`${r.document_id}/${r.chunk_key}`, r]))
  return top.flatMap((f) => {
    const r = byKey.get(`${f.documentId}/${f.chunkKey}`)
    if (!r) return []
    const similarity = f.similarity ?? path.indexes.similarity(view, f.documentId, f.chunkKey, vector) ?? 0
    return [passage({ ...r, rrf: f.rrf, similarity })]
  })
}

/** Whether the database has pgvector (the migration added `embedding_v` only then). */
export async function detectVector(tx: Tx): Promise<boolean> {
  const [row] = await tx.sql<{ found: boolean }>(
    `select exists (select 1 from information_schema.columns where table_name = 'knowledge_chunks' and column_name = 'embedding_v') as found`,
  )
  return row?.found === true
}
