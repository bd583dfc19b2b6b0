// Baselines in their own process: bare Fastify + pg making the kernel's audited writes with the
// kernel's round trips and SQL — one simple-protocol round trip for `begin`, the role drop, the
// tenant and the organisation-status check; the reads the kernel's route makes before the write
// (users: the member and the role, in one statement; installations: the installation), as the
// same named prepared statements; one named prepared statement writing the row, its audit entry
// and its outbox event (a data-modifying CTE); what the route writes after it (users: the
// member's sessions ended); `commit` — and Fastify's hello world.
// No authentication, no validation, no event dispatch afterwards; its audit entries are sealed
// into the hash chain as the kernel's are (below): what is left between the two is the kernel's
// own overhead. Uses the schema the kernel created in the same database. Its outbox rows are
// written as the kernel writes them: processed at once when the tenant's subscription generation
// is the one it last read or nothing stamped since wants the type (nobody subscribes to what these
// writes emit), pending otherwise — and then it reads the generation again, as the kernel does;
// after creating a webhook endpoint it moves its generation on as the kernel's index does.
import Fastify from 'fastify'
import pg from 'pg'
import { createCipheriv, createHash, randomBytes } from 'node:crypto'
import { v7 as uuidv7 } from 'uuid'
import { AuditSealer } from '../../core/src/audit/sealer.js'
import { positional, type DbRole, type TransactionSource, type Tx } from '../../core/src/db/database.js'
import { patternsMatching } from '../../core/src/events/catalogue.js'

const tenantId = process.env.BENCH_TENANT_ID!
const userId = process.env.BENCH_USER_ID!
if (!/^[0-9a-f-]{36}$/.test(tenantId) || !/^[0-9a-f-]{36}$/.test(userId))
  throw new Error('BENCH_TENANT_ID/BENCH_USER_ID')
const secretKey = randomBytes(32)
// Named, so that the benchmark tells this server's PostgreSQL backends from the kernel's.
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10, application_name: 'bench-baseline' })
const app = Fastify()
app.get('/hello', async () => ({ hello: 'world' }))

const AUDIT = `insert into audit_log (id, tenant_id, at, actor_kind, actor_id, action, target_kind, target_id, data, ip, request_id)
  select * from (values ($A::uuid, $T::uuid, $AT::timestamptz, 'user', $U, $ACTION, $KIND, $TARGET, $DATA::jsonb, '127.0.0.1', $REQ)) v where exists (select 1 from w)`
const EVENT = `insert into events (id, type, source, subject, data, processed_at)
  select * from (values ($E::uuid, $ETYPE, 'trellis/kernel', $SUBJECT, $EDATA::jsonb,
    case when trellis_current_tenant() = $ET::uuid and coalesce((
      select g.gen = $EGEN::bigint or (g.installs_gen <= $EGEN::bigint and not exists (select 1 from webhook_endpoints w
        where w.tenant_id = g.tenant_id and w.subscribers_gen > $EGEN::bigint and w.status = 'active' and w.types && $EPAT::text[]))
        from event_subscriber_gens g where g.tenant_id = trellis_current_tenant()), $EGEN::bigint = 0) then now() end)) v
  where exists (select 1 from w) returning id, processed_at`
const PENDING = `(select coalesce(array_agg(e.id::text), '{}') from e where e.processed_at is null) as trellis_pending_events`

/** One fused statement: the row write (`w`), its audit entry and its event, numbered after the write's own parameters. */
function fused(name: string, write: string, writeParams: number, event = true): { name: string; text: string } {
  let n = writeParams
  const names = [
    'A',
    'T',
    'AT',
    'U',
    'ACTION',
    'KIND',
    'TARGET',
    'DATA',
    'REQ',
    'E',
    'ETYPE',
    'SUBJECT',
    'EDATA',
    'ET',
    'EGEN',
    'EPAT',
  ]
  const at = Object.fromEntries(names.map((x) => [x, ++n]))
  const sub = (s: string) => s.replace(/\$([A-Z]+)/g, (_, x: string) => `$${at[x]}`)
  const e = event ? `, e as (${sub(EVENT)})` : ''
  return {
    name,
    text: `with w as (${write}), a as (${sub(AUDIT)})${e} select w.*${event ? `, ${PENDING}` : ''} from w`,
  }
}

