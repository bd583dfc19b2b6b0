import t from 'tap'
import { randomBytes } from 'node:crypto'
import { DB_KINDS, startTestKernel, createTenantWithAdmin, type TestKernel } from './helpers/test-kernel.js'

// Tables that carry a tenant_id yet are deliberately not under row-level security, each with its
// reason. Empty: keep it that way unless a table truly must be read across tenants by the
// application role.
const ALLOWED_WITHOUT_RLS: Record<string, string> = {}

/** Every table (or partitioned table) of the kernel's schema with a tenant_id column, from the catalog. */
const tenantTables = (k: TestKernel) =>
  k.ownerSql<{ relname: string; relrowsecurity: boolean; relforcerowsecurity: boolean }>(
    `select c.relname, c.relrowsecurity, c.relforcerowsecurity
       from pg_class c
       join pg_namespace n on n.oid = c.relnamespace
       join pg_attribute a on a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped
      where n.nspname = current_schema() and c.relkind in ('r', 'p')
      order by c.relname`,
  )

/** The tenant tables without row-level security both enabled and forced, less the allow-list. */
const unprotected = async (k: TestKernel) =>
  (await tenantTables(k))
    .filter((r) => !(r.relrowsecurity && r.relforcerowsecurity) && !(r.relname in ALLOWED_WITHOUT_RLS))
    .map((r) => r.relname)

