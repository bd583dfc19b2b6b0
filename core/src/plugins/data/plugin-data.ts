/** Removing a plugin's records when a tenant uninstalls it without keeping its data. */
import type { Tx } from '../../db/database.js'

/**
 * Deletes every record of `plugin` in the transaction's tenant (row-level security confines the
 * delete to it) and returns how many were deleted. Other tenants' records and the shared
 * indexes stay.
 */
export async function dropPluginData(tx: Tx, plugin: string): Promise<number> {
  const rows = await tx.sql<{ n: number }>(
    'with d as (delete from plugin_records where plugin = ? returning 1) select count(*)::int as n from d',
    [plugin],
  )
  return rows[0]?.n ?? 0
}
