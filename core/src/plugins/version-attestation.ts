/**
 * Where the digest of a version's approved code is anchored: the platform's audit chain. The
 * marketplace records it when a reviewer approves a version (`marketplace.version.approved`), the
 * kernel when a version is registered directly (`plugin.version.registered`: the dev kernel,
 * tests, benchmarks). Rewriting `plugin_versions.code` and `.sha256` together no longer makes
 * code run: it must also match this record, which cannot be changed without breaking the chain
 * (`trellis audit verify`).
 */
import { PLATFORM_ORG, type Tx } from '../db/database.js'

/** The audit actions whose `data.sha256` attests a version's code. */
export const ATTESTING_ACTIONS = Object.freeze({
  registered: 'plugin.version.registered',
  approved: 'marketplace.version.approved',
})

/**
 * The digest the platform's audit chain records for version `id` (the latest approval, else the
 * registration), read in `tx` whatever organisation it acts for; undefined when none is recorded.
 */
export async function attestedDigest(tx: Tx, id: string): Promise<string | undefined> {
  const [current] = await tx.sql<{ org: string | null }>(`select current_setting('app.tenant_id', true) as org`)
  const org = current?.org ?? ''
  if (org !== PLATFORM_ORG) await tx.sql(`select set_config('app.tenant_id', ?, true)`, [PLATFORM_ORG])
  try {
    const rows = await tx.sql<{ action: string; sha256: string | null }>(
      `select action, data->>'sha256' as sha256 from audit_log
        where tenant_id = ?::uuid and target_kind = 'plugin_version' and target_id = ? and action in (?, ?)
        order by id desc`,
      [PLATFORM_ORG, id, ATTESTING_ACTIONS.approved, ATTESTING_ACTIONS.registered],
    )
    const approved = rows.find((r) => r.action === ATTESTING_ACTIONS.approved && r.sha256)
    return (approved ?? rows.find((r) => r.sha256))?.sha256 ?? undefined
  } finally {
    if (org !== PLATFORM_ORG) await tx.sql(`select set_config('app.tenant_id', ?, true)`, [org])
  }
}
