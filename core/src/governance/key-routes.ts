import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import { AUTH } from '../errors.js'
import { appendAudit } from '../audit/audit-log.js'
import { auditMeta, principalOf, requirePermission } from '../http/guards.js'
import { KERNEL_PERMISSIONS as P } from '../identity/permissions.js'
import type { TenantKeyring } from './tenant-keys.js'

export interface KeyRouteDeps {
  orgTx: OrgTx
  keyring: TenantKeyring
}

const KeyView = Type.Object({
  id: Type.String(),
  kind: Type.String({ description: 'data (encrypts field values) or index (keys the blind index)' }),
  status: Type.String({ description: 'active or retired (a retired data key still decrypts older values)' }),
  platformKey: Type.String({ description: 'Fingerprint of the platform key that wraps it' }),
  createdAt: Type.String({ format: 'date-time' }),
  retiredAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
})

/**
 * A tenant admin's view of the keys that encrypt its personal fields: list them (never their
 * material), rotate the data key, and re-wrap every key under the current platform key after the
 * platform key changed. Each change is audited.
 */
export function registerKeyRoutes(app: Api, deps: KeyRouteDeps): void {
  const tenantOf = (request: Parameters<typeof principalOf>[0]) => {
    const p = principalOf(request)
    if (p.orgKind !== 'tenant') throw AUTH.FORBIDDEN({ permission: P.apiKeysManage })
    return p
  }

  app.get(
    '/governance/keys',
    {
      preHandler: requirePermission(P.apiKeysManage),
      schema: {
        tags: ['governance'],
        summary: 'The keys that encrypt your personal fields at rest (no key material)',
        response: { 200: Type.Object({ items: Type.Array(KeyView) }) },
      },
    },
    async (request) => {
      const p = tenantOf(request)
      return { items: await deps.orgTx(p.orgId, (tx) => deps.keyring.list(tx)) }
    },
  )

  app.post(
    '/governance/keys/rotate',
    {
      preHandler: requirePermission(P.apiKeysManage),
      schema: {
        tags: ['governance'],
        summary: 'Rotate the data key: new values use a new key, older ones stay readable',
        response: { 200: Type.Object({ id: Type.String(), retired: Type.Array(Type.String()) }) },
      },
    },
    async (request) => {
      const p = tenantOf(request)
      return deps.orgTx(p.orgId, async (tx) => {
        const r = await deps.keyring.rotate(tx)
        await appendAudit(tx, p.orgId, {
          ...auditMeta(request),
          action: 'governance.key.rotated',
          target: { kind: 'tenant_key', id: r.id },
          data: { retired: r.retired },
        })
        return r
      })
    },
  )

  app.post(
    '/governance/keys/rewrap',
    {
      preHandler: requirePermission(P.apiKeysManage),
      schema: {
        tags: ['governance'],
        summary: 'Re-wrap every key of the tenant under the current platform key',
        response: { 200: Type.Object({ rewrapped: Type.Integer(), platformKey: Type.String() }) },
      },
    },
    async (request) => {
      const p = tenantOf(request)
      return deps.orgTx(p.orgId, async (tx) => {
        const rewrapped = await deps.keyring.rewrap(tx)
        if (rewrapped)
          await appendAudit(tx, p.orgId, {
            ...auditMeta(request),
            action: 'governance.keys.rewrapped',
            target: { kind: 'tenant', id: p.orgId },
            data: { rewrapped, platformKey: deps.keyring.platformKeyId },
          })
        return { rewrapped, platformKey: deps.keyring.platformKeyId }
      })
    },
  )
}
