import { Type } from '@sinclair/typebox'
import { v7 as uuidv7 } from 'uuid'
import type { Api } from '../http/types.js'
import { AUTH, KRN } from '../errors.js'
import { auditedWrite } from '../audit/audited-write.js'
import { auditMeta, principalOf, requirePermission } from '../http/guards.js'
import { PageQuery, pageOf, pageAfterCursor } from '../http/pagination.js'
import { KERNEL_PERMISSIONS as P } from '../identity/permissions.js'
import { kernelEvent } from '../events/outbox.js'
import { addMember, prepareAdmin, slugTaken, type TenantRow } from './tenancy-service.js'
import { TenantSchema } from './entities.js'
import { AdminSchema, IdParams, Slug, TenantView, Uuid, canSeeTenant, isPlatform, tenantView } from './schemas.js'
import type { TenancyRouteDeps } from './partner-routes.js'

/** Tenants: created by the platform or by the partner that is their channel, suspended and resumed by either. */
export function registerTenantRoutes(app: Api, deps: TenancyRouteDeps): void {
  app.post(
    '/tenants',
    {
      preHandler: requirePermission(P.tenantsManage),
      schema: {
        tags: ['tenancy'],
        summary: 'Create a tenant (platform admins; partner admins for tenants they are the channel for)',
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 200 }),
            slug: Slug,
            partnerId: Type.Optional(Uuid),
            admin: Type.Optional(AdminSchema),
          },
          { additionalProperties: false },
        ),
        response: { 201: TenantView },
      },
    },
    async (request, reply) => {
      const p = principalOf(request)
      const { name, slug, admin } = request.body
      let partnerId: string | null
      if (isPlatform(p)) partnerId = request.body.partnerId ?? null
      else if (p.orgKind === 'partner') {
        if (request.body.partnerId && request.body.partnerId !== p.orgId)
          throw AUTH.FORBIDDEN({ permission: P.platformAdmin })
        partnerId = p.orgId
      } else throw AUTH.FORBIDDEN({ permission: P.tenantsManage })
      const id = uuidv7()
      const meta = auditMeta(request)
      const adminUser = admin && (await prepareAdmin(admin))
      const row = await deps.orgTx(p.orgId, async (tx) => {
        await slugTaken(tx, 'tenants', slug)
        if (partnerId) {
          const [partner] = await tx.sql('select 1 from partners where id = ?::uuid', [partnerId])
          if (!partner) throw KRN.NOT_FOUND({ what: 'partner' })
        }
        const created = { name, slug, partnerId }
        const [row] = await auditedWrite<TenantRow>(tx, {
          write: {
            sql: 'insert into tenants (id, name, slug, partner_id) values (?::uuid, ?, ?, ?::uuid) returning *',
            params: [id, name, slug, partnerId],
          },
          auditOrg: p.orgId,
          audit: { ...meta, action: 'tenant.created', target: { kind: 'tenant', id }, data: created },
          // The tenant's own stream starts with it; its partner and whoever created it are told too.
          events: [kernelEvent('kernel.tenant.created', `tenant/${id}`, { tenantId: id, ...created })],
          alsoTo: { current: p.orgId, orgs: [p.orgId, partnerId, id] },
        })
        // The tenant's own chain starts with its creation, in the same transaction.
        await tx.useOrg(id)
        await auditedWrite(tx, {
          auditOrg: id,
          audit: { ...meta, action: 'tenant.created', target: { kind: 'tenant', id }, data: created },
        })
        if (adminUser) await addMember(tx, id, 'tenant', 'tenant_admin', adminUser, meta)
        return row!
      })
      return reply.code(201).send(tenantView(row))
    },
  )

  app.get(
    '/tenants',
    {
      preHandler: requirePermission(P.tenantsRead),
      schema: {
        tags: ['tenancy'],
        summary: 'Tenants you may see: all (platform) or those you are the channel for (partner)',
        querystring: Type.Object(PageQuery, { additionalProperties: false }),
        response: { 200: pageOf(TenantView) },
      },
    },
    async (request) => {
      const p = principalOf(request)
      const scope = isPlatform(p) ? null : p.orgId
      return deps.orgTx(p.orgId, (tx) =>
        pageAfterCursor(
          tx,
          {
            select: 'select * from tenants where (?::uuid is null or partner_id = ?::uuid) and',
            params: [scope, scope],
          },
          request.query,
          tenantView,
        ),
      )
    },
  )

  app.get(
    '/tenants/:id',
    {
      preHandler: requirePermission(),
      schema: { tags: ['tenancy'], summary: 'One tenant you may see', params: IdParams, response: { 200: TenantView } },
    },
    async (request) => {
      const p = principalOf(request)
      const tenant = await deps.db.withEntityManager(null, (em) => em.findOne(TenantSchema, { id: request.params.id }))
      if (!tenant || !canSeeTenant(p, { id: tenant.id, partner_id: tenant.partnerId }))
        throw KRN.NOT_FOUND({ what: 'tenant' })
      return {
        id: tenant.id,
        name: tenant.name,
        slug: tenant.slug,
        partnerId: tenant.partnerId,
        status: tenant.status,
        createdAt: tenant.createdAt.toISOString(),
        suspendedAt: tenant.suspendedAt ? tenant.suspendedAt.toISOString() : null,
      }
    },
  )

  for (const action of ['suspend', 'resume'] as const) {
    app.post(
      `/tenants/:id/${action}`,
      {
        preHandler: requirePermission(P.tenantsManage),
        schema: {
          tags: ['tenancy'],
          summary:
            action === 'suspend' ? 'Suspend a tenant: all its access stops at once' : 'Resume a suspended tenant',
          params: IdParams,
          response: { 200: TenantView },
        },
      },
      async (request) => {
        const p = principalOf(request)
        const [current] = await deps.db.unscoped((tx) =>
          tx.sql<TenantRow>('select * from tenants where id = ?::uuid', [request.params.id]),
        )
        if (!current || !canSeeTenant(p, current) || p.orgKind === 'tenant') throw KRN.NOT_FOUND({ what: 'tenant' })
        const meta = auditMeta(request)
        const verb = action === 'suspend' ? 'suspended' : 'resumed'
        const id = current.id
        const audit = { ...meta, action: `tenant.${verb}`, target: { kind: 'tenant', id } }
        const status = action === 'suspend' ? 'suspended' : 'active'
        const [row] = await deps.orgTx(p.orgId, (tx) =>
          auditedWrite<TenantRow>(tx, {
            write: {
              sql: `update tenants set status = ?, suspended_at = case when ? = 'suspended' then now() else null end where id = ?::uuid returning *`,
              params: [status, status, id],
            },
            auditOrg: p.orgId,
            audit,
            // The tenant's own event (its endpoints learn of it), its partner's, and the acting organisation's.
            events: [
              kernelEvent(action === 'suspend' ? 'kernel.tenant.suspended' : 'kernel.tenant.resumed', `tenant/${id}`, {
                tenantId: id,
                partnerId: current.partner_id,
              }),
            ],
            alsoTo: { current: p.orgId, orgs: [p.orgId, current.partner_id, id] },
          }),
        )
        await deps.orgTx(id, (tx) => auditedWrite(tx, { auditOrg: id, audit }), { allowSuspended: true })
        deps.orgStatus.forget(request.params.id)
        return tenantView(row!)
      },
    )
  }
}
