import { createHash } from 'node:crypto'
import { v7 as uuidv7 } from 'uuid'
import { sqlArray, type Tx } from '../db/database.js'
import { chunkSections } from './chunker.js'
import { addressesAModel } from './neutralise.js'
import { type Embed, LOCAL_EMBEDDING_MODELS, type PluginVia, vectorLiteral } from './embedding.js'
import { KRN } from '../errors.js'
import { KB } from './errors.js'
import { type DocumentFormat, parseDocument } from './parse.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export interface BaseRow {
  id: string
  tenant_id: string
  slug: string
  name: string
  description: string
  shared: boolean
  embedding_model: string
  embedding_dims: number
  threshold: number
  support_role: string | null
  created_at: string
}

export interface DocumentRow {
  id: string
  kb_id: string
  title: string
  source: string
  version: number
  format: string
  owner: string
  tags: string[]
  classification: string
  roles: string[]
  status: 'draft' | 'approved' | 'retired'
  content_hash: string
  chunk_count: number
  warnings: unknown[]
  approved_by: string | null
  approved_at: string | null
  created_at: string
}

/** A base by id or slug, among those the organisation sees (its own and its partner's shared ones). */
export async function findBase(tx: Tx, orgId: string, kb: string): Promise<BaseRow> {
  const [row] = await tx.sql<BaseRow>(
    UUID.test(kb)
      ? 'select * from knowledge_bases where id = ?::uuid'
      : 'select * from knowledge_bases where slug = ? order by (tenant_id = ?::uuid) desc limit 1',
    UUID.test(kb) ? [kb] : [kb, orgId],
  )
  if (!row) throw KB.BASE_NOT_FOUND({ kb })
  return row
}

/** A base the organisation owns (and so may change). */
export async function ownBase(tx: Tx, orgId: string, kb: string): Promise<BaseRow> {
  const base = await findBase(tx, orgId, kb)
  if (base.tenant_id !== orgId) throw KB.BASE_READ_ONLY({ kb })
  return base
}

export interface NewBase {
  slug: string
  name: string
  description?: string
  shared?: boolean
  embeddingModel?: string
  threshold?: number
  supportRole?: string | null
}

export async function createBase(tx: Tx, _orgId: string, input: NewBase, userId: string): Promise<BaseRow> {
  const model = input.embeddingModel ?? 'local-lexical'
  const dims = LOCAL_EMBEDDING_MODELS[model]
  if (dims === undefined) throw KB.MODEL_UNKNOWN({ model })
  const [row] = await tx.sql<BaseRow>(
    `insert into knowledge_bases (id, slug, name, description, shared, embedding_model, embedding_dims, threshold, support_role, created_by)
     values (?::uuid, ?, ?, ?, ?, ?, ?, ?, ?, ?::uuid) on conflict (tenant_id, slug) do nothing returning *`,
    [
      uuidv7(),
      input.slug,
      input.name,
      input.description ?? '',
      input.shared ?? false,
      model,
      dims,
      input.threshold ?? 0.12,
      input.supportRole ?? null,
      userId,
    ],
  )
  if (!row) throw KB.SLUG_TAKEN({ slug: input.slug })
  return row
}

export interface NewDocument {
  title: string
  source: string
  format: DocumentFormat
  content: string
  owner?: string
  tags?: string[]
  classification?: string
  roles?: string[]
}

export interface PreparedDocument {
  chunks: Array<{ key: string; ordinal: number; heading: string; text: string; vector: number[] }>
  warnings: Array<{ kind: string; chunkId: string }>
  hash: string
}

/** Parses, chunks and embeds a document — no database: a model call must not hold a transaction. */
export async function prepareDocument(
  base: BaseRow,
  input: NewDocument,
  embed: Embed,
  userId: string | null,
  via?: PluginVia,
): Promise<PreparedDocument> {
  const sections = await parseDocument(input.format, input.content)
  const chunks = chunkSections(input.source, sections)
  // Sentences addressed to a model are flagged; the answer path leaves them out of passages.
  const warnings = chunks
    .filter((c) => addressesAModel(c.text))
    .map((c) => ({ kind: 'prompt_injection', chunkId: c.key }))
  const { vectors } = await embed(
    base.tenant_id,
    base.embedding_model,
    chunks.map((c) => `${c.heading}\n${c.text}`),
    userId,
    via,
  )
  return {
    chunks: chunks.map((c, i) => ({ ...c, vector: vectors[i] as number[] })),
    warnings,
    hash: createHash('sha256').update(input.content).digest('hex'),
  }
}

/**
 * Writes a prepared document as the next draft version of its source, with all its chunks —
 * a failure anywhere leaves nothing behind.
 */
export async function writeDocument(
  tx: Tx,
  base: BaseRow,
  input: NewDocument,
  prepared: PreparedDocument,
  userId: string | null,
  hasVector: boolean,
): Promise<DocumentRow> {
  const [{ next } = { next: 1 }] = await tx.sql<{ next: number }>(
    'select coalesce(max(version), 0) + 1 as next from knowledge_documents where kb_id = ?::uuid and source = ?',
    [base.id, input.source],
  )
  const [doc] = await tx.sql<DocumentRow>(
    `insert into knowledge_documents (id, kb_id, shared, title, source, version, format, owner, tags, classification, roles, content_hash, chunk_count, warnings, created_by)
     values (?::uuid, ?::uuid, ?, ?, ?, ?, ?, ?, ?::text[], ?, ?::text[], ?, ?, ?::jsonb, ?::uuid) returning *`,
    [
      uuidv7(),
      base.id,
      base.shared,
      input.title,
      input.source,
      next,
      input.format,
      input.owner ?? '',
      sqlArray(input.tags ?? []),
      input.classification ?? 'internal',
      sqlArray(input.roles ?? []),
      prepared.hash,
      prepared.chunks.length,
      JSON.stringify(prepared.warnings),
      userId,
    ],
  )
  const document = doc as DocumentRow
  await insertChunks(tx, document.id, base, prepared.chunks, hasVector)
  return document
}

