import { Type } from '@sinclair/typebox'
import { v7 as uuidv7 } from 'uuid'
import type { Api } from '../http/types.js'
import { orgTx, type KernelContext } from '../kernel-context.js'
import { AUTH, KRN } from '../errors.js'
import { PLATFORM_ORG } from '../db/database.js'
import { appendAudit } from '../audit/audit-log.js'
import { auditMeta, principalOf, requirePermission } from '../http/guards.js'
import { PageQuery, pageOf, decodeCursor, toPage } from '../http/pagination.js'
import { KERNEL_PERMISSIONS as P } from '../identity/permissions.js'
import type { Principal } from '../identity/principal.js'
import { addMember, prepareAdmin, slugTaken, type PartnerRow, type TenantRow } from './tenancy-service.js'
import { PartnerSchema, TenantSchema, type Branding } from './entities.js'
import { emitEventsTo, kernelEvent } from '../events/outbox.js'

const Uuid = Type.String({ format: 'uuid' })
const Slug = Type.String({ pattern: '^[a-z0-9][a-z0-9-]{1,62}$' })
const BrandingSchema = Type.Object(
  {
    displayName: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    logoUrl: Type.Optional(Type.String({ format: 'uri', pattern: '^https?://', maxLength: 2000 })),
    primaryColor: Type.Optional(Type.String({ pattern: '^#[0-9a-fA-F]{6}$' })),
    customDomain: Type.Optional(
      Type.String({ pattern: '^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$' }),
    ),
  },
  { additionalProperties: false },
)
const AdminSchema = Type.Object(
  {
    email: Type.String({ format: 'email', maxLength: 320 }),
    name: Type.String({ minLength: 1, maxLength: 200 }),
    password: Type.Optional(Type.String({ maxLength: 1024 })),
  },
  { additionalProperties: false },
)
const PartnerView = Type.Object({
  id: Uuid,
  name: Type.String(),
  slug: Type.String(),
  status: Type.String(),
  branding: BrandingSchema,
  createdAt: Type.String({ format: 'date-time' }),
})
const TenantView = Type.Object({
  id: Uuid,
  name: Type.String(),
  slug: Type.String(),
  partnerId: Type.Union([Uuid, Type.Null()]),
  status: Type.String(),
  createdAt: Type.String({ format: 'date-time' }),
  suspendedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
})
const IdParams = Type.Object({ id: Uuid })

const partnerView = (r: PartnerRow) => ({
  id: r.id,
  name: r.name,
  slug: r.slug,
  status: r.status,
  branding: r.branding,
  createdAt: new Date(r.created_at).toISOString(),
})
const tenantView = (r: TenantRow) => ({
  id: r.id,
  name: r.name,
  slug: r.slug,
  partnerId: r.partner_id,
  status: r.status,
  createdAt: new Date(r.created_at).toISOString(),
  suspendedAt: r.suspended_at ? new Date(r.suspended_at).toISOString() : null,
})

const isPlatform = (p: Principal) => p.orgKind === 'platform' && p.orgId === PLATFORM_ORG

/** May this caller see/manage that tenant? The platform: any; a partner: its own; a tenant: itself (read). */
function canSeeTenant(p: Principal, t: Pick<TenantRow, 'id' | 'partner_id'>): boolean {
  return (
    isPlatform(p) ||
    (p.orgKind === 'partner' && t.partner_id === p.orgId) ||
    (p.orgKind === 'tenant' && t.id === p.orgId)
  )
}