for (const kind of DB_KINDS) {
  t.test(`row-level security on ${kind}`, async (t) => {
    const k = await startTestKernel(t, kind)
    const a = await createTenantWithAdmin(k, `rls-a-${kind}`)
    const b = await createTenantWithAdmin(k, `rls-b-${kind}`)
    // Give each tenant rows of every tenant-owned kind.
    for (const s of [a, b]) {
      t.equal(
        (await k.req('POST', '/v1/roles', { token: s.token, body: { name: 'clerk', permissions: ['users.read'] } }))
          .status,
        201,
      )
      t.equal(
        (await k.req('POST', '/v1/api-keys', { token: s.token, body: { name: 'k', permissions: ['users.read'] } }))
          .status,
        201,
      )
    }
    await k.kernel.ctx.sealer.flush()

    t.test('a transaction that forgot the tenant sees no row of any tenant table', async (t) => {
      // Every table the catalog says carries a tenant_id, not a list kept by hand.
      const tables = (await tenantTables(k)).map((r) => r.relname)
      t.ok(tables.length >= 10, `the catalog lists the tenant tables (${tables.length})`)
      for (const table of ['memberships', 'api_keys', 'audit_log', 'roles'])
        t.ok((await k.ownerSql(`select count(*)::int as n from ${table}`))[0].n > 0, `${table} has rows`)
      for (const table of tables) {
        // Rows with no tenant (the built-in roles) are shared by design; a table the application
        // role may not read at all hides its rows too.
        const seen = await k
          .appSql(null, `select count(*)::int as n from ${table} where tenant_id is not null`)
          .then((r) => r[0].n as number)
          .catch((err: Error) => (/permission denied/.test(err.message) ? 0 : Promise.reject(err)))
        t.equal(seen, 0, `${table}: nothing visible without a tenant`)
      }
    })

    t.test('a tenant sees only its own rows, even asking for the other by id', async (t) => {
      const aRows = await k.appSql(a.orgId, 'select distinct tenant_id from api_keys')
      t.same(
        aRows.map((r) => r.tenant_id),
        [a.orgId],
      )
      const bKey = await k.ownerSql('select id from api_keys where tenant_id = ?::uuid', [b.orgId])
      const peek = await k.appSql(a.orgId, 'select * from api_keys where id = ?::uuid', [bKey[0].id])
      t.equal(peek.length, 0)
      const audit = await k.appSql(a.orgId, 'select count(*)::int as n from audit_log where tenant_id = ?::uuid', [
        b.orgId,
      ])
      t.equal(audit[0].n, 0)
    })

    t.test('writing a row into another tenant is refused by the policy', async (t) => {
      await t.rejects(
        k.appSql(
          a.orgId,
          `insert into roles (id, tenant_id, name, permissions) values (gen_random_uuid(), ?::uuid, 'sneaky', '{}')`,
          [b.orgId],
        ),
        /row-level security/,
      )
      await t.rejects(k.appSql(a.orgId, `update api_keys set tenant_id = ?::uuid`, [b.orgId]), /row-level security/)
      const moved = await k.ownerSql(`select count(*)::int as n from roles where name = 'sneaky'`)
      t.equal(moved[0].n, 0, 'nothing was written')
    })

    t.test('the application role is not privileged and cannot rewrite or delete audit entries', async (t) => {
      const [role] = await k.appSql(
        a.orgId,
        `select current_user as u, (select rolsuper or rolbypassrls from pg_roles where rolname = current_user) as privileged`,
      )
      t.equal(role.u, 'trellis_app')
      t.equal(role.privileged, false)
      await t.rejects(k.appSql(a.orgId, `update audit_log set action = 'nothing.happened'`), /permission denied/)
      await t.rejects(k.appSql(a.orgId, `delete from audit_log`), /permission denied/)
      const [owns] = await k.ownerSql(`select count(*)::int as n from pg_tables where tableowner = 'trellis_app'`)
      t.equal(owns.n, 0, 'trellis_app owns no table')
    })

    t.test('every table that carries a tenant_id has row-level security enabled and forced', async (t) => {
      t.same(await unprotected(k), [], 'none without (after every migration)')
    })

    t.test('the catalog check catches a tenant table without forced row-level security', async (t) => {
      const table = `rls_probe_${randomBytes(4).toString('hex')}`
      t.teardown(() => k.ownerSql(`drop table if exists ${table}`))
      await k.ownerSql(`create table ${table} (id uuid primary key, tenant_id uuid not null)`)
      t.same(await unprotected(k), [table], 'a new table with a tenant_id and no row-level security is named')
      await k.ownerSql(`alter table ${table} enable row level security`)
      t.same(await unprotected(k), [table], 'enabled but not forced (the owner would bypass it) is named too')
      await k.ownerSql(`alter table ${table} force row level security`)
      t.same(await unprotected(k), [], 'enabled and forced passes')
    })

    t.test(
      "sessions: no refresh-token hash for the application role, and only its own tenant's sessions",
      async (t) => {
        const [all] = await k.ownerSql('select count(distinct tenant_id)::int as n from sessions')
        t.ok(all.n >= 2, 'sessions of several organisations exist')
        for (const org of [null, a.orgId]) {
          await t.rejects(
            k.appSql(org, 'select token_hash from sessions'),
            /permission denied/,
            `no hash column (tenant ${org ?? 'unset'})`,
          )
          await t.rejects(k.appSql(org, 'select * from sessions'), /permission denied/)
        }
        t.equal((await k.appSql(null, 'select count(*)::int as n from sessions'))[0].n, 0, 'nothing without a tenant')
        t.same(
          (await k.appSql(a.orgId, 'select distinct tenant_id from sessions')).map((r) => r.tenant_id),
          [a.orgId],
        )
        const ended = await k.appSql(
          a.orgId,
          'update sessions set revoked_at = now() where tenant_id = ?::uuid returning id',
          [b.orgId],
        )
        t.equal(ended.length, 0, "cannot end another tenant's sessions")
        const [bLive] = await k.ownerSql(
          'select count(*)::int as n from sessions where tenant_id = ?::uuid and revoked_at is null',
          [b.orgId],
        )
        t.ok(bLive.n > 0)
      },
    )

    t.test(
      "users: no password hash for the application role, no account outside the organisation's members",
      async (t) => {
        for (const org of [null, a.orgId]) {
          await t.rejects(
            k.appSql(org, 'select password_hash from users'),
            /permission denied/,
            `no hash column (tenant ${org ?? 'unset'})`,
          )
          await t.rejects(k.appSql(org, 'select * from users'), /permission denied/)
        }
        t.equal(
          (await k.appSql(null, 'select count(*)::int as n from users'))[0].n,
          0,
          'no account visible without a tenant',
        )
        const visible = (await k.appSql(a.orgId, 'select email from users order by 1')).map((r) => r.email)
        t.same(visible, [a.email], "only the organisation's own members")
        t.same(
          await k.appSql(a.orgId, 'select id from users where lower(email) = lower(?)', [b.email]),
          [],
          "another tenant's admin cannot be found by e-mail",
        )
        t.same(
          await k.appSql(a.orgId, `update users set name = 'renamed' where lower(email) = lower(?) returning id`, [
            b.email,
          ]),
          [],
        )
        const [name] = await k.ownerSql('select name from users where lower(email) = lower(?)', [b.email])
        t.not(name.name, 'renamed')
      },
    )

    t.test('the sign-in look-ups belong to the sign-in role alone', async (t) => {
      const [bKey] = await k.ownerSql('select id from api_keys where tenant_id = ?::uuid', [b.orgId])
      for (const org of [null, a.orgId]) {
        await t.rejects(
          k.appSql(org, 'select * from trellis_signin_account(?)', [b.email]),
          /permission denied/,
          'account by e-mail',
        )
        await t.rejects(
          k.appSql(org, 'select * from trellis_auth_api_key(?::uuid)', [bKey.id]),
          /permission denied/,
          'API key by id',
        )
        await t.rejects(
          k.appSql(org, 'select * from trellis_auth_invitation(?::uuid)', [bKey.id]),
          /permission denied/,
          'invitation by id',
        )
      }
      const [bAdmin] = await k.ownerSql('select id from users where lower(email) = lower(?)', [b.email])
      t.same(
        await k.appSql(a.orgId, 'select * from trellis_auth_memberships(?::uuid)', [bAdmin.id]),
        [],
        "another tenant's user's memberships are not listed",
      )
      t.same(
        await k.appSql(null, 'select * from trellis_auth_memberships(?::uuid)', [bAdmin.id]),
        [],
        'nor with no tenant set',
      )
      for (const org of [null, a.orgId])
        await t.rejects(
          k.appSql(org, 'select * from trellis_signin_memberships(?::uuid)', [bAdmin.id]),
          /permission denied/,
          'the sign-in memberships look-up',
        )
      const signin = <T>(sql: string, params: unknown[] = []) =>
        k.kernel.ctx.db.inOrg(null, (tx) => tx.sql<T>(sql, params), 'trellis_signin')
      const found = await signin<{ id: string; password_hash: string }>('select * from trellis_signin_account(?)', [
        b.email,
      ])
      t.equal(found.length, 1, 'the sign-in role finds exactly the account asked for')
      t.same(await signin('select * from trellis_signin_account(?)', ['%']), [], 'and never a list')
      t.same(
        (
          await signin<{ tenant_id: string }>('select tenant_id from trellis_signin_memberships(?::uuid)', [bAdmin.id])
        ).map((r) => r.tenant_id),
        [b.orgId],
        'and the memberships sign-in needs',
      )
      await t.rejects(signin('select email from users'), /permission denied/, 'it cannot list e-mails')
      await t.rejects(signin('select password_hash from users'), /permission denied/, 'nor read hashes by listing')
      await t.rejects(signin('select * from memberships'), /permission denied/, 'nor read tenant tables')
    })
  })
}
