// First-party seeding goes the way every partner's plugin goes (publish, checks, review, install)
// under the `@trellis` publisher, which the kernel's organisation service ensures exists — once,
// audited — rather than the marketplace inserting a partner row itself.
import t from 'tap'
import { fileURLToPath } from 'node:url'
import { DB_KINDS, createTenantWithAdmin } from '../../core/test/helpers/test-kernel.js'
import { startMarketKernel } from './fixtures/kernel.js'

const CATALOG = fileURLToPath(new URL('../../plugins/catalog', import.meta.url))

for (const kind of DB_KINDS)
  t.test(`first-party plugins are seeded under the @trellis publisher (${kind})`, async (t) => {
    const k = await startMarketKernel(
      t,
      kind,
      { plugins: { sandboxWorkers: 1 } },
      { checks: { pollMs: 50, maxPollMs: 200 } },
    )
    const shop = await createTenantWithAdmin(k, 'first-party-shop')
    const seeded = await k.market.seedFirstParty({ tenantId: shop.tenant.id, dirs: [CATALOG] })
    t.match(seeded, [{ plugin: '@trellis/catalog', status: 'approved', installed: true }])

    const publishers = await k.ownerSql<{ id: string; name: string }>(
      "select p.id, p.name from partners p join marketplace_scopes s on s.partner_id = p.id where s.scope = '@trellis'",
    )
    t.equal(publishers.length, 1)
    t.equal(publishers[0]!.name, 'Trellis')
    const created = await k.ownerSql("select 1 from audit_log where action = 'partner.created' and target_id = ?", [
      publishers[0]!.id,
    ])
    t.equal(created.length, 1, "the publisher's creation is audited")

    // Seeding again (another demo tenant) finds the publisher and the approved version.
    const other = await createTenantWithAdmin(k, 'first-party-shop-2')
    const again = await k.market.seedFirstParty({ tenantId: other.tenant.id, dirs: [CATALOG] })
    t.match(again, [{ plugin: '@trellis/catalog', status: 'approved', installed: true }])
    t.equal((await k.ownerSql("select 1 from partners where slug = 'trellis-first-party'")).length, 1, 'one publisher')
    const listing = await k.req('GET', '/v1/marketplace/plugins/@trellis/catalog', { token: other.token })
    t.equal(listing.status, 200)
    t.same(listing.body.publisher, { id: publishers[0]!.id, name: 'Trellis' }, 'the listing names the publisher')
  })
