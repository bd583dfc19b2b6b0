import type { Database } from '../db/database.js'
import { chainHash, GENESIS_HASH, payloadDigest, type AuditRow } from './chain.js'

export interface ChainReport {
  tenantId: string
  /** Sealed entries checked. */
  entries: number
  /** Entries not sealed yet (committed moments ago, or waiting for a sealer). */
  unsealed: number
  ok: boolean
  /** The first entry where the chain breaks, and why. */
  brokenAt?: { seq: string; id: string | null; reason: string }
  /** The chain head, to anchor elsewhere: a later verify against it also catches a truncated tail. */
  head?: { seq: string; hash: string }
}

const PAGE = 2000

/**
 * Recomputes an organisation's chain from the first entry and names the first broken link:
 * an altered entry (hash mismatch), a deleted one (gap in seq or prev_hash mismatch) or
 * re-ordered ones (prev_hash mismatch). Reads as the auditor role, page by page.
 */
export async function verifyChain(db: Database, tenantId: string): Promise<ChainReport> {
  let expectedSeq = 1n
  let prev = GENESIS_HASH
  let entries = 0
  let lastSeq = 0n
  for (;;) {
    const rows = await db.inOrg(
      tenantId,
      (tx) =>
        tx.sql<AuditRow & { seq_text: string }>(
          `select a.*, a.seq::text as seq_text from audit_log a where a.tenant_id = ?::uuid and a.seq > ?::bigint order by a.seq limit ${PAGE}`,
          [tenantId, lastSeq.toString()],
        ),
      'trellis_auditor',
    )
    for (const r of rows) {
      const row = { ...r, seq: r.seq_text }
      const seq = BigInt(row.seq)
      const broken = (reason: string): ChainReport => ({
        tenantId,
        entries,
        unsealed: 0,
        ok: false,
        brokenAt: { seq: row.seq!, id: row.id, reason },
      })
      if (seq !== expectedSeq)
        return finish(broken(`expected entry ${expectedSeq} but found ${seq}: an entry was deleted or re-numbered`))
      if (row.prev_hash !== prev)
        return finish(broken('prev_hash does not match the previous entry: entries were removed or re-ordered'))
      if (row.data_digest && !row.erased_at && payloadDigest(row.data) !== row.data_digest)
        return finish(broken('the payload does not match its sealed digest: it was altered'))
      if (chainHash(prev, row, row.seq!) !== row.hash)
        return finish(broken('hash does not match the entry: it was altered'))
      prev = row.hash!
      entries++
      expectedSeq++
      lastSeq = seq
    }
    if (rows.length < PAGE) break
  }
  return finish({
    tenantId,
    entries,
    unsealed: 0,
    ok: true,
    head: entries > 0 ? { seq: lastSeq.toString(), hash: prev } : undefined,
  })

  async function finish(report: ChainReport): Promise<ChainReport> {
    const [u] = await db.inOrg(
      tenantId,
      (tx) =>
        tx.sql<{ n: string }>('select count(*)::text as n from audit_log where tenant_id = ?::uuid and hash is null', [
          tenantId,
        ]),
      'trellis_auditor',
    )
    return { ...report, unsealed: Number(u?.n ?? 0) }
  }
}

/** Every organisation that has an audit chain. */
export async function auditedOrganisations(db: Database): Promise<string[]> {
  const rows = await db.inOrg(
    null,
    (tx) => tx.sql<{ tenant_id: string }>('select distinct tenant_id from audit_log order by tenant_id'),
    'trellis_auditor',
  )
  return rows.map((r) => r.tenant_id)
}
