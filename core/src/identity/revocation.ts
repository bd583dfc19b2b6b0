import type { Tx } from '../db/database.js'
import type { KernelContext } from '../kernel-context.js'

/**
 * Ends everything a member holds in one organisation, in the transaction that removes them or
 * changes their role: their sessions there (refresh tokens stop working, and the access tokens
 * issued for them are refused — see {@link OrgStatusCache}) and, when `apiKeys`, the API keys
 * they created there. Returns the session families ended, for {@link announceRevoked}.
 */
export async function revokeMemberAccess(
  tx: Tx,
  orgId: string,
  userId: string,
  opts: { apiKeys: boolean },
): Promise<string[]> {
  const rows = await tx.sql<{ family_id: string }>(
    'update sessions set revoked_at = now() where tenant_id = ?::uuid and user_id = ?::uuid and revoked_at is null returning family_id',
    [orgId, userId],
  )
  if (opts.apiKeys)
    await tx.sql('update api_keys set revoked_at = now() where created_by = ?::uuid and revoked_at is null', [userId])
  return [...new Set(rows.map((r) => r.family_id))]
}

/**
 * After the revoking transaction committed: this process refuses the ended sessions at once;
 * every other process does when its organisation status entry is next read (within its TTL).
 */
export type RevocationNotice = Pick<KernelContext, 'revokedSessions' | 'orgStatus'>

export async function announceRevoked(k: RevocationNotice, orgId: string, families: string[]): Promise<void> {
  // Nothing ended (a member who never signed in): the organisation's status entry is still
  // true, and forgetting it would make the organisation's next requests wait for a re-read.
  if (families.length === 0) return
  k.orgStatus.forget(orgId)
  // With Redis every process refuses them once this resolves; a Redis failure leaves it to the
  // organisation-status cache's re-read of the session table (within a second).
  await Promise.all(families.map((f) => k.revokedSessions.add(f))).catch(() => {})
}
