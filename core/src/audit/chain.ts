import { createHash } from 'node:crypto'
import canonicalizeModule from 'canonicalize'

// The package is CommonJS (module.exports = fn) with ESM-style typings.
const canonicalize = canonicalizeModule as unknown as (input: unknown) => string | undefined

export const GENESIS_HASH = '0'.repeat(64)

/** An audit row as read back from the database (snake_case columns). */
export interface AuditRow {
  id: string
  tenant_id: string
  seq: string | null
  at: Date | string
  actor_kind: string
  actor_id: string
  action: string
  target_kind: string | null
  target_id: string | null
  data: unknown
  ip: string | null
  request_id: string | null
  prev_hash: string | null
  hash: string | null
  /** sha256 of the canonical payload, sealed into the chain in its place (null: sealed before payloads could be erased). */
  data_digest?: string | null
  /** When the payload was erased (data is then `{}`; its digest keeps the chain verifiable). */
  erased_at?: Date | string | null
}

/** The digest of an entry's payload (RFC 8785 canonical JSON, sha256, hex). */
export function payloadDigest(data: unknown): string {
  return createHash('sha256')
    .update(canonicalize(data) ?? '')
    .digest('hex')
}

/**
 * hash = sha256(prev_hash || canonical(entry)), with the entry in RFC 8785 canonical JSON. An
 * entry with a `data_digest` commits to the digest in place of the payload (`dataDigest`), so
 * its payload can be erased and the link still recomputed (docs/governance.md, ADR 0074);
 * older entries commit to the payload itself.
 */
export function chainHash(prevHash: string, row: AuditRow, seq: string): string {
  const payload = row.data_digest ? { dataDigest: row.data_digest } : { data: row.data }
  const entry = {
    id: row.id,
    tenantId: row.tenant_id,
    seq,
    at: new Date(row.at).toISOString(),
    actor: { kind: row.actor_kind, id: row.actor_id },
    action: row.action,
    target: row.target_kind === null ? null : { kind: row.target_kind, id: row.target_id },
    ...payload,
    ip: row.ip,
    requestId: row.request_id,
  }
  return createHash('sha256')
    .update(prevHash)
    .update(canonicalize(entry) ?? '')
    .digest('hex')
}
