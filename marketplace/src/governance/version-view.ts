import { Type } from '@sinclair/typebox'
import { classificationSummary, type PluginManifest } from '@trellis/plugin-sdk'

/** A plugin_versions row as the marketplace reads it (no code). */
export interface VersionDbRow {
  id: string
  name: string
  version: string
  sha256: string
  manifest: Record<string, unknown> & {
    capabilities: string[]
    permissions?: Array<{ name: string }>
    description?: string
    categories?: string[]
  }
  publisher_id: string | null
  status: string
  created_at: Date
  created_by: string
  artifact_sha256: string | null
  changelog: string
  checks: Array<{ name: string; status: string; blocking?: boolean; details?: Record<string, unknown> }>
  review: Record<string, unknown> | null
  blocked_reason: string | null
}

const Diff = Type.Object({ added: Type.Array(Type.String()), removed: Type.Array(Type.String()) })

/** A version as the marketplace API shows it. */
export const VersionRow = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  version: Type.String(),
  status: Type.String({ description: 'checking, failed_checks, in_review, approved, rejected or blocked' }),
  sha256: Type.String({ description: 'sha256 of the bundle: what was approved is what gets installed' }),
  artifactSha256: Type.Union([Type.String(), Type.Null()]),
  publisherId: Type.Union([Type.String(), Type.Null()]),
  manifest: Type.Record(Type.String(), Type.Unknown()),
  capabilities: Type.Array(Type.String()),
  permissions: Type.Array(Type.String()),
  changelog: Type.String(),
  checks: Type.Array(Type.Record(Type.String(), Type.Unknown())),
  diff: Type.Union([Type.Object({ capabilities: Diff, permissions: Diff }), Type.Null()], {
    description: 'Against the previous approved version (from the capability-diff check).',
  }),
  review: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
  classification: Type.Object(
    {
      collections: Type.Record(
        Type.String(),
        Type.Object({ fields: Type.Record(Type.String(), Type.String()), unclassified: Type.Array(Type.String()) }),
      ),
      unclassified: Type.Integer(),
      encrypted: Type.Integer(),
    },
    {
      description:
        "Per collection: each field's classification (public, internal, confidential, personal, sensitive-personal) and the fields left unclassified; personal fields are encrypted at rest.",
    },
  ),
  blockedReason: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String({ format: 'date-time' }),
})

export function versionView(r: VersionDbRow) {
  const diffCheck = (r.checks ?? []).find((c) => c.name === 'capability-diff')
  const diff =
    (diffCheck?.details?.diff as
      | { capabilities: { added: string[]; removed: string[] }; permissions: { added: string[]; removed: string[] } }
      | undefined) ?? null
  return {
    id: r.id,
    name: r.name,
    version: r.version,
    status: r.status,
    sha256: r.sha256,
    artifactSha256: r.artifact_sha256,
    publisherId: r.publisher_id,
    manifest: r.manifest,
    capabilities: r.manifest.capabilities ?? [],
    permissions: (r.manifest.permissions ?? []).map((x) => x.name),
    changelog: r.changelog ?? '',
    checks: (r.checks ?? []) as Array<Record<string, unknown>>,
    diff,
    review: r.review,
    classification: classificationSummary(r.manifest as unknown as PluginManifest),
    blockedReason: r.blocked_reason,
    createdAt: new Date(r.created_at).toISOString(),
  }
}
