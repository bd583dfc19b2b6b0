/**
 * Organisations and memberships as an extension reads them: narrow, typed answers about the
 * kernel's tenancy and identity (who an organisation is, which tenants a partner manages,
 * whether a person belongs to an organisation), and the one write an extension may need —
 * a partner organisation that must exist (the marketplace's first-party publisher). The kernel's
 * tables stay the kernel's: an extension never names them in its SQL.
 */
import { v7 as uuidv7 } from 'uuid'
import { PLATFORM_ORG, type Tx } from '../db/database.js'
import { auditedWrite } from '../audit/audited-write.js'
import { kernelEvent } from '../events/outbox.js'
import { KRN } from '../errors.js'
import type { ExtensionTx } from './services.js'

export type OrganisationKind = 'platform' | 'partner' | 'tenant'

/** An organisation's identity and standing (no branding, no business data). */
export interface Organisation {
  id: string
  kind: OrganisationKind
  name: string
  slug: string
  status: 'active' | 'suspended'
  /** The partner managing a tenant; null for partners, the platform and unmanaged tenants. */
  managingPartnerId: string | null
}

/** Reads of the platform's organisations, and ensuring a partner exists. */
export interface OrganisationService {
  /** An organisation by id (the platform included), or undefined. */
  get(tx: ExtensionTx, id: string): Promise<Organisation | undefined>
  /** Several organisations by id; ids that name none are absent from the map. */
  getMany(tx: ExtensionTx, ids: ReadonlyArray<string | null | undefined>): Promise<Map<string, Organisation>>
  /** The tenants a partner manages, oldest first. */
  tenantsOf(tx: ExtensionTx, partnerId: string): Promise<Organisation[]>
  /**
   * The partner with `slug`, created (audited as `partner.created` in the platform's chain, with
   * its event) when none exists. Runs in the platform's transaction only.
   */
  ensurePartner(
    tx: ExtensionTx,
    partner: { name: string; slug: string },
    meta: { actor: { kind: 'system'; id: string } },
  ): Promise<{ id: string; created: boolean }>
}

/** Whether a person belongs to an organisation. */
export interface MembershipService {
  /**
   * Whether `userId` holds a role (any) in `orgId`. The transaction must act in the platform or
   * in `orgId` (others' memberships are not visible elsewhere); any other is refused, never
   * answered "no".
   */
  holdsRole(tx: ExtensionTx, userId: string, orgId: string): Promise<boolean>
}

interface OrgRow {
  id: string
  kind: OrganisationKind
  name: string
  slug: string
  status: 'active' | 'suspended'
  partner_id: string | null
}

const ORGS = `select id, 'partner' as kind, name, slug, status, null::uuid as partner_id from partners
  union all select id, 'tenant' as kind, name, slug, status, partner_id from tenants`

const platform: Organisation = {
  id: PLATFORM_ORG,
  kind: 'platform',
  name: 'Platform',
  slug: 'platform',
  status: 'active',
  managingPartnerId: null,
}

const toOrg = (r: OrgRow): Organisation => ({
  id: r.id,
  kind: r.kind,
  name: r.name,
  slug: r.slug,
  status: r.status,
  managingPartnerId: r.partner_id,
})

async function currentOrg(tx: ExtensionTx): Promise<string | null> {
  const [row] = await tx.sql<{ org: string | null }>('select trellis_current_tenant() as org')
  return row?.org ?? null
}

export function createOrganisationService(): OrganisationService {
  const getMany: OrganisationService['getMany'] = async (tx, ids) => {
    const wanted = [...new Set(ids.filter((x): x is string => typeof x === 'string'))]
    const out = new Map<string, Organisation>()
    if (wanted.includes(PLATFORM_ORG)) out.set(PLATFORM_ORG, platform)
    const others = wanted.filter((x) => x !== PLATFORM_ORG)
    if (!others.length) return out
    const rows = await tx.sql<OrgRow>(`select * from (${ORGS}) o where o.id = any(?::uuid[])`, [others])
    for (const r of rows) out.set(r.id, toOrg(r))
    return out
  }
  return {
    getMany,
    async get(tx, id) {
      return (await getMany(tx, [id])).get(id)
    },
    async tenantsOf(tx, partnerId) {
      const rows = await tx.sql<OrgRow>(
        `select id, 'tenant' as kind, name, slug, status, partner_id from tenants where partner_id = ?::uuid order by id`,
        [partnerId],
      )
      return rows.map(toOrg)
    },
    async ensurePartner(tx, partner, meta) {
      if ((await currentOrg(tx)) !== PLATFORM_ORG)
        throw KRN.CONFIG_INVALID({ variable: 'extensions', reason: 'a partner is ensured in the platform transaction' })
      const [found] = await tx.sql<{ id: string }>('select id from partners where slug = ?', [partner.slug])
      if (found) return { id: found.id, created: false }
      const id = uuidv7()
      await auditedWrite(tx as Tx, {
        write: {
          sql: 'insert into partners (id, name, slug) values (?::uuid, ?, ?) returning id',
          params: [id, partner.name, partner.slug],
        },
        auditOrg: PLATFORM_ORG,
        audit: { ...meta, action: 'partner.created', target: { kind: 'partner', id }, data: partner },
        events: [kernelEvent('kernel.partner.created', `partner/${id}`, { partnerId: id, ...partner })],
        alsoTo: { current: PLATFORM_ORG, orgs: [PLATFORM_ORG, id] },
      })
      return { id, created: true }
    },
  }
}

export function createMembershipService(): MembershipService {
  return {
    async holdsRole(tx, userId, orgId) {
      const current = await currentOrg(tx)
      if (current !== PLATFORM_ORG && current !== orgId)
        throw KRN.CONFIG_INVALID({
          variable: 'extensions',
          reason: "a membership is read in the platform's or the organisation's own transaction",
        })
      const rows = await tx.sql('select 1 from trellis_auth_memberships(?::uuid) where tenant_id = ?::uuid', [
        userId,
        orgId,
      ])
      return rows.length > 0
    },
  }
}
