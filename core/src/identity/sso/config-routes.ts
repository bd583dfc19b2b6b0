import { Type } from '@sinclair/typebox'
import type { Api } from '../../http/types.js'
import type { OrgTx } from '../../http/route-deps.js'
import type { SecretBox } from '../../crypto/secret-box.js'
import { AUTH, KRN } from '../../errors.js'
import { auditedWrite } from '../../audit/audited-write.js'
import { auditMeta, principalOf, requirePermission } from '../../http/guards.js'
import { KERNEL_PERMISSIONS as P, missingPermissions } from '../permissions.js'
import { findAssignableRole } from '../roles.js'
import type { ProviderRow } from './provisioning.js'

export const sealedSecretFor = (orgId: string) => `sso-client-secret:${orgId}`

const fields = {
  issuer: Type.String({ format: 'uri', maxLength: 500 }),
  clientId: Type.String({ minLength: 1, maxLength: 300 }),
  allowedDomains: Type.Array(Type.String({ pattern: '^[a-z0-9.-]+\\.[a-z]{2,}$', maxLength: 253 }), {
    minItems: 1,
    maxItems: 50,
  }),
  roleClaim: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
  roleMap: Type.Optional(Type.Record(Type.String({ maxLength: 200 }), Type.String({ maxLength: 100 }))),
  defaultRole: Type.String({ minLength: 1, maxLength: 100 }),
  ssoOnly: Type.Optional(
    Type.Boolean({ description: 'Refuse password sign-ins (and password resets) for this organisation.' }),
  ),
  enabled: Type.Optional(Type.Boolean()),
}
const ProviderView = Type.Object({ ...fields, ssoOnly: Type.Boolean(), enabled: Type.Boolean() })

const view = (r: ProviderRow) => ({
  issuer: r.issuer,
  clientId: r.client_id,
  allowedDomains: r.allowed_domains,
  ...(r.role_claim ? { roleClaim: r.role_claim } : {}),
  roleMap: r.role_map,
  defaultRole: r.default_role,
  ssoOnly: r.sso_only,
  enabled: r.enabled,
})

/** An organisation's OpenID Connect identity provider: set (the client secret is sealed, never shown again), read, removed. */
export function registerSsoConfigRoutes(app: Api, deps: { orgTx: OrgTx; secrets: SecretBox }): void {
  app.get(
    '/identity/sso',
    {
      preHandler: requirePermission(P.usersRead),
      schema: {
        tags: ['identity'],
        summary: "Your organisation's identity provider (without its secret)",
        response: { 200: ProviderView },
      },
    },
    async (request) => {
      const p = principalOf(request)
      const [row] = await deps.orgTx(p.orgId, (tx) =>
        tx.sql<ProviderRow>('select * from sso_providers where tenant_id = ?::uuid', [p.orgId]),
      )
      if (!row) throw AUTH.SSO_NOT_CONFIGURED()
      return view(row)
    },
  )

  app.put(
    '/identity/sso',
    {
      preHandler: requirePermission(P.usersManage),
      schema: {
        tags: ['identity'],
        summary: 'Set your organisation’s OpenID Connect identity provider',
        description:
          'clientSecret is required the first time and sealed at rest; omit it to keep the stored one. Roles named in defaultRole and roleMap must be ones you could grant yourself.',
        body: Type.Object(
          { ...fields, clientSecret: Type.Optional(Type.String({ minLength: 1, maxLength: 500 })) },
          { additionalProperties: false },
        ),
        response: { 200: ProviderView },
      },
    },
    async (request) => {
      const p = principalOf(request)
      const b = request.body
      const row = await deps.orgTx(p.orgId, async (tx) => {
        for (const name of new Set([b.defaultRole, ...Object.values(b.roleMap ?? {})])) {
          const role = await findAssignableRole(tx, p.orgId, p.orgKind, name)
          const missing = missingPermissions(p.permissions, role.permissions)
          if (missing.length) throw AUTH.PERMISSION_ESCALATION({ permissions: missing })
        }
        const [old] = await tx.sql<ProviderRow>(
          'select client_secret_sealed from sso_providers where tenant_id = ?::uuid',
          [p.orgId],
        )
        const sealed = b.clientSecret
          ? deps.secrets.seal(b.clientSecret, sealedSecretFor(p.orgId))
          : old?.client_secret_sealed
        if (!sealed) throw KRN.VALIDATION_FAILED({ reason: 'clientSecret is required when setting up a provider' })
        const [saved] = await auditedWrite<ProviderRow>(tx, {
          write: {
            sql: `insert into sso_providers (tenant_id, issuer, client_id, client_secret_sealed, allowed_domains, role_claim, role_map, default_role, sso_only, enabled)
                  values (?::uuid, ?, ?, ?, ?::text[], ?, ?::jsonb, ?, ?, ?)
                  on conflict (tenant_id) do update set issuer = excluded.issuer, client_id = excluded.client_id,
                    client_secret_sealed = excluded.client_secret_sealed, allowed_domains = excluded.allowed_domains,
                    role_claim = excluded.role_claim, role_map = excluded.role_map, default_role = excluded.default_role,
                    sso_only = excluded.sso_only, enabled = excluded.enabled, updated_at = now()
                  returning *`,
            params: [
              p.orgId,
              b.issuer.replace(/\/+$/, ''),
              b.clientId,
              sealed,
              b.allowedDomains.map((d) => d.toLowerCase()),
              b.roleClaim ?? null,
              JSON.stringify(b.roleMap ?? {}),
              b.defaultRole,
              b.ssoOnly ?? false,
              b.enabled ?? true,
            ],
          },
          auditOrg: p.orgId,
          audit: {
            ...auditMeta(request),
            action: 'identity.sso.configured',
            data: {
              issuer: b.issuer,
              clientId: b.clientId,
              allowedDomains: b.allowedDomains,
              ssoOnly: b.ssoOnly ?? false,
            },
          },
        })
        return saved!
      })
      return view(row)
    },
  )

  app.delete(
    '/identity/sso',
    {
      preHandler: requirePermission(P.usersManage),
      schema: {
        tags: ['identity'],
        summary: 'Remove your organisation’s identity provider',
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      const p = principalOf(request)
      await deps.orgTx(p.orgId, (tx) =>
        auditedWrite(tx, {
          write: { sql: 'delete from sso_providers where tenant_id = ?::uuid returning tenant_id', params: [p.orgId] },
          auditOrg: p.orgId,
          audit: { ...auditMeta(request), action: 'identity.sso.removed' },
        }),
      )
      return reply.code(204).send(null)
    },
  )
}
