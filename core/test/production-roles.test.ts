import t from 'tap'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { createKernel } from '../src/kernel.js'
import { loadConfig } from '../src/config.js'
import { Database, PLATFORM_ORG } from '../src/db/database.js'
import { createPlatformAdmin } from '../src/bootstrap.js'
import { PG_ADMIN_URL } from './helpers/test-kernel.js'
import { migrationsList } from '@trellis/migrations'

// Production as docs/operations.md describes it: an owner login runs the migrations, the
// kernel logs in as a role that owns nothing and is not superuser.
t.test('the kernel runs as a non-owner, non-superuser login', async (t) => {
  const suffix = randomBytes(4).toString('hex')
  const [dbName, owner, kernel] = [`trellis_prod_${suffix}`, `trellis_owner_${suffix}`, `trellis_kernel_${suffix}`]
  const su = new pg.Client({ connectionString: PG_ADMIN_URL })
  await su.connect()
  t.teardown(async () => {
    await su.query(`drop database if exists ${dbName} with (force)`)
    await su.query(`drop role if exists ${kernel}`)
    await su.query(`drop owned by ${owner} cascade`).catch(() => {})
    await su.query(`drop role if exists ${owner}`)
    await su.end()
  })
  await su.query(`create role ${owner} login createrole`)
  await su.query(`create role ${kernel} login nosuperuser nobypassrls noinherit`)
  await su.query(`create database ${dbName} owner ${owner}`)
  const url = (user: string) =>
    Object.assign(new URL(PG_ADMIN_URL), { username: user, pathname: `/${dbName}` }).toString()
  const dbSu = new pg.Client({ connectionString: url(new URL(PG_ADMIN_URL).username) })
  await dbSu.connect()
  await dbSu.query(`alter schema public owner to ${owner}`)
  await dbSu.query('revoke create on schema public from public')
  await dbSu.end()

  const env = {
    DATABASE_URL: url(kernel),
    DATABASE_ADMIN_URL: url(owner),
    TRELLIS_SECRET_KEY: randomBytes(32).toString('hex'),
    LOG_LEVEL: 'silent',
    PORT: '0',
  }
  const db = await Database.open(loadConfig(env))
  t.same(
    await db.migrate('up'),
    migrationsList.map((m) => m.name),
    'the owner migrates',
  )
  await db.close()
  await su.query(`grant trellis_app, trellis_auditor, trellis_bootstrap, trellis_events, trellis_signin to ${kernel}`)

  const k = await createKernel({ config: loadConfig({ ...env, DATABASE_ADMIN_URL: undefined }) })
  t.teardown(() => k.close())
  await createPlatformAdmin(k.ctx, { email: 'ops@prod.test', password: 'production-admin-password' })
  const login = await k.app.inject({
    method: 'POST',
    url: '/v1/auth/login',
    payload: { email: 'ops@prod.test', password: 'production-admin-password' },
  })
  t.equal(login.statusCode, 200)
  const [who] = await k.ctx.db.inOrg(null, (tx) =>
    tx.sql<{ session_user: string; owns: number }>(
      `select session_user, (select count(*)::int from pg_tables where tableowner = session_user) as owns`,
    ),
  )
  t.equal(who!.session_user, kernel)
  t.equal(who!.owns, 0, 'the kernel login owns no table')
  // A code path that forgot SET ROLE and the tenant still cannot get around row-level security.
  const raw = new pg.Client({ connectionString: url(kernel) })
  await raw.connect()
  t.teardown(() => raw.end())
  t.ok((await su.query(`select 1 from pg_database where datname = $1`, [dbName])).rowCount === 1)
  for (const sql of [
    'select * from audit_log',
    'select * from memberships',
    'select * from api_keys',
    'select * from sessions',
    'select password_hash from users',
    `select * from trellis_signin_account('ops@prod.test')`,
    'select * from events',
    'select * from webhook_endpoints',
    `insert into roles (id, name, permissions) values (gen_random_uuid(), 'x', '{}')`,
  ]) {
    await t.rejects(raw.query(sql), /permission denied/, sql)
  }
  // Even a login that inherits the roles sees no tenant's rows, nor the auditor's view.
  await su.query(`alter role ${kernel} inherit`)
  const inheriting = new pg.Client({ connectionString: url(kernel) })
  await inheriting.connect()
  t.teardown(() => inheriting.end())
  t.equal((await inheriting.query('select * from audit_log')).rowCount, 0, 'no audit rows visible')
  t.equal((await inheriting.query('select * from memberships')).rowCount, 0, 'no memberships visible')
  t.equal((await inheriting.query('select * from events')).rowCount, 0, 'no events visible')
  t.equal((await inheriting.query('select id from users')).rowCount, 0, 'no accounts visible')
  t.equal((await inheriting.query('select id from sessions')).rowCount, 0, 'no sessions visible')
  const platformRows = await k.ctx.db.inOrg(PLATFORM_ORG, (tx) => tx.sql('select 1 from audit_log'))
  t.ok(platformRows.length > 0, 'there are audit rows to hide')
  await t.rejects(
    inheriting.query(`insert into roles (id, name, permissions) values (gen_random_uuid(), 'x', '{}')`),
    /row-level security/,
  )
  await t.rejects(inheriting.query(`update audit_log set action = 'x'`), /permission denied/)
})