const INSTALLATION_COLS =
  'id, tenant_id, plugin, mount, version_id, capabilities, settings, secret_names, secrets_enc, status, installed_by, created_at, updated_at'

const STATEMENTS = {
  role: fused(
    'baseline_role',
    'insert into roles (id, tenant_id, name, description, permissions) values ($1::uuid, $2::uuid, $3, $4, $5::text[]) on conflict do nothing returning *',
    5,
  ),
  apiKey: fused(
    'baseline_api_key',
    `insert into api_keys (id, tenant_id, org_kind, name, secret_hash, permissions, created_by, expires_at)
     values ($1::uuid, $2::uuid, 'tenant', $3, $4, $5::text[], $6::uuid, null) returning *`,
    6,
  ),
  membership: fused(
    'baseline_membership',
    'update memberships set role_id = $1::uuid where user_id = $2::uuid returning id',
    2,
  ),
  installation: fused(
    'baseline_installation',
    `update plugin_installations set settings = $1::jsonb, secrets_enc = $2, secret_names = $3::text[], status = $4, updated_at = now() where id = $5::uuid returning ${INSTALLATION_COLS}, history, pending_version_id`,
    5,
    false,
  ),
  webhook: fused(
    'baseline_webhook',
    `insert into webhook_endpoints (id, tenant_id, url, types, description, secret_enc) values ($1::uuid, $2::uuid, $3, $4::text[], '', $5)
     returning id, url, types, description, status, disabled_reason, previous_secret_expires_at, created_at, updated_at, subscribers_gen::text`,
    5,
  ),
}

// The member and the role, in one round trip (as the kernel's role change reads them).
const MEMBER_AND_ROLE = {
  name: 'baseline_member_and_role',
  text: `select (select to_jsonb(x) from (select u.id, u.email, u.name, r.name as role, u.status, m.created_at as "joinedAt", m.id as membership_id
  from memberships m join users u on u.id = m.user_id join roles r on r.id = m.role_id where m.user_id = $1::uuid) x) as member,
            (select to_jsonb(r) from (select * from roles where name = $2 and (builtin or tenant_id = $3::uuid) order by builtin limit 1) r) as role`,
}
const END_SESSIONS = {
  name: 'baseline_end_sessions',
  text: 'update sessions set revoked_at = now() where tenant_id = $1::uuid and user_id = $2::uuid and revoked_at is null returning family_id',
}
const INSTALLATION = {
  name: 'baseline_installation_read',
  text: `select ${INSTALLATION_COLS} from plugin_installations where id = $1::uuid`,
}

// The tenant's subscription generation as last read (see the header).
let gen = '0'
async function readGen(): Promise<void> {
  const { rows } = await pool.query(
    `select coalesce((select gen from event_subscriber_gens where tenant_id = $1::uuid), 0)::text as gen`,
    [tenantId],
  )
  // Generations only move on: a read that began before the last one's answer changes nothing.
  if (Number(rows[0].gen) > Number(gen)) gen = rows[0].gen
}
await readGen()
// After its own endpoint is created, as the kernel's subscriber index (ADR 0105): the generation
// that write produced when it follows the one held, else read again at most once per 50 ms.
let genReadScheduled = false
function endpointCreated(stamped: string | null): void {
  if (stamped !== null && Number(stamped) === Number(gen) + 1) gen = stamped
  else if (!genReadScheduled) {
    genReadScheduled = true
    setTimeout(() => {
      genReadScheduled = false
      void readGen().catch(() => {})
    }, 50).unref()
  }
}

// Ids as the kernel makes them: UUIDv7 for rows, audit entries and events (time-ordered, so each
// index grows at its end on both sides), and a short per-process request id.
const REQUEST_ID_PREFIX = randomBytes(6).toString('base64url')
let requests = 0
const nextRequestId = () => `${REQUEST_ID_PREFIX}-${(++requests).toString(36)}`

