import type { Test } from 'tap'
import { createTenantWithAdmin, type TestKernel } from './test-kernel.js'

/** What the audit suites do to a chain: edit it as its owner, and fill it with a tenant's writes. */
export function auditAttacks(t: Test, k: TestKernel) {
  /** What an attacker with owner access would do: switch the guard off and edit rows. */
  const tamper = async (sql: string, params: unknown[] = []) => {
    await k.ownerSql('alter table audit_log disable trigger audit_log_guard')
    try {
      await k.ownerSql(sql, params)
    } finally {
      await k.ownerSql('alter table audit_log enable trigger audit_log_guard')
    }
  }
  /** A tenant whose chain holds `roles` role creations, sealed. */
  const busyTenant = async (slug: string, roles = 5) => {
    const s = await createTenantWithAdmin(k, `${slug}-${k.kind}`)
    for (let i = 0; i < roles; i++)
      t.equal(
        (await k.req('POST', '/v1/roles', { token: s.token, body: { name: `r${i}`, permissions: ['users.read'] } }))
          .status,
        201,
      )
    await k.kernel.ctx.sealer.flush()
    return s
  }
  return { tamper, busyTenant }
}
