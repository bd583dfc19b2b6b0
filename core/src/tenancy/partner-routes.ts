import { Type } from '@sinclair/typebox'
import { v7 as uuidv7 } from 'uuid'
import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import { AUTH, KRN } from '../errors.js'
import { type Database, PLATFORM_ORG } from '../db/database.js'
import { auditedWrite } from '../audit/audited-write.js'
import { auditMeta, principalOf, requirePermission } from '../http/guards.js'
import { PageQuery, pageOf, pageAfterCursor } from '../http/pagination.js'
import { KERNEL_PERMISSIONS as P } from '../identity/permissions.js'
import type { OrgStatusCache } from '../identity/org-status.js'
import { kernelEvent } from '../events/outbox.js'
import { addMember, prepareAdmin, slugTaken, type PartnerRow } from './tenancy-service.js'
import { PartnerSchema } from './entities.js'
import { AdminSchema, BrandingSchema, IdParams, PartnerView, Slug, isPlatform, partnerView } from './schemas.js'

export interface TenancyRouteDeps {
  orgTx: OrgTx
  db: Pick<Database, 'withEntityManager' | 'unscoped'>
  /** Forgets cached organisation statuses, so a suspension is honoured at once. */
  orgStatus: Pick<OrgStatusCache, 'forget'>
}

/** Partners: created and suspended by the platform; renamed and branded by themselves. */
export function registerPartnerRoutes(app: Api, deps: TenancyRouteDeps): void {
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
      const row = await deps.orgTx(PLATFORM_ORG, async (tx) => {
        await slugTaken(tx, 'partners', slug)
        const [created] = await auditedWrite<PartnerRow>(tx, {
          write: {
            sql: 'insert into partners (id, name, slug, branding) values (?::uuid, ?, ?, ?::jsonb) returning *',
            params: [id, name, slug, JSON.stringify(branding)],
          },
          auditOrg: PLATFORM_ORG,
          audit: { ...meta, action: 'partner.created', target: { kind: 'partner', id }, data: { name, slug } },
          // Where it happened (the platform) and the partner's own stream, which starts with it.
          events: [kernelEvent('kernel.partner.created', `partner/${id}`, { partnerId: id, name, slug })],
          alsoTo: { current: PLATFORM_ORG, orgs: [PLATFORM_ORG, id] },
        })
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
      return deps.orgTx(PLATFORM_ORG, (tx) =>
        pageAfterCursor(tx, { select: 'select * from partners where' }, request.query, partnerView),
      )
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
      const partner = await deps.db.withEntityManager(null, (em) =>
        em.findOne(PartnerSchema, { id: request.params.id }),
      )
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
      const id = request.params.id
      const changes = Object.keys(request.body).filter(
        (key) => (request.body as Record<string, unknown>)[key] !== undefined,
      )
      const [row] = await deps.orgTx(p.orgId, (tx) =>
        auditedWrite<PartnerRow>(tx, {
          write: {
            sql: 'update partners set name = coalesce(?, name), branding = coalesce(?::jsonb, branding) where id = ?::uuid returning *',
            params: [name ?? null, branding ? JSON.stringify(branding) : null, id],
          },
          auditOrg: p.orgId,
          audit: {
            ...auditMeta(request),
            action: 'partner.updated',
            target: { kind: 'partner', id },
            data: { name, branding },
          },
          events: [kernelEvent('kernel.partner.updated', `partner/${id}`, { partnerId: id, changes })],
          alsoTo: { current: p.orgId, orgs: [id, PLATFORM_ORG] },
        }),
      )
      if (!row) throw KRN.NOT_FOUND({ what: 'partner' })
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
        const id = request.params.id
        const [row] = await deps.orgTx(PLATFORM_ORG, (tx) =>
          auditedWrite<PartnerRow>(tx, {
            write: {
              sql: 'update partners set status = ? where id = ?::uuid returning *',
              params: [action === 'suspend' ? 'suspended' : 'active', id],
            },
            auditOrg: PLATFORM_ORG,
            audit: {
              ...auditMeta(request),
              action: `partner.${action === 'suspend' ? 'suspended' : 'resumed'}`,
              target: { kind: 'partner', id },
            },
            events: [
              kernelEvent(
                action === 'suspend' ? 'kernel.partner.suspended' : 'kernel.partner.resumed',
                `partner/${id}`,
                {
                  partnerId: id,
                },
              ),
            ],
            alsoTo: { current: PLATFORM_ORG, orgs: [PLATFORM_ORG, id] },
          }),
        )
        if (!row) throw KRN.NOT_FOUND({ what: 'partner' })
        deps.orgStatus.forget()
        return partnerView(row)
      },
    )
  }
}
