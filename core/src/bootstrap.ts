import { randomBytes } from 'node:crypto'
import { v7 as uuidv7 } from 'uuid'
import type { KernelContext } from './kernel-context.js'

/** What creating the first accounts uses: the database, and what a tenant transaction seals and dispatches. */
type BootstrapDeps = Pick<KernelContext, 'db' | 'sealer' | 'events'>
import { orgTx } from './kernel-context.js'
import { PLATFORM_ORG } from './db/database.js'
import { appendAudit } from './audit/audit-log.js'
import { assertPasswordStrength, hashPassword } from './identity/passwords.js'
import { addMember } from './tenancy/tenancy-service.js'
import { KRN } from './errors.js'

const SYSTEM = { actor: { kind: 'system' as const, id: 'bootstrap' } }

export function generatePassword(): string {
  return randomBytes(15).toString('base64url')
}

/** True when the platform has at least one platform admin. */
export async function hasPlatformAdmin(k: BootstrapDeps): Promise<boolean> {
  const rows = await orgTx(k, PLATFORM_ORG, (tx) =>
    tx.sql(`select 1 from memberships m join roles r on r.id = m.role_id where r.name = 'platform_admin' limit 1`),
  )
  return rows.length > 0
}

/** Creates a platform admin (or makes an existing user one). */
export async function createPlatformAdmin(
  k: BootstrapDeps,
  input: { email: string; name?: string; password?: string },
): Promise<{ email: string; password?: string }> {
  const password = input.password ?? generatePassword()
  assertPasswordStrength(password)
  await orgTx(k, PLATFORM_ORG, (tx) =>
    addMember(
      tx,
      PLATFORM_ORG,
      'platform',
      'platform_admin',
      { email: input.email, name: input.name ?? 'Platform admin', password },
      SYSTEM,
    ),
  )
  return { email: input.email, password: input.password ? undefined : password }
}

export interface DemoAccount {
  role: string
  email: string
  password: string
  org: string
}

/**
 * The demo: a partner with branding, a tenant it manages, and one user per built-in role.
 * Running it again resets the demo users' passwords, so they can always be printed.
 */
export async function seedDemo(
  k: BootstrapDeps,
  opts: { password?: string } = {},
): Promise<{ partnerId: string; tenantId: string; accounts: DemoAccount[] }> {
  const password = opts.password ?? process.env.TRELLIS_DEMO_PASSWORD ?? generatePassword()
  assertPasswordStrength(password)
  const hash = await hashPassword(password)
  let [partner] = await k.db.unscoped((tx) =>
    tx.sql<{ id: string }>(`select id from partners where slug = 'northwind-partners'`),
  )
  if (!partner) {
    partner = { id: uuidv7() }
    await orgTx(k, PLATFORM_ORG, async (tx) => {
      await tx.sql(
        `insert into partners (id, name, slug, branding) values (?::uuid, 'Northwind Partners', 'northwind-partners', ?::jsonb)`,
        [
          partner!.id,
          JSON.stringify({
            displayName: 'Northwind Cloud ERP',
            primaryColor: '#1f4e79',
            logoUrl: 'https://northwind.example/logo.svg',
            customDomain: 'erp.northwind.example',
          }),
        ],
      )
      await appendAudit(tx, PLATFORM_ORG, {
        ...SYSTEM,
        action: 'partner.created',
        target: { kind: 'partner', id: partner!.id },
        data: { slug: 'northwind-partners', demo: true },
      })
    })
  }
  let [tenant] = await k.db.unscoped((tx) =>
    tx.sql<{ id: string }>(`select id from tenants where slug = 'northwind-traders'`),
  )
  if (!tenant) {
    tenant = { id: uuidv7() }
    await orgTx(k, partner.id, async (tx) => {
      await tx.sql(
        `insert into tenants (id, name, slug, partner_id) values (?::uuid, 'Northwind Traders', 'northwind-traders', ?::uuid)`,
        [tenant!.id, partner!.id],
      )
      await appendAudit(tx, partner!.id, {
        ...SYSTEM,
        action: 'tenant.created',
        target: { kind: 'tenant', id: tenant!.id },
        data: { slug: 'northwind-traders', demo: true },
      })
    })
  }
  const accounts: DemoAccount[] = [
    { role: 'partner_admin', email: 'partner.admin@demo.trellis.local', password, org: 'Northwind Partners' },
    { role: 'partner_developer', email: 'partner.dev@demo.trellis.local', password, org: 'Northwind Partners' },
    { role: 'tenant_admin', email: 'tenant.admin@demo.trellis.local', password, org: 'Northwind Traders' },
    { role: 'tenant_member', email: 'tenant.member@demo.trellis.local', password, org: 'Northwind Traders' },
  ]
  for (const a of accounts) {
    const [orgId, kind] = a.role.startsWith('partner')
      ? [partner.id, 'partner' as const]
      : [tenant.id, 'tenant' as const]
    await orgTx(k, orgId, async (tx) => {
      await addMember(tx, orgId, kind, a.role, { email: a.email, name: a.role.replace('_', ' '), password }, SYSTEM)
      await tx.sql('update users set password_hash = ? where lower(email) = lower(?)', [hash, a.email])
    })
  }
  return { partnerId: partner.id, tenantId: tenant.id, accounts }
}

export function assertEmail(email: string): void {
  if (!/^[^\s@]+@[^\s@]+$/.test(email)) throw KRN.VALIDATION_FAILED({ reason: `${email} is not an email address` })
}
