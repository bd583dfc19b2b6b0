import type { Tx } from '../db/database.js'
import type { OrgKind } from './entities.js'

export interface MembershipGrant {
  orgId: string
  orgKind: OrgKind
  role: string
  permissions: string[]
}

/** A user's memberships in every organisation, through the narrow look-up sign-in is allowed (in a `signInTx`). */
export async function membershipsOf(tx: Tx, userId: string): Promise<MembershipGrant[]> {
  const rows = await tx.sql<{ tenant_id: string; org_kind: OrgKind; role_name: string; permissions: string[] }>(
    'select * from trellis_signin_memberships(?::uuid)',
    [userId],
  )
  return rows.map((r) => ({ orgId: r.tenant_id, orgKind: r.org_kind, role: r.role_name, permissions: r.permissions }))
}