/** Prepares and writes in one go (the caller's transaction spans the embedding: local models only). */
export async function ingestDocument(
  tx: Tx,
  base: BaseRow,
  input: NewDocument,
  embed: Embed,
  userId: string | null,
  hasVector: boolean,
): Promise<DocumentRow> {
  return writeDocument(tx, base, input, await prepareDocument(base, input, embed, userId), userId, hasVector)
}

async function insertChunks(
  tx: Tx,
  documentId: string,
  base: BaseRow,
  chunks: Array<{ key: string; ordinal: number; heading: string; text: string; vector: number[] }>,
  hasVector: boolean,
): Promise<void> {
  for (let i = 0; i < chunks.length; i += 500) {
    const batch = chunks.slice(i, i + 500)
    await tx.sql(
      `insert into knowledge_chunks (document_id, chunk_key, kb_id, shared, ordinal, heading, text, embedding${hasVector ? ', embedding_v' : ''})
       select ?::uuid, u.k, ?::uuid, ?, u.o, u.h, u.t, u.e::real[]${hasVector ? ', u.e::real[]::vector' : ''}
         from unnest(?::text[], ?::int[], ?::text[], ?::text[], ?::text[]) as u(k, o, h, t, e)`,
      [
        documentId,
        base.id,
        base.shared,
        batch.map((c) => c.key),
        batch.map((c) => c.ordinal),
        batch.map((c) => c.heading),
        batch.map((c) => c.text),
        batch.map((c) => vectorLiteral(c.vector)),
      ],
    )
  }
}

/** draft → approved (the previous approved version of the source retires) and approved → retired. */
export async function setDocumentStatus(
  tx: Tx,
  base: BaseRow,
  documentId: string,
  to: 'approved' | 'retired',
  userId: string,
): Promise<DocumentRow> {
  const [doc] = await tx.sql<DocumentRow>(
    'select * from knowledge_documents where id = ?::uuid and kb_id = ?::uuid for update',
    [documentId, base.id],
  )
  if (!doc) throw KB.DOCUMENT_NOT_FOUND({ id: documentId })
  const allowed = (doc.status === 'draft' && to === 'approved') || (doc.status === 'approved' && to === 'retired')
  if (!allowed) throw KB.STATUS_TRANSITION({ from: doc.status, to })
  if (to === 'approved') {
    await tx.sql(
      `update knowledge_documents set status = 'retired', retired_at = now() where kb_id = ?::uuid and source = ? and status = 'approved'`,
      [base.id, doc.source],
    )
    // A draft older than the current version must not become current again.
    const [newer] = await tx.sql(
      `select 1 from knowledge_documents where kb_id = ?::uuid and source = ? and version > ? and status <> 'draft' limit 1`,
      [base.id, doc.source, doc.version],
    )
    if (newer) throw KB.STATUS_TRANSITION({ from: 'draft (superseded)', to })
  }
  const [row] =
    to === 'approved'
      ? await tx.sql<DocumentRow>(
          `update knowledge_documents set status = 'approved', approved_by = ?::uuid, approved_at = now() where id = ?::uuid returning *`,
          [userId, documentId],
        )
      : await tx.sql<DocumentRow>(
          `update knowledge_documents set status = 'retired', retired_at = now() where id = ?::uuid returning *`,
          [documentId],
        )
  return row as DocumentRow
}

/**
 * Re-embeds every chunk of a base with a new model and records the model: the chunks are read in
 * one transaction, embedded between transactions (a model call holds no connection), and written
 * all together in another — refused if the base's chunks changed meanwhile.
 */
export async function reembedBase(
  inTx: <T>(fn: (tx: Tx) => Promise<T>) => Promise<T>,
  base: BaseRow,
  model: string,
  embed: Embed,
  hasVector: boolean,
): Promise<{ base: BaseRow; chunks: number }> {
  const read = (tx: Tx) =>
    tx.sql<{ document_id: string; chunk_key: string; heading: string; text: string }>(
      'select document_id, chunk_key, heading, text from knowledge_chunks where kb_id = ?::uuid order by document_id, chunk_key',
      [base.id],
    )
  const rows = await inTx(read)
  const { vectors, dims } = await embed(
    base.tenant_id,
    model,
    rows.map((r) => `${r.heading}\n${r.text}`),
  )
  const updated = await inTx(async (tx) => {
    const now = await read(tx)
    if (now.length !== rows.length || now.some((r, i) => r.chunk_key !== rows[i]?.chunk_key))
      throw KRN.CONFLICT({ reason: 'documents were added to the base meanwhile; change the model again' })
    for (let i = 0; i < rows.length; i += 500) {
      const batch = rows.slice(i, i + 500)
      await tx.sql(
        `update knowledge_chunks c set embedding = u.e::real[]${hasVector ? ', embedding_v = u.e::real[]::vector' : ''}
           from unnest(?::uuid[], ?::text[], ?::text[]) as u(d, k, e)
          where c.document_id = u.d and c.chunk_key = u.k`,
        [
          batch.map((r) => r.document_id),
          batch.map((r) => r.chunk_key),
          batch.map((_, j) => vectorLiteral(vectors[i + j] as number[])),
        ],
      )
    }
    const [row] = await tx.sql<BaseRow>(
      'update knowledge_bases set embedding_model = ?, embedding_dims = ? where id = ?::uuid returning *',
      [model, dims, base.id],
    )
    return row as BaseRow
  })
  return { base: updated, chunks: rows.length }
}
