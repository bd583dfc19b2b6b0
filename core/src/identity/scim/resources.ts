import { KRN } from '../../errors.js'

export const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User'
export const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group'
export const LIST_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:ListResponse'
export const PATCH_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:PatchOp'
export const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error'

export interface ScimUserRow {
  user_id: string
  user_name: string
  display_name: string | null
  external_id: string | null
  given_name: string | null
  family_name: string | null
  active: boolean
  created_at: Date
  updated_at: Date
}

export interface ScimGroupRow {
  id: string
  display_name: string
  external_id: string | null
  created_at: Date
  updated_at: Date
  members: string[] | null
}

export function userResource(r: ScimUserRow, base: string) {
  return {
    schemas: [USER_SCHEMA],
    id: r.user_id,
    ...(r.external_id ? { externalId: r.external_id } : {}),
    userName: r.user_name,
    name: {
      ...(r.given_name ? { givenName: r.given_name } : {}),
      ...(r.family_name ? { familyName: r.family_name } : {}),
    },
    displayName: r.display_name ?? r.user_name,
    emails: [{ value: r.user_name, primary: true, type: 'work' }],
    active: r.active,
    meta: {
      resourceType: 'User',
      created: new Date(r.created_at).toISOString(),
      lastModified: new Date(r.updated_at).toISOString(),
      location: `${base}/Users/${r.user_id}`,
    },
  }
}

export function groupResource(r: ScimGroupRow, base: string) {
  return {
    schemas: [GROUP_SCHEMA],
    id: r.id,
    ...(r.external_id ? { externalId: r.external_id } : {}),
    displayName: r.display_name,
    members: (r.members ?? []).map((value) => ({ value, $ref: `${base}/Users/${value}` })),
    meta: {
      resourceType: 'Group',
      created: new Date(r.created_at).toISOString(),
      lastModified: new Date(r.updated_at).toISOString(),
      location: `${base}/Groups/${r.id}`,
    },
  }
}

export function listResponse<T>(all: T[], startIndex = 1, count?: number) {
  const start = Math.max(1, startIndex)
  const page = all.slice(start - 1, count === undefined ? undefined : start - 1 + Math.max(0, count))
  return {
    schemas: [LIST_SCHEMA],
    totalResults: all.length,
    startIndex: start,
    itemsPerPage: page.length,
    Resources: page,
  }
}

/**
 * The one filter provisioning clients send: `<attribute> eq "<value>"` (attribute names and the
 * operator are case-insensitive). Anything else is refused as SCIM's invalidFilter.
 */
export function parseEqFilter(
  filter: string | undefined,
  allowed: string[],
): { attribute: string; value: string } | undefined {
  if (filter === undefined || filter.trim() === '') return undefined
  const m = /^\s*([A-Za-z.]+)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$/i.exec(filter)
  const attribute = m && allowed.find((a) => a.toLowerCase() === m[1]!.toLowerCase())
  if (!m || !attribute)
    throw KRN.VALIDATION_FAILED({ reason: `unsupported filter; use ${allowed.map((a) => `${a} eq "…"`).join(' or ')}` })
  return { attribute, value: m[2]!.replace(/\\(.)/g, '$1') }
}

/** SCIM booleans arrive as true/false or, from some clients, "True"/"False". */
export function scimBoolean(v: unknown): boolean {
  if (typeof v === 'boolean') return v
  if (typeof v === 'string' && /^(true|false)$/i.test(v)) return v.toLowerCase() === 'true'
  throw KRN.VALIDATION_FAILED({ reason: 'active must be a boolean' })
}