/** platform → partners → tenants. */
export function registerTenancyRoutes(app: Api, k: KernelContext): void {
  app.post(
    '/partners',
    {
      preHandler: requirePermission(P.partnersManage),
      schema: {
        tags: ['tenancy'],
        summary: 'Create a partner (platform admins)',
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 200 }),
            slug: Slug,
            branding: Type.Optional(BrandingSchema),
            admin: Type.Optional(AdminSchema),
          },
          { additionalProperties: false },
        ),
        response: { 201: PartnerView },
      },
    },
    async (request, reply) => {
      const p = principalOf(request)
      if (!isPlatform(p)) throw AUTH.FORBIDDEN({ permission: P.platformAdmin })
      const { name, slug, branding = {}, admin } = request.body
      const id = uuidv7()
      const meta = auditMeta(request)
      const adminUser = admin && (await prepareAdmin(admin))
      const row = await orgTx(k, PLATFORM_ORG, async (tx) => {
        await slugTaken(tx, 'partners', slug)
        const [created] = await tx.sql<PartnerRow>(
          'insert into partners (id, name, slug, branding) values (?::uuid, ?, ?, ?::jsonb) returning *',
          [id, name, slug, JSON.stringify(branding)],
        )
        await appendAudit(tx, PLATFORM_ORG, {
          ...meta,
          action: 'partner.created',
          target: { kind: 'partner', id },
          data: { name, slug },
        })
        // Where it happened (the platform) and the partner's own stream, which starts with it.
        await emitEventsTo(
          tx,
          PLATFORM_ORG,
          [PLATFORM_ORG, id],
          kernelEvent('kernel.partner.created', `partner/${id}`, { partnerId: id, name, slug }),
        )
        if (adminUser) {
          await tx.useOrg(id)
          await addMember(tx, id, 'partner', 'partner_admin', adminUser, meta)
        }
        return created!
      })
      return reply.code(201).send(partnerView(row))
    },
  )

  app.get(
    '/partners',
    {
      preHandler: requirePermission(P.partnersManage),
      schema: {
        tags: ['tenancy'],
        summary: 'List partners (platform admins)',
        querystring: Type.Object(PageQuery, { additionalProperties: false }),
        response: { 200: pageOf(PartnerView) },
      },
    },
    async (request) => {
      const after = decodeCursor(request.query.cursor)
      const limit = request.query.limit ?? 50
      const rows = await orgTx(k, PLATFORM_ORG, (tx) =>
        tx.sql<PartnerRow>('select * from partners where (?::uuid is null or id > ?::uuid) order by id limit ?', [
          after,
          after,
          limit + 1,
        ]),
      )
      const page = toPage(rows, limit)
      return { items: page.items.map(partnerView), nextCursor: page.nextCursor }
    },
  )

  app.get(
    '/partners/:id',
    {
      preHandler: requirePermission(),
      schema: {
        tags: ['tenancy'],
        summary: 'A partner (platform admins, or the partner itself)',
        params: IdParams,
        response: { 200: PartnerView },
      },
    },
    async (request) => {
      const p = principalOf(request)
      if (!isPlatform(p) && p.orgId !== request.params.id) throw KRN.NOT_FOUND({ what: 'partner' })
      const partner = await k.db.withEntityManager(null, (em) => em.findOne(PartnerSchema, { id: request.params.id }))
      if (!partner) throw KRN.NOT_FOUND({ what: 'partner' })
      return {
        id: partner.id,
        name: partner.name,
        slug: partner.slug,
        status: partner.status,
        branding: partner.branding,
        createdAt: partner.createdAt.toISOString(),
      }
    },
  )

  app.patch(
    '/partners/:id',
    {
      preHandler: requirePermission(P.brandingManage),
      schema: {
        tags: ['tenancy'],
        summary: 'Rename a partner or change its branding (its tenants inherit the branding)',
        params: IdParams,
        body: Type.Object(
          {
            name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
            branding: Type.Optional(BrandingSchema),
          },
          { additionalProperties: false },
        ),
        response: { 200: PartnerView },
      },
    },
    async (request) => {
      const p = principalOf(request)
      if (!isPlatform(p) && p.orgId !== request.params.id) throw KRN.NOT_FOUND({ what: 'partner' })
      const { name, branding } = request.body
      const row = await orgTx(k, p.orgId, async (tx) => {
        const [updated] = await tx.sql<PartnerRow>(
          'update partners set name = coalesce(?, name), branding = coalesce(?::jsonb, branding) where id = ?::uuid returning *',
          [name ?? null, branding ? JSON.stringify(branding) : null, request.params.id],
        )
        if (!updated) throw KRN.NOT_FOUND({ what: 'partner' })
        await appendAudit(tx, p.orgId, {
          ...auditMeta(request),
          action: 'partner.updated',
          target: { kind: 'partner', id: request.params.id },
          data: { name, branding },
        })
        const changes = Object.keys(request.body).filter(
          (key) => (request.body as Record<string, unknown>)[key] !== undefined,
        )
        await emitEventsTo(
          tx,
          p.orgId,
          [request.params.id, PLATFORM_ORG],
          kernelEvent('kernel.partner.updated', `partner/${request.params.id}`, {
            partnerId: request.params.id,
            changes,
          }),
        )
        return updated
      })
      return partnerView(row)
    },
  )

  for (const action of ['suspend', 'resume'] as const) {
    app.post(
      `/partners/:id/${action}`,
      {
        preHandler: requirePermission(P.partnersManage),
        schema: {
          tags: ['tenancy'],
          summary: `${action === 'suspend' ? 'Suspend' : 'Resume'} a partner and with it all its tenants`,
          params: IdParams,
          response: { 200: PartnerView },
        },
      },
      async (request) => {
        const p = principalOf(request)
        if (!isPlatform(p)) throw AUTH.FORBIDDEN({ permission: P.platformAdmin })
        const row = await orgTx(k, PLATFORM_ORG, async (tx) => {
          const [updated] = await tx.sql<PartnerRow>('update partners set status = ? where id = ?::uuid returning *', [
            action === 'suspend' ? 'suspended' : 'active',
            request.params.id,
          ])
          if (!updated) throw KRN.NOT_FOUND({ what: 'partner' })
          await appendAudit(tx, PLATFORM_ORG, {
            ...auditMeta(request),
            action: `partner.${action === 'suspend' ? 'suspended' : 'resumed'}`,
            target: { kind: 'partner', id: request.params.id },
          })
          const type = action === 'suspend' ? 'kernel.partner.suspended' : 'kernel.partner.resumed'
          await emitEventsTo(
            tx,
            PLATFORM_ORG,
            [PLATFORM_ORG, request.params.id],
            kernelEvent(type, `partner/${request.params.id}`, { partnerId: request.params.id }),
          )
          return updated
        })
        k.orgStatus.forget()
        return partnerView(row)
      },
    )
  }

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
      const row = await orgTx(k, p.orgId, async (tx) => {
        await slugTaken(tx, 'tenants', slug)
        if (partnerId) {
          const [partner] = await tx.sql('select 1 from partners where id = ?::uuid', [partnerId])
          if (!partner) throw KRN.NOT_FOUND({ what: 'partner' })
        }
        const [created] = await tx.sql<TenantRow>(
          'insert into tenants (id, name, slug, partner_id) values (?::uuid, ?, ?, ?::uuid) returning *',
          [id, name, slug, partnerId],
        )
        await appendAudit(tx, p.orgId, {
          ...meta,
          action: 'tenant.created',
          target: { kind: 'tenant', id },
          data: { name, slug, partnerId },
        })
        // The tenant's own stream starts with it; its partner and whoever created it are told too.
        await emitEventsTo(
          tx,
          p.orgId,
          [p.orgId, partnerId, id],
          kernelEvent('kernel.tenant.created', `tenant/${id}`, { tenantId: id, name, slug, partnerId }),
        )
        // The tenant's own chain starts with its creation, in the same transaction.
        await tx.useOrg(id)
        await appendAudit(tx, id, {
          ...meta,
          action: 'tenant.created',
          target: { kind: 'tenant', id },
          data: { name, slug, partnerId },
        })
        if (adminUser) await addMember(tx, id, 'tenant', 'tenant_admin', adminUser, meta)
        return created!
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
      const after = decodeCursor(request.query.cursor)
      const limit = request.query.limit ?? 50
      const scope = isPlatform(p) ? null : p.orgId
      const rows = await orgTx(k, p.orgId, (tx) =>
        tx.sql<TenantRow>(
          'select * from tenants where (?::uuid is null or partner_id = ?::uuid) and (?::uuid is null or id > ?::uuid) order by id limit ?',
          [scope, scope, after, after, limit + 1],
        ),
      )
      const page = toPage(rows, limit)
      return { items: page.items.map(tenantView), nextCursor: page.nextCursor }
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
      const tenant = await k.db.withEntityManager(null, (em) => em.findOne(TenantSchema, { id: request.params.id }))
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
        const [current] = await k.db.unscoped((tx) =>
          tx.sql<TenantRow>('select * from tenants where id = ?::uuid', [request.params.id]),
        )
        if (!current || !canSeeTenant(p, current) || p.orgKind === 'tenant') throw KRN.NOT_FOUND({ what: 'tenant' })
        const meta = auditMeta(request)
        const verb = action === 'suspend' ? 'suspended' : 'resumed'
        const row = await orgTx(k, p.orgId, async (tx) => {
          const [updated] = await tx.sql<TenantRow>(
            `update tenants set status = ?, suspended_at = case when ? = 'suspended' then now() else null end where id = ?::uuid returning *`,
            [
              action === 'suspend' ? 'suspended' : 'active',
              action === 'suspend' ? 'suspended' : 'active',
              request.params.id,
            ],
          )
          await appendAudit(tx, p.orgId, {
            ...meta,
            action: `tenant.${verb}`,
            target: { kind: 'tenant', id: request.params.id },
          })
          // The tenant's own event (its endpoints learn of it), its partner's, and the acting organisation's.
          await emitEventsTo(
            tx,
            p.orgId,
            [p.orgId, updated!.partner_id, updated!.id],
            kernelEvent(
              action === 'suspend' ? 'kernel.tenant.suspended' : 'kernel.tenant.resumed',
              `tenant/${updated!.id}`,
              { tenantId: updated!.id, partnerId: updated!.partner_id },
            ),
          )
          return updated!
        })
        await orgTx(
          k,
          request.params.id,
          (tx) =>
            appendAudit(tx, request.params.id, {
              ...meta,
              action: `tenant.${verb}`,
              target: { kind: 'tenant', id: request.params.id },
            }),
          { allowSuspended: true },
        )
        k.orgStatus.forget(request.params.id)
        return tenantView(row)
      },
    )
  }

  app.get(
    '/branding',
    {
      schema: {
        tags: ['tenancy'],
        summary:
          "The branding the console shows: your organisation's (a tenant inherits its partner's), or, signed out, the one for ?domain=",
        security: [],
        querystring: Type.Object(
          { domain: Type.Optional(Type.String({ maxLength: 253 })) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ source: Type.String(), branding: BrandingSchema }) },
      },
    },
    async (request) => {
      const p = request.principal
      const rows = await k.db.unscoped((tx) => {
        if (p)
          return tx.sql<{ branding: Branding }>(
            'select branding from partners where id = ?::uuid or id = (select partner_id from tenants where id = ?::uuid)',
            [p.orgId, p.orgId],
          )
        if (request.query.domain)
          return tx.sql<{ branding: Branding }>(
            `select branding from partners where branding->>'customDomain' = lower(?)`,
            [request.query.domain],
          )
        return Promise.resolve([] as Array<{ branding: Branding }>)
      })
      return rows[0]
        ? { source: 'partner', branding: rows[0].branding }
        : { source: 'platform', branding: { displayName: 'Trellis', primaryColor: '#2f6f4e' } }
    },
  )
}
