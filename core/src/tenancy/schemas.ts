import { Type } from '@sinclair/typebox'
import { PLATFORM_ORG } from '../db/database.js'
import type { Principal } from '../identity/principal.js'
import type { PartnerRow, TenantRow } from './tenancy-service.js'

// What the partner, tenant and branding routes accept and answer, and who may see what.

export const Uuid = Type.String({ format: 'uuid' })
export const Slug = Type.String({ pattern: '^[a-z0-9][a-z0-9-]{1,62}$' })
export const BrandingSchema = Type.Object(
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
export const AdminSchema = Type.Object(
  {
    email: Type.String({ format: 'email', maxLength: 320 }),
    name: Type.String({ minLength: 1, maxLength: 200 }),
    password: Type.Optional(Type.String({ maxLength: 1024 })),
  },
  { additionalProperties: false },
)
export const PartnerView = Type.Object({
  id: Uuid,
  name: Type.String(),
  slug: Type.String(),
  status: Type.String(),
  branding: BrandingSchema,
  createdAt: Type.String({ format: 'date-time' }),
})
export const TenantView = Type.Object({
  id: Uuid,
  name: Type.String(),
  slug: Type.String(),
  partnerId: Type.Union([Uuid, Type.Null()]),
  status: Type.String(),
  createdAt: Type.String({ format: 'date-time' }),
  suspendedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
})
export const IdParams = Type.Object({ id: Uuid })

export const partnerView = (r: PartnerRow) => ({
  id: r.id,
  name: r.name,
  slug: r.slug,
  status: r.status,
  branding: r.branding,
  createdAt: new Date(r.created_at).toISOString(),
})
export const tenantView = (r: TenantRow) => ({
  id: r.id,
  name: r.name,
  slug: r.slug,
  partnerId: r.partner_id,
  status: r.status,
  createdAt: new Date(r.created_at).toISOString(),
  suspendedAt: r.suspended_at ? new Date(r.suspended_at).toISOString() : null,
})

export const isPlatform = (p: Principal) => p.orgKind === 'platform' && p.orgId === PLATFORM_ORG

/** May this caller see/manage that tenant? The platform: any; a partner: its own; a tenant: itself (read). */
export function canSeeTenant(p: Principal, t: Pick<TenantRow, 'id' | 'partner_id'>): boolean {
  return (
    isPlatform(p) ||
    (p.orgKind === 'partner' && t.partner_id === p.orgId) ||
    (p.orgKind === 'tenant' && t.id === p.orgId)
  )
}
