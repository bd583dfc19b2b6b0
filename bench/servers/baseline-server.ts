// Baselines in their own process: bare Fastify + pg doing the kernel's audited write (the
// business row and the audit row in one transaction, set_config, under RLS), and Fastify's
// hello world. Uses the schema the kernel created in the same database.
import Fastify from 'fastify'
import pg from 'pg'
import { randomUUID } from 'node:crypto'

const tenantId = process.env.BENCH_TENANT_ID!
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 })
const app = Fastify()
app.get('/hello', async () => ({ hello: 'world' }))
app.post('/baseline/roles', async (request, reply) => {
  const body = request.body as { name: string; permissions: string[] }
  const client = await pool.connect()
  try {
    await client.query('begin')
    await client.query(`select set_config('role', 'trellis_app', true), set_config('app.tenant_id', $1, true)`, [
      tenantId,
    ])
    const id = randomUUID()
    const { rows } = await client.query(
      'insert into roles (id, tenant_id, name, description, permissions) values ($1, $2, $3, $4, $5) returning *',
      [id, tenantId, body.name, '', body.permissions],
    )
    await client.query(
      `insert into audit_log (id, tenant_id, at, actor_kind, actor_id, action, target_kind, target_id, data) values ($1, $2, now(), 'user', 'bench', 'role.created', 'role', $3, $4)`,
      [randomUUID(), tenantId, id, JSON.stringify({ name: body.name, permissions: body.permissions })],
    )
    await client.query('commit')
    return reply.code(201).send(rows[0])
  } catch (err) {
    await client.query('rollback')
    throw err
  } finally {
    client.release()
  }
})
const url = await app.listen({ port: 0, host: '127.0.0.1' })
process.stdout.write(`${JSON.stringify({ url })}\n`)
process.on('SIGTERM', async () => {
  await app.close()
  await pool.end()
  process.exit(0)
})
