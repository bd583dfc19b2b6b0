import t from 'tap'
import pg from 'pg'
import { createTenantWithAdmin, startTestKernel } from './helpers/test-kernel.js'

/** A promise held open until `open()` is called: a transaction parked on it keeps its connection. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void
  const wait = new Promise<void>((r) => {
    open = r
  })
  return { wait, open }
}

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
    const held = gate()
    let parked = 0
    const holders = Array.from({ length: POOL }, () =>
      db.inOrg(a.orgId, async () => {
        parked++
        await held.wait
      }),
    )
    while (parked < POOL) await new Promise((r) => setImmediate(r))
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
      held.open()
      await Promise.all(holders)
    }
  })

  t.test('a request is served while every background connection is taken', async (t) => {
    const held = gate()
    let parked = 0
    // More background transactions than its pool has: the extra ones wait in the background pool.
    const holders = Array.from({ length: 4 }, () =>
      db.background.inOrg(null, async () => {
        parked++
        await held.wait
      }),
    )
    while (parked < 2) await new Promise((r) => setImmediate(r))
    try {
      const r = await k.req('POST', '/v1/roles', {
        token: a.token,
        body: { name: 'busy-background', permissions: ['users.read'] },
      })
      t.equal(r.status, 201, 'the audited write is answered')
      t.equal(parked, 2, 'the background pool still holds only its own two connections')
    } finally {
      held.open()
      await Promise.all(holders)
    }
  })
})
