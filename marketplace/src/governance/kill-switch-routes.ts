import { Type } from '@sinclair/typebox'
import { MKT_GOVERNANCE as MKT } from './errors.js'
import { VersionRow, versionView, type VersionDbRow } from './version-view.js'
import {
  AUTH,
  KERNEL_PERMISSIONS as P,
  KRN,
  PLATFORM_ORG,
  auditMeta,
  kernelEvent,
  principalOf,
  requirePermission,
  type Api,
} from '@trellis/core'
import type { Services } from '../services.js'

const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) })

/**
 * The kill switch: a platform admin blocks an approved version; every installation of it stops
 * serving at once (`PLG_ERR_VERSION_BLOCKED` to callers, in every kernel process within a
 * second), each tenant running it gets a `marketplace.version.blocked` event and an audit
 * entry, and so do the platform and the publisher. Unblocking reverses it.
 */
export function registerKillSwitchRoutes(app: Api, k: Services): void {
  for (const action of ['block', 'unblock'] as const) {
    app.post(
      `/marketplace/versions/:id/${action}`,
      {
        preHandler: requirePermission(P.platformAdmin),
        schema: {
          tags: ['marketplace'],
          summary:
            action === 'block'
              ? 'Kill switch: block an approved version everywhere (its installations stop serving at once)'
              : 'Lift a block',
          params: IdParams,
          body:
            action === 'block'
              ? Type.Object({ reason: Type.String({ minLength: 3, maxLength: 2000 }) }, { additionalProperties: false })
              : Type.Object({}, { additionalProperties: false }),
          response: { 200: VersionRow },
        },
      },
      async (request) => {
        const p = principalOf(request)
        if (p.orgId !== PLATFORM_ORG) throw AUTH.FORBIDDEN({ permission: P.platformAdmin })
        const meta = auditMeta(request)
        const reason = (request.body as { reason?: string }).reason ?? ''
        const row = await k.tx.run(PLATFORM_ORG, async (tx) => {
          const v = await k.versions.get(tx, request.params.id, { lock: true })
          if (!v) throw KRN.NOT_FOUND({ what: 'plugin version' })
          const updated =
            action === 'block' ? await k.versions.block(tx, v.id, reason) : await k.versions.unblock(tx, v.id)
          if (!updated) throw MKT.NOT_BLOCKABLE({ status: v.status })
          const tenants = [
            ...new Set(
              (
                await tx.sql<{ tenant_id: string }>('select tenant_id from trellis_installations_of_version(?::uuid)', [
                  v.id,
                ])
              ).map((r) => r.tenant_id),
            ),
          ]
          const verb = action === 'block' ? 'blocked' : 'unblocked'
          const data = {
            plugin: v.name,
            version: v.version,
            sha256: v.sha256,
            ...(action === 'block' ? { reason } : {}),
            tenants: tenants.length,
          }
          await k.audit.append(tx, PLATFORM_ORG, {
            ...meta,
            action: `marketplace.version.${verb}`,
            target: { kind: 'plugin_version', id: v.id },
            data,
          })
          for (const tenant of tenants) {
            await tx.useOrg(tenant)
            await k.audit.append(tx, tenant, {
              ...meta,
              action: `marketplace.version.${verb}`,
              target: { kind: 'plugin_version', id: v.id },
              data: { plugin: v.name, version: v.version, ...(action === 'block' ? { reason } : {}) },
            })
          }
          await tx.useOrg(PLATFORM_ORG)
          const event =
            action === 'block'
              ? kernelEvent('marketplace.version.blocked', `plugin/${v.name}`, {
                  versionId: v.id,
                  plugin: v.name,
                  version: v.version,
                  reason,
                })
              : kernelEvent('marketplace.version.unblocked', `plugin/${v.name}`, {
                  versionId: v.id,
                  plugin: v.name,
                  version: v.version,
                })
          await k.events.emitTo(tx, PLATFORM_ORG, [PLATFORM_ORG, v.publisher_id, ...tenants], event)
          return updated as unknown as VersionDbRow
        })
        return versionView(row)
      },
    )
  }
}
