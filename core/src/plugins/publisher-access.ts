import { Type } from '@sinclair/typebox'
import { PLATFORM_ORG, type Tx } from '../db/database.js'
import { KRN } from '../errors.js'
import { KERNEL_PERMISSIONS as P } from '../identity/permissions.js'
import type { Principal } from '../identity/principal.js'

const isPlatform = (p: { orgKind: string; orgId: string }) => p.orgKind === 'platform' && p.orgId === PLATFORM_ORG

/**
 * Throws KRN_ERR_NOT_FOUND unless the caller publishes the plugin (a member or key of its
 * publishing partner with plugins.publish) or is the platform: what a plugin does across
 * tenants is its publisher's to read, nobody else's.
 */
export async function assertPublisherOf(tx: Tx, p: Principal, plugin: string): Promise<void> {
  const [own] = await tx.sql<{ publisher_id: string | null }>(
    'select publisher_id from plugin_versions where name = ? and publisher_id is not null limit 1',
    [plugin],
  )
  const publisher = p.orgKind === 'partner' && p.permissions.has(P.pluginsPublish) && own?.publisher_id === p.orgId
  if (!publisher && !isPlatform(p)) throw KRN.NOT_FOUND({ what: `plugin ${plugin}` })
}

/** A plugin's name in a route: `/plugins/:scope/:name/…`. */
export const PluginNameParams = Type.Object({
  scope: Type.String({ pattern: '^@[a-z0-9][a-z0-9-]*$' }),
  name: Type.String({ pattern: '^[a-z0-9][a-z0-9-]*$' }),
})
