import t from 'tap'
import { DB_KINDS, startTestKernel, createTenantWithAdmin } from './helpers/test-kernel.js'

for (const kind of DB_KINDS) {
  t.test(`row-level security on ${kind}`, async (t) => {
    const k = await startTestKernel(t, kind)
    const a = await createTenantWithAdmin(k, `rls-a-${kind}`)
    const b = await createTenantWithAdmin(k, `rls-b-${kind}`)
    // Give each tenant rows of every tenant-owned kind.
    for (const s of [a, b]) {
      t.equal((await k.req('POST', '/v1/roles', { token: s.token, body: { name: 'clerk', permissions: ['users.read'] } })).status, 201)
      t.equal((await k.req('POST', '/v1/api-keys', { token: s.token, body: { name: 'k', permissions: ['users.read'] } })).status, 201)
    }
    await k.kernel.ctx.sealer.flush()

    t.test('a transaction that forgot the tenant sees no tenant rows at all', async (t) => {
      for (const table of ['memberships', 'api_keys', 'audit_log', 'idempotency_keys']) {
        const owner = await k.ownerSql(`select count(*)::int as n from ${table}`)
        const forgot = await k.appSql(null, `select count(*)::int as n from ${table}`)
        if (table !== 'idempotency_keys') t.ok(owner[0].n > 0, `${table} has rows`)
        t.equal(forgot[0].n, 0, `${table}: nothing visible without a tenant`)
      }
      const roles = await k.appSql(null, 'select count(*)::int as n from roles where not builtin')
      t.equal(roles[0].n, 0, 'custom roles hidden too')
    })

    t.test('a tenant sees only its own rows, even asking for the other by id', async (t) => {
      const aRows = await k.appSql(a.orgId, 'select distinct tenant_id from api_keys')
      t.same(aRows.map((r) => r.tenant_id), [a.orgId])
      const bKey = await k.ownerSql('select id from api_keys where tenant_id = ?::uuid', [b.orgId])
      const peek = await k.appSql(a.orgId, 'select * from api_keys where id = ?::uuid', [bKey[0].id])
      t.equal(peek.length, 0)
      const audit = await k.appSql(a.orgId, 'select count(*)::int as n from audit_log where tenant_id = ?::uuid', [b.orgId])
      t.equal(audit[0].n, 0)
    })

    t.test('writing a row into another tenant is refused by the policy', async (t) => {
      await t.rejects(
        k.appSql(a.orgId, `insert into roles (id, tenant_id, name, permissions) values (gen_random_uuid(), ?::uuid, 'sneaky', '{}')`, [b.orgId]),
        /row-level security/,
      )
      await t.rejects(k.appSql(a.orgId, `update api_keys set tenant_id = ?::uuid`, [b.orgId]), /row-level security/)
      const moved = await k.ownerSql(`select count(*)::int as n from roles where name = 'sneaky'`)
      t.equal(moved[0].n, 0, 'nothing was written')
    })

    t.test('the application role is not privileged and cannot rewrite or delete audit entries', async (t) => {
      const [role] = await k.appSql(a.orgId, `select current_user as u, (select rolsuper or rolbypassrls from pg_roles where rolname = current_user) as privileged`)
      t.equal(role.u, 'trellis_app')
      t.equal(role.privileged, false)
      await t.rejects(k.appSql(a.orgId, `update audit_log set action = 'nothing.happened'`), /permission denied/)
      await t.rejects(k.appSql(a.orgId, `delete from audit_log`), /permission denied/)
      const [owns] = await k.ownerSql(`select count(*)::int as n from pg_tables where tableowner = 'trellis_app'`)
      t.equal(owns.n, 0, 'trellis_app owns no table')
    })
  })
}
