import type { KnowledgePassage } from '@trellis/plugin-sdk'
import { sqlArray, type Tx } from '../db/database.js'
import { contentTerms } from '../ai/local/text-features.js'
import { vectorLiteral } from './embedding.js'
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

/** An OR of the question's content words as a tsquery (`'word' | 'other'`); only letters and digits reach it. */
export function orQuery(question: string): string {
  const words = [...new Set(contentTerms(question))].filter((w) => /^[\p{L}\p{N}]+$/u.test(w)).slice(0, 32)
  return words.map((w) => `'${w}':*`).join(' | ')
}

/**
 * The hybrid query: PostgreSQL full-text ranking and vector similarity over the approved,
 * current documents of one base the caller's roles may read (tenant by RLS), merged by
 * reciprocal rank fusion. With pgvector the similarity is `<#>` over `vector`; without it an
 * exact scan of `real[]` dot products.
 */
export function hybridSql(hasVector: boolean): string {
  const sim = hasVector ? '(-(c.embedding_v <#> q.v))' : 'trellis_real_dot(c.embedding, q.e)'
  const qv = hasVector ? '?::real[]::vector as v' : '?::real[] as e'
  return `
with q as (select ${qv}, to_tsquery('english', ?) as t),
docs as (
  select id from knowledge_documents
   where kb_id = ?::uuid and status = 'approved'
     and (cardinality(roles) = 0 or roles && ?::text[])
     and tags @> ?::text[]
),
lex as (
  select c.document_id, c.chunk_key, row_number() over (order by ts_rank_cd(c.tsv, q.t) desc, c.chunk_key) as r
    from knowledge_chunks c, q
   where c.kb_id = ?::uuid and c.document_id in (select id from docs) and c.tsv @@ q.t
   order by r limit ${DEPTH}
),
vec as (
  select c.document_id, c.chunk_key, row_number() over (order by ${sim} desc, c.chunk_key) as r
    from knowledge_chunks c, q
   where c.kb_id = ?::uuid and c.document_id in (select id from docs)
   order by r limit ${DEPTH}
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

export function hybridParams(
  base: BaseRow,
  vector: number[],
  question: string,
  roles: string[],
  k: number,
  filters: SearchFilters,
) {
  const tsq = orQuery(question) || "''"
  return [vectorLiteral(vector), tsq, base.id, sqlArray(roles), sqlArray(filters.tags ?? []), base.id, base.id, k]
}

export async function searchBase(
  tx: Tx,
  base: BaseRow,
  vector: number[],
  question: string,
  roles: string[],
  k: number,
  filters: SearchFilters,
  hasVector: boolean,
): Promise<Passage[]> {
  const rows = await tx.sql<{
    document_id: string
    chunk_key: string
    heading: string
    text: string
    title: string
    source: string
    version: number
    rrf: number
    similarity: number
  }>(hybridSql(hasVector), hybridParams(base, vector, question, roles, k, filters))
  return rows.map((r) => ({
    documentId: r.document_id,
    chunkId: r.chunk_key,
    title: r.title,
    source: r.source,
    version: r.version,
    heading: r.heading,
    text: r.text,
    rrf: Number(r.rrf),
    similarity: Number(r.similarity),
  }))
}

/** Whether the database has pgvector (the migration added `embedding_v` only then). */
export async function detectVector(tx: Tx): Promise<boolean> {
  const [row] = await tx.sql<{ found: boolean }>(
    `select exists (select 1 from information_schema.columns where table_name = 'knowledge_chunks' and column_name = 'embedding_v') as found`,
  )
  return row?.found === true
}
