import t from 'tap'
import pg from 'pg'
import { createTenantWithAdmin, startTestKernel } from './helpers/test-kernel.js'
import { parkTransactions } from './helpers/parked-transactions.js'

// ADR 0055: background work (audit sealing, event dispatch) takes its connections from a pool of
// its own, so neither side waits for a connection the other holds. PostgreSQL only: PGlite has
// one connection, which both share by design.
t.test('background work and requests draw on separate pools (postgres)', async (t) => {
  const POOL = 2
  const k = await startTestKernel(t, 'postgres', { poolMax: POOL })
  const a = await createTenantWithAdmin(k, 'bgpool')
  const db = k.kernel.ctx.db
  // Read what was written without taking a connection from either of the kernel's pools.
  const reader = new pg.Client({ connectionString: k.databaseUrl })
  await reader.connect()
  t.teardown(() => reader.end())
  const unsealed = async (orgId: string) =>
    Number(
      (await reader.query('select count(*)::int as n from audit_log where tenant_id = $1 and hash is null', [orgId]))
        .rows[0].n,
    )

  t.test('the sealer and the dispatcher work while every request connection is taken', async (t) => {
    const created = await k.req('POST', '/v1/roles', {
      token: a.token,
      body: { name: 'held-pool', permissions: ['users.read'] },
    })
    t.equal(created.status, 201)
    // Every request connection parked in an open transaction.
    const held = await parkTransactions(db, a.orgId, POOL)
    try {
      await k.kernel.ctx.sealer.sealTenant(a.orgId)
      t.equal(await unsealed(a.orgId), 0, 'the audit entries are sealed while requests hold every connection')
      k.kernel.ctx.events.nudge()
      await k.kernel.ctx.events.drain()
      const [event] = (
        await reader.query("select processed_at from events where tenant_id = $1 and type = 'kernel.role.created'", [
          a.orgId,
        ])
      ).rows
      t.ok(event?.processed_at, 'the role event is dispatched and processed meanwhile')
    } finally {
      await held.release()
    }
  })

  t.test('a request is served while every background connection is taken', async (t) => {
    // More background transactions than its pool has: the extra ones wait in the background pool.
    const held = await parkTransactions(db.background, null, 4, 2)
    try {
      const r = await k.req('POST', '/v1/roles', {
        token: a.token,
        body: { name: 'busy-background', permissions: ['users.read'] },
      })
      t.equal(r.status, 201, 'the audited write is answered')
      t.equal(held.count(), 2, 'the background pool still holds only its own two connections')
    } finally {
      await held.release()
    }
  })
})