// Its audit entries are sealed into the tenant's hash chain as the kernel seals its own: by the
// kernel's AuditSealer, nudged after each commit, on a pool of 2 connections of its own (the
// kernel's background pool). Without it the kernel's sealer sealed the baseline's entries too —
// in the kernel's process, counted against the kernel's writes.
const sealPool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 2, application_name: 'bench-baseline' })
const sealStatements = new Map<string, string>()
const sealSource: TransactionSource = {
  async inOrg<T>(
    orgId: string | null,
    fn: (tx: Tx, status: { orgStatus: string; partnerStatus: string }) => Promise<T>,
    role: DbRole = 'trellis_app',
  ) {
    const c = await sealPool.connect()
    try {
      await c.query(
        `begin; select set_config('role', '${role}', true), set_config('app.tenant_id', '${orgId ?? ''}', true)`,
      )
      const sql = async (text: string, params: unknown[] = []) => {
        let name = sealStatements.get(text)
        if (!name) sealStatements.set(text, (name = `b_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`))
        return (await c.query({ name, text: positional(text), values: params })).rows
      }
      const tx = {
        sql,
        sqlOnce: sql,
        orgs: new Set<string>(),
        useOrg: () => Promise.reject(new Error('not here')),
      } as Tx
      const result = await fn(tx, { orgStatus: 'active', partnerStatus: 'active' })
      await c.query('commit')
      return result
    } catch (err) {
      await c.query('rollback')
      throw err
    } finally {
      c.release()
    }
  },
}
const sealer = new AuditSealer(sealSource)

type Client = pg.PoolClient
type Step = (client: Client) => Promise<unknown>

async function auditedWrite(
  statement: { name: string; text: string },
  writeParams: unknown[] | ((before: unknown[]) => unknown[]),
  audit: { action: string; kind: string; target: string; data: unknown },
  event: { type: string; subject: string; data: unknown } | undefined,
  around: { before?: Step; after?: Step } = {},
): Promise<Record<string, unknown>> {
  const client = await pool.connect()
  try {
    await client.query(
      `begin; select set_config('role', 'trellis_app', true), set_config('app.tenant_id', '${tenantId}', true), trellis_org_block('${tenantId}') as block`,
    )
    const before = around.before ? ((await around.before(client)) as unknown[]) : []
    const { rows } = await client.query({
      ...statement,
      values: [
        ...(typeof writeParams === 'function' ? writeParams(before) : writeParams),
        uuidv7(),
        tenantId,
        new Date().toISOString(),
        userId,
        audit.action,
        audit.kind,
        audit.target,
        JSON.stringify(audit.data),
        nextRequestId(),
        uuidv7(),
        event?.type ?? null,
        event?.subject ?? null,
        JSON.stringify(event?.data ?? null),
        tenantId,
        gen,
        event ? `{${patternsMatching(event.type).join(',')}}` : null,
      ].slice(0, event ? undefined : -7),
    })
    await around.after?.(client)
    await client.query('commit')
    sealer.nudge(tenantId)
    if (!rows[0]) return rows[0]
    const { trellis_pending_events: pending, ...row } = rows[0]
    if (pending?.length) void readGen().catch(() => {})
    return row
  } catch (err) {
    await client.query('rollback')
    throw err
  } finally {
    client.release()
  }
}

const pgArray = (values: string[]) => `{${values.map((v) => `"${v}"`).join(',')}}`

app.post('/baseline/roles', async (request, reply) => {
  const { name, permissions } = request.body as { name: string; permissions: string[] }
  const id = uuidv7()
  const row = await auditedWrite(
    STATEMENTS.role,
    [id, tenantId, name, '', pgArray(permissions)],
    { action: 'role.created', kind: 'role', target: id, data: { name, permissions } },
    { type: 'kernel.role.created', subject: `role/${id}`, data: { roleId: id, name, permissions } },
  )
  return reply.code(201).send(row)
})

