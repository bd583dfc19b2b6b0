// Baselines in their own process: bare Fastify + pg making the kernel's audited writes with the
// kernel's round trips and SQL — one simple-protocol round trip for `begin`, the role drop, the
// tenant and the organisation-status check; one named prepared statement writing the row, its
// audit entry and its outbox event (a data-modifying CTE); `commit` — and Fastify's hello world.
// No authentication, no validation, no hash-chain sealing or event dispatch afterwards: what is
// left between the two is the kernel's own overhead. Uses the schema the kernel created in the
// same database.
import Fastify from 'fastify'
import pg from 'pg'
import { createCipheriv, createHash, randomBytes, randomUUID } from 'node:crypto'

const tenantId = process.env.BENCH_TENANT_ID!
const userId = process.env.BENCH_USER_ID!
if (!/^[0-9a-f-]{36}$/.test(tenantId) || !/^[0-9a-f-]{36}$/.test(userId))
  throw new Error('BENCH_TENANT_ID/BENCH_USER_ID')
const secretKey = randomBytes(32)
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 })
const app = Fastify()
app.get('/hello', async () => ({ hello: 'world' }))

const AUDIT = `insert into audit_log (id, tenant_id, at, actor_kind, actor_id, action, target_kind, target_id, data, ip, request_id)
  select * from (values ($A::uuid, $T::uuid, $AT::timestamptz, 'user', $U, $ACTION, $KIND, $TARGET, $DATA::jsonb, '127.0.0.1', $REQ)) v where exists (select 1 from w)`
const EVENT = `insert into events (id, type, source, subject, data)
  select * from (values ($E::uuid, $ETYPE, 'trellis/kernel', $SUBJECT, $EDATA::jsonb)) v where exists (select 1 from w)`

/** One fused statement: the row write (`w`), its audit entry and its event, numbered after the write's own parameters. */
function fused(name: string, write: string, writeParams: number): { name: string; text: string } {
  let n = writeParams
  const names = ['A', 'T', 'AT', 'U', 'ACTION', 'KIND', 'TARGET', 'DATA', 'REQ', 'E', 'ETYPE', 'SUBJECT', 'EDATA']
  const at = Object.fromEntries(names.map((x) => [x, ++n]))
  const sub = (s: string) => s.replace(/\$([A-Z]+)/g, (_, x: string) => `$${at[x]}`)
  return { name, text: `with w as (${write}), a as (${sub(AUDIT)}), e as (${sub(EVENT)}) select * from w` }
}

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
  webhook: fused(
    'baseline_webhook',
    `insert into webhook_endpoints (id, tenant_id, url, types, description, secret_enc) values ($1::uuid, $2::uuid, $3, $4::text[], '', $5)
     returning id, url, types, description, status, disabled_reason, previous_secret_expires_at, created_at, updated_at`,
    5,
  ),
}

async function auditedWrite(
  statement: { name: string; text: string },
  writeParams: unknown[],
  audit: { action: string; kind: string; target: string; data: unknown },
  event: { type: string; subject: string; data: unknown },
): Promise<Record<string, unknown>> {
  const client = await pool.connect()
  try {
    await client.query(
      `begin; select set_config('role', 'trellis_app', true), set_config('app.tenant_id', '${tenantId}', true), trellis_org_block('${tenantId}') as block`,
    )
    const { rows } = await client.query({
      ...statement,
      values: [
        ...writeParams,
        randomUUID(),
        tenantId,
        new Date().toISOString(),
        userId,
        audit.action,
        audit.kind,
        audit.target,
        JSON.stringify(audit.data),
        randomUUID(),
        randomUUID(),
        event.type,
        event.subject,
        JSON.stringify(event.data),
      ],
    })
    await client.query('commit')
    return rows[0]
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
  const id = randomUUID()
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
  const id = randomUUID()
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
  const id = randomUUID()
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
  return reply.code(201).send({ ...row, secret })
})

const url = await app.listen({ port: 0, host: '127.0.0.1' })
process.stdout.write(`${JSON.stringify({ url })}\n`)
process.on('SIGTERM', async () => {
  await app.close()
  await pool.end()
  process.exit(0)
})
