// Shapes the knowledge routes share: path parameters, slugs, tags and roles, and the views of a base and a document.
import { Type } from '@sinclair/typebox'
import type { BaseRow, DocumentRow } from './store.js'

export const Kb = Type.Object({ kb: Type.String({ minLength: 1, maxLength: 100, description: 'Base id or slug.' }) })
export const KbDoc = Type.Object({
  kb: Type.String({ minLength: 1, maxLength: 100 }),
  id: Type.String({ format: 'uuid' }),
})
export const Slug = Type.String({ pattern: '^(?!bases$|escalations$|asks$)[a-z0-9][a-z0-9-]{1,62}$' })
export const Tags = Type.Array(Type.String({ minLength: 1, maxLength: 100 }), { maxItems: 50 })
export const Roles = Type.Array(Type.String({ minLength: 1, maxLength: 100 }), { maxItems: 50 })

export function baseView(b: BaseRow, orgId: string) {
  return {
    id: b.id,
    slug: b.slug,
    name: b.name,
    description: b.description,
    shared: b.shared,
    owned: b.tenant_id === orgId,
    embeddingModel: b.embedding_model,
    embeddingDims: b.embedding_dims,
    threshold: Number(b.threshold),
    supportRole: b.support_role,
  }
}

export function documentView(d: DocumentRow) {
  return {
    id: d.id,
    title: d.title,
    source: d.source,
    version: d.version,
    format: d.format,
    owner: d.owner,
    tags: d.tags,
    classification: d.classification,
    roles: d.roles,
    status: d.status,
    chunks: d.chunk_count,
    warnings: d.warnings,
    approvedBy: d.approved_by,
    approvedAt: d.approved_at,
  }
}
