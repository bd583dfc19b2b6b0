import { EntitySchema } from '@mikro-orm/core'

export type OrgKind = 'platform' | 'partner' | 'tenant'

export interface User {
  id: string
  email: string
  name: string
  passwordHash: string | null
  status: 'active' | 'disabled'
  createdAt: Date
}

export interface Role {
  id: string
  tenantId: string | null
  name: string
  description: string
  permissions: string[]
  builtin: boolean
  createdAt: Date
}

export interface ApiKey {
  id: string
  tenantId: string
  orgKind: OrgKind
  name: string
  secretHash: string
  permissions: string[]
  createdBy: string
  createdAt: Date
  expiresAt: Date | null
  revokedAt: Date | null
}

export const UserSchema = new EntitySchema<User>({
  name: 'User',
  tableName: 'users',
  properties: {
    id: { type: 'uuid', primary: true },
    email: { type: 'text' },
    name: { type: 'text' },
    passwordHash: { type: 'text', fieldName: 'password_hash', nullable: true, hidden: true, lazy: true },
    status: { type: 'text' },
    createdAt: { type: 'datetime', fieldName: 'created_at' },
  },
})

export const RoleSchema = new EntitySchema<Role>({
  name: 'Role',
  tableName: 'roles',
  properties: {
    id: { type: 'uuid', primary: true },
    tenantId: { type: 'uuid', fieldName: 'tenant_id', nullable: true },
    name: { type: 'text' },
    description: { type: 'text' },
    permissions: { type: 'text[]' },
    builtin: { type: 'boolean' },
    createdAt: { type: 'datetime', fieldName: 'created_at' },
  },
})

export const ApiKeySchema = new EntitySchema<ApiKey>({
  name: 'ApiKey',
  tableName: 'api_keys',
  properties: {
    id: { type: 'uuid', primary: true },
    tenantId: { type: 'uuid', fieldName: 'tenant_id' },
    orgKind: { type: 'text', fieldName: 'org_kind' },
    name: { type: 'text' },
    secretHash: { type: 'text', fieldName: 'secret_hash', hidden: true },
    permissions: { type: 'text[]' },
    createdBy: { type: 'uuid', fieldName: 'created_by' },
    createdAt: { type: 'datetime', fieldName: 'created_at' },
    expiresAt: { type: 'datetime', fieldName: 'expires_at', nullable: true },
    revokedAt: { type: 'datetime', fieldName: 'revoked_at', nullable: true },
  },
})