app.post('/baseline/api-keys', async (request, reply) => {
  const { name, permissions } = request.body as { name: string; permissions: string[] }
  const id = uuidv7()
  const secret = randomBytes(32).toString('base64url')
  const row = await auditedWrite(
    STATEMENTS.apiKey,
    [id, tenantId, name, createHash('sha256').update(secret).digest('hex'), pgArray(permissions), userId],
    { action: 'api_key.created', kind: 'api_key', target: id, data: { name, permissions, expiresAt: null } },
    { type: 'kernel.api_key.created', subject: `api_key/${id}`, data: { apiKeyId: id, name, permissions } },
  )
  return reply.code(201).send({ ...row, key: `trk_${secret}` })
})

app.post('/baseline/webhooks', async (request, reply) => {
  const { url, types } = request.body as { url: string; types: string[] }
  const id = uuidv7()
  const secret = `whsec_${randomBytes(24).toString('base64')}`
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', secretKey, iv)
  cipher.setAAD(Buffer.from(`webhook-secret:${id}`))
  const sealed = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final(), cipher.getAuthTag()]).toString(
    'base64url',
  )
  const row = await auditedWrite(
    STATEMENTS.webhook,
    [id, tenantId, new URL(url).toString(), pgArray(types), sealed],
    { action: 'webhook.created', kind: 'webhook', target: id, data: { url, types, description: '' } },
    { type: 'kernel.webhook.created', subject: `webhook/${id}`, data: { endpointId: id, url, types } },
  )
  const { subscribers_gen: stamped, ...endpoint } = row as Record<string, unknown>
  endpointCreated(stamped as string | null)
  return reply.code(201).send({ ...endpoint, secret })
})

// PUT /v1/users/:id/role: the member and the role read in one statement, the membership updated
// with its audit entry and event, the member's sessions there ended; the answer is the member
// read before, with the new role.
app.put('/baseline/users/:id/role', async (request) => {
  const { id } = request.params as { id: string }
  const { role } = request.body as { role: string }
  let member: Record<string, unknown> = {}
  let target: { id: string; name: string } = { id: '', name: '' }
  await auditedWrite(
    STATEMENTS.membership,
    () => [target.id, id],
    { action: 'membership.role_changed', kind: 'user', target: id, data: { from: role, to: role } },
    { type: 'kernel.membership.role_changed', subject: `user/${id}`, data: { userId: id, from: role, to: role } },
    {
      before: async (client) => {
        const [row] = (await client.query({ ...MEMBER_AND_ROLE, values: [id, role, tenantId] })).rows
        member = row.member
        target = row.role
        return []
      },
      after: (client) => client.query({ ...END_SESSIONS, values: [tenantId, id] }),
    },
  )
  return { ...member, role: target.name }
})

// PATCH /v1/installations/:id: the installation read, then updated with its audit entry; the
// update returns the row whole (its history and pending upgrade too), which the kernel's answer
// shows.
app.patch('/baseline/installations/:id', async (request) => {
  const { id } = request.params as { id: string }
  const { status } = request.body as { status: string }
  return auditedWrite(
    STATEMENTS.installation,
    (before) => {
      const current = before[0] as { settings: unknown; secrets_enc: string | null; secret_names: string[] }
      return [JSON.stringify(current.settings), current.secrets_enc, pgArray(current.secret_names), status, id]
    },
    {
      action: 'plugin.settings.updated',
      kind: 'plugin_installation',
      target: id,
      data: { plugin: '@bench/notes', settings: [], secrets: [] },
    },
    undefined,
    { before: async (client) => [(await client.query({ ...INSTALLATION, values: [id] })).rows[0]] },
  )
})

const url = await app.listen({ port: 0, host: '127.0.0.1' })
process.stdout.write(`${JSON.stringify({ url, pid: process.pid })}\n`)
process.on('SIGTERM', async () => {
  await app.close()
  await sealer.close()
  await sealPool.end()
  await pool.end()
  process.exit(0)
})
