// The extension API's organisation and membership services (what the marketplace reads instead of
// kernel tables): who an organisation is, a partner's tenants, ensuring a partner exists (once,
// audited), and whether a person belongs to an organisation — on every database.
import t from 'tap'
import { DB_KINDS, createTenantWithAdmin, startTestKernel } from './helpers/test-kernel.js'
import { kernelServices } from '../src/extension-api/wire.js'
import { coreServices, type MembershipService, type OrganisationService } from '../src/extension-api/index.js'
import type { TransactionService } from '../src/extension-api/services.js'
import { PLATFORM_ORG } from '../src/db/database.js'

for (const kind of DB_KINDS)
  t.test(`organisations and memberships (${kind})`, async (t) => {
    const k = await startTestKernel(t, kind)
    const services = kernelServices(k.kernel.ctx)
    const tx = services.get(coreServices.transactions.id) as TransactionService
    const orgs = services.get(coreServices.organisations.id) as OrganisationService
    const members = services.get(coreServices.memberships.id) as MembershipService

    const partner = await k.req('POST', '/v1/partners', {
      token: k.adminToken,
      body: {
        name: 'Acme Channel',
        slug: 'acme-channel',
        admin: { email: 'pa@acme.test', name: 'PA', password: 'partner-admin-password' },
      },
    })
    t.equal(partner.status, 201)
    const partnerId: string = partner.body.id
    const a = await createTenantWithAdmin(k, 'shop-a', { partnerId })
    const b = await createTenantWithAdmin(k, 'shop-b', { partnerId })
    const alone = await createTenantWithAdmin(k, 'shop-alone')
    const [pa] = await k.ownerSql<{ id: string }>("select id from users where email = 'pa@acme.test'")

    await tx.read(PLATFORM_ORG, async (q) => {
      t.match(await orgs.get(q, partnerId), {
        id: partnerId,
        kind: 'partner',
        name: 'Acme Channel',
        slug: 'acme-channel',
        status: 'active',
        managingPartnerId: null,
      })
      t.match(await orgs.get(q, a.tenant.id), { kind: 'tenant', name: 'shop-a', managingPartnerId: partnerId })
      t.match(await orgs.get(q, PLATFORM_ORG), { kind: 'platform' })
      t.equal(await orgs.get(q, '00000000-0000-0000-0000-0000000000ff'), undefined, 'an unknown id names nothing')
      const many = await orgs.getMany(q, [partnerId, alone.tenant.id, null, undefined, partnerId])
      t.same([...many.keys()].sort(), [partnerId, alone.tenant.id].sort())
      t.same(
        (await orgs.tenantsOf(q, partnerId)).map((o) => o.id),
        [a.tenant.id, b.tenant.id],
        "a partner's tenants, oldest first",
      )
      t.same(await orgs.tenantsOf(q, alone.tenant.id), [])

      t.equal(await members.holdsRole(q, pa!.id, partnerId), true, "the partner's admin belongs to it")
      t.equal(await members.holdsRole(q, pa!.id, a.tenant.id), false, 'not to its tenants')
    })
    // Asked from an organisation other than the platform or the one in question: refused, not "no".
    await t.rejects(
      tx.read(b.tenant.id, (q) => members.holdsRole(q, pa!.id, partnerId)),
      { code: 'KRN_ERR_CONFIG_INVALID' },
    )
    t.equal(await tx.read(partnerId, (q) => members.holdsRole(q, pa!.id, partnerId)), true, 'in its own transaction')

    // ensurePartner: created once, audited in the platform's chain; the second call finds it.
    const meta = { actor: { kind: 'system' as const, id: 'test' } }
    const first = await tx.run(PLATFORM_ORG, (q) =>
      orgs.ensurePartner(q, { name: 'Trellis', slug: 'trellis-test' }, meta),
    )
    const again = await tx.run(PLATFORM_ORG, (q) =>
      orgs.ensurePartner(q, { name: 'Trellis', slug: 'trellis-test' }, meta),
    )
    t.equal(first.created, true)
    t.same(again, { id: first.id, created: false })
    const audited = await k.ownerSql(
      "select action from audit_log where tenant_id = ?::uuid and action = 'partner.created' and target_id = ?",
      [PLATFORM_ORG, first.id],
    )
    t.equal(audited.length, 1, 'its creation is in the platform audit chain')
    await t.rejects(
      tx.run(partnerId, (q) => orgs.ensurePartner(q, { name: 'X', slug: 'x-from-partner' }, meta)),
      { code: 'KRN_ERR_CONFIG_INVALID' },
      "only in the platform's transaction",
    )
  })
