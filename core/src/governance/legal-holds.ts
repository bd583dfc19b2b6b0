/**
 * Legal holds: while one is active, the retention job purges nothing it covers — the whole
 * tenant, one target, or a set of record ids in one target. Holds are released, never deleted.
 */
import { v7 as uuidv7 } from 'uuid'
import { sqlArray, type Tx } from '../db/database.js'
import { GOV } from './errors.js'
import { targetName, tenantTargets } from './retention-targets.js'

/** One legal hold as listed. */
export interface LegalHold {
  id: string
  /** null: the whole tenant. */
  target: string | null
  /** null: everything in the target. */
  recordIds: string[] | null
  reason: string
  createdBy: string
  createdAt: string
  releasedAt: string | null
  releasedBy: string | null
}

/** What the active holds of a tenant cover. */
export interface ActiveHolds {
  tenant: boolean
  targets: Set<string>
  /** Target → held record ids. */
  records: Map<string, string[]>
}

interface HoldRow {
  id: string
  target: string | null
  record_ids: string[] | null
  reason: string
  created_by: string
  created_at: Date
  released_at: Date | null
  released_by: string | null
}

const view = (r: HoldRow): LegalHold => ({
  id: r.id,
  target: r.target,
  recordIds: r.record_ids,
  reason: r.reason,
  createdBy: r.created_by,
  createdAt: new Date(r.created_at).toISOString(),
  releasedAt: r.released_at ? new Date(r.released_at).toISOString() : null,
  releasedBy: r.released_by,
})

const COLS = 'id, target, record_ids, reason, created_by, created_at, released_at, released_by'

/** Places a hold in the tenant whose transaction this is. */
export async function placeLegalHold(
  tx: Tx,
  hold: { target?: string | null; recordIds?: string[] | null; reason: string },
  actor: string,
): Promise<LegalHold> {
  const target = hold.target ?? null
  const recordIds = hold.recordIds ?? null
  if (recordIds && target === null) throw GOV.LEGAL_HOLD_INVALID({ reason: 'recordIds need the target they are in' })
  if (recordIds && recordIds.length === 0)
    throw GOV.LEGAL_HOLD_INVALID({ reason: 'recordIds is empty: omit it to hold the whole target' })
  if (target !== null && !(await tenantTargets(tx)).some((t) => targetName(t) === target))
    throw GOV.RETENTION_TARGET_UNKNOWN({ target })
  const [row] = await tx.sql<HoldRow>(
    `insert into legal_holds (id, target, record_ids, reason, created_by) values (?::uuid, ?, ?::uuid[], ?, ?) returning ${COLS}`,
    [uuidv7(), target, recordIds && sqlArray([...new Set(recordIds)]), hold.reason, actor],
  )
  return view(row!)
}

/** The tenant's holds, newest first (released ones too unless `activeOnly`). */
export async function listLegalHolds(tx: Tx, activeOnly = false): Promise<LegalHold[]> {
  const rows = await tx.sql<HoldRow>(
    `select ${COLS} from legal_holds ${activeOnly ? 'where released_at is null' : ''} order by id desc limit 1000`,
  )
  return rows.map(view)
}

/** Releases an active hold; `GOV_ERR_LEGAL_HOLD_NOT_FOUND` when there is none with `id`. */
export async function releaseLegalHold(tx: Tx, id: string, actor: string): Promise<LegalHold> {
  const [row] = await tx.sql<HoldRow>(
    `update legal_holds set released_at = now(), released_by = ? where id = ?::uuid and released_at is null returning ${COLS}`,
    [actor, id],
  )
  if (!row) throw GOV.LEGAL_HOLD_NOT_FOUND({ id })
  return view(row)
}

/** What the tenant's active holds cover. */
export async function activeHolds(tx: Tx): Promise<ActiveHolds> {
  const out: ActiveHolds = { tenant: false, targets: new Set(), records: new Map() }
  for (const h of await listLegalHolds(tx, true)) {
    if (h.target === null) out.tenant = true
    else if (h.recordIds === null) out.targets.add(h.target)
    else out.records.set(h.target, [...(out.records.get(h.target) ?? []), ...h.recordIds])
  }
  return out
}
