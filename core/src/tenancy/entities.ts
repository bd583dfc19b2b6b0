import { EntitySchema } from '@mikro-orm/core'

export interface Branding {
  displayName?: string
  logoUrl?: string
  primaryColor?: string
  customDomain?: string
}

export interface Partner {
  id: string
  name: string
  slug: string
  status: 'active' | 'suspended'
  branding: Branding
  createdAt: Date
}

export interface Tenant {
  id: string
  name: string
  slug: string
  partnerId: string | null
  status: 'active' | 'suspended'
  createdAt: Date
  suspendedAt: Date | null
}

export const PartnerSchema = new EntitySchema<Partner>({
  name: 'Partner',
  tableName: 'partners',
  properties: {
    id: { type: 'uuid', primary: true },
    name: { type: 'text' },
    slug: { type: 'text' },
    status: { type: 'text' },
    branding: { type: 'json' },
    createdAt: { type: 'datetime', fieldName: 'created_at' },
  },
})

export const TenantSchema = new EntitySchema<Tenant>({
  name: 'Tenant',
  tableName: 'tenants',
  properties: {
    id: { type: 'uuid', primary: true },
    name: { type: 'text' },
    slug: { type: 'text' },
    partnerId: { type: 'uuid', fieldName: 'partner_id', nullable: true },
    status: { type: 'text' },
    createdAt: { type: 'datetime', fieldName: 'created_at' },
    suspendedAt: { type: 'datetime', fieldName: 'suspended_at', nullable: true },
  },
})
