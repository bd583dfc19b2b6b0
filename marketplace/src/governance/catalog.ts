import { Type } from '@sinclair/typebox'
import { MKT_GOVERNANCE as MKT } from './errors.js'
import {
  AUTH,
  KERNEL_PERMISSIONS as P,
  auditMeta,
  principalOf,
  requirePermission,
  type Api,
  type ExtensionTx,
  type InstallPolicy,
  type Principal,
} from '@trellis/core'
import type { Services } from '../services.js'

/** A partner's channel catalog: what its managed tenants may install, under which name. */
export interface Catalog {
  partnerId: string
  displayName: string
  mode: 'all' | 'allow_list'
  plugins: string[]
}

const CatalogView = Type.Object({
  partnerId: Type.String({ format: 'uuid' }),
  displayName: Type.String({
    description: "What the partner calls its catalog (white-label); empty: the platform's name.",
  }),
  mode: Type.Union([Type.Literal('all'), Type.Literal('allow_list')], {
    description: 'all: every listed plugin; allow_list: only `plugins`.',
  }),
  plugins: Type.Array(Type.String()),
})

/** A partner's own catalog, or undefined when it has none. */
async function catalogOfPartner(tx: ExtensionTx, partnerId: string): Promise<Catalog | undefined> {
  const [row] = await tx.sql<{
    partner_id: string
    display_name: string
    mode: 'all' | 'allow_list'
    plugins: string[]
  }>('select * from marketplace_catalogs where partner_id = ?::uuid', [partnerId])
  return row
    ? { partnerId: row.partner_id, displayName: row.display_name, mode: row.mode, plugins: row.plugins }
    : undefined
}

/** The catalog that applies to a tenant (its managing partner's), or undefined when none restricts it. */
export async function catalogForTenant(
  k: Pick<Services, 'organisations'>,
  tx: ExtensionTx,
  tenantId: string,
): Promise<Catalog | undefined> {
  const tenant = await k.organisations.get(tx, tenantId)
  return tenant?.managingPartnerId ? catalogOfPartner(tx, tenant.managingPartnerId) : undefined
}

/** The catalog a caller browses: its partner's, or — for a tenant — its partner's. */
export async function catalogForPrincipal(
  k: Pick<Services, 'organisations'>,
  tx: ExtensionTx,
  p: Principal,
): Promise<Catalog | undefined> {
  if (p.orgKind === 'tenant') return catalogForTenant(k, tx, p.orgId)
  if (p.orgKind !== 'partner') return undefined
  return catalogOfPartner(tx, p.orgId)
}

/** The install policy the marketplace adds: a tenant installs only what its partner's catalog offers. */
export function catalogInstallPolicy(k: Pick<Services, 'organisations'>): InstallPolicy {
  return async (tx, tenantId, version) => {
    const catalog = await catalogForTenant(k, tx, tenantId)
    if (catalog?.mode === 'allow_list' && !catalog.plugins.includes(version.name))
      throw MKT.NOT_IN_CATALOG({ plugin: version.name })
  }
}

export function registerCatalogRoutes(app: Api, k: Services): void {
  app.get(
    '/marketplace/catalog',
    {
      preHandler: requirePermission(),
      schema: {
        tags: ['marketplace'],
        summary: "The channel catalog that applies to you (your partner's), or null",
        response: { 200: Type.Union([CatalogView, Type.Null()]) },
      },
    },
    async (request) =>
      (await k.tx.read(principalOf(request).orgId, (tx) => catalogForPrincipal(k, tx, principalOf(request)))) ?? null,
  )

  app.put(
    '/marketplace/catalog',
    {
      preHandler: requirePermission(P.tenantsManage),
      schema: {
        tags: ['marketplace'],
        summary:
          'Set your channel catalog (partner admins): which listed plugins your tenants may install, and its display name',
        body: Type.Object(
          {
            displayName: Type.String({ maxLength: 200 }),
            mode: Type.Union([Type.Literal('all'), Type.Literal('allow_list')]),
            plugins: Type.Array(Type.String({ pattern: '^@[a-z0-9][a-z0-9-]*/[a-z0-9][a-z0-9-]*$' }), {
              maxItems: 1000,
              uniqueItems: true,
            }),
          },
          { additionalProperties: false },
        ),
        response: { 200: CatalogView },
      },
    },
    async (request) => {
      const p = principalOf(request)
      if (p.orgKind !== 'partner') throw AUTH.FORBIDDEN({ permission: 'a partner admin' })
      const { displayName, mode, plugins } = request.body
      const meta = auditMeta(request)
      await k.tx.run(p.orgId, async (tx) => {
        await tx.sql(
          `insert into marketplace_catalogs (partner_id, display_name, mode, plugins) values (?::uuid, ?, ?, ?::text[])
           on conflict (partner_id) do update set display_name = excluded.display_name, mode = excluded.mode, plugins = excluded.plugins, updated_at = now()`,
          [p.orgId, displayName, mode, plugins],
        )
        await k.audit.append(tx, p.orgId, {
          ...meta,
          action: 'marketplace.catalog.updated',
          target: { kind: 'partner', id: p.orgId },
          data: { displayName, mode, plugins },
        })
      })
      return { partnerId: p.orgId, displayName, mode, plugins }
    },
  )
}
