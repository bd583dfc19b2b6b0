// ADR 0112: a transaction that refuses a suspended organisation sends its `begin`, scoping and
// check with its first statement. What a caller sees must be what it saw when the status was read
// back first: a suspended tenant or partner refused with its own error and nothing written,
// whatever the body does with the refusal; an active one served, in one round trip when its only
// statement carries the commit.
import pg from 'pg'
import t from 'tap'
import { auditedWrite } from '../src/audit/audited-write.js'
import { orgTx } from '../src/kernel-context.js'
import type { Tx } from '../src/db/database.js'
import { DB_KINDS, createTenantWithAdmin, startTestKernel } from './helpers/test-kernel.js'

/**
 * Watches what pg connections of this process send, per connection: Syncs, simple queries and the
 * statements bound (background work — the sealer, the dispatcher — may use other connections).
 */
function wire() {
  const proto = (pg as unknown as { Connection: { prototype: Record<string, (...a: unknown[]) => unknown> } })
    .Connection.prototype
  const seen = new Map<object, { syncs: number; simple: string[]; bound: string[] }>()
  const of = (c: object) => seen.get(c) ?? seen.set(c, { syncs: 0, simple: [], bound: [] }).get(c)!
  const { sync, query, bind } = proto
  proto.sync = function (this: object, ...a: unknown[]) {
    of(this).syncs++
    return sync!.apply(this, a)
  }
  proto.query = function (this: object, ...a: unknown[]) {
    of(this).simple.push(String(a[0]))
    return query!.apply(this, a)
  }
  proto.bind = function (this: object, ...a: unknown[]) {
    of(this).bound.push(String((a[0] as { statement?: string }).statement ?? ''))
    return bind!.apply(this, a)
  }
  return {
    /** What the connections that opened a refusing transaction sent. */
    opening: () => [...seen.values()].filter((c) => c.bound.includes('trellis_scope_active')),
    restore: () => Object.assign(proto, { sync, query, bind }),
  }
}

for (const kind of DB_KINDS) {
  t.test(`transactions that refuse a suspended organisation, on ${kind}`, async (t) => {
    const k = await startTestKernel(t, kind)
    const ctx = k.kernel.ctx
    const a = await createTenantWithAdmin(k, `ao-${kind}`)
    const org = a.orgId as string
    let n = 0
    const role = () => {
      const id = `01900000-0000-7000-8000-${String(++n).padStart(12, '0')}`
      return {
        id,
        write: (tx: Tx, last = true) =>
          auditedWrite(tx, {
            write: {
              sql: 'insert into roles (id, tenant_id, name, description, permissions) values (?::uuid, ?::uuid, ?, ?, ?::text[]) returning id',
              params: [id, org, `r${n}`, '', '{users.read}'],
            },
            auditOrg: org,
            audit: { actor: { kind: 'user', id: 'tester' }, action: 'role.created', target: { kind: 'role', id } },
            last,
          }),
      }
    }
    const written = async (id: string) =>
      (await k.ownerSql('select (select count(*) from roles where id = ?::uuid)::int as n', [id]))[0].n as number
    const setStatus = (table: 'tenants' | 'partners', id: string, status: string) =>
      k.ownerSql(`update ${table} set status = ? where id = ?::uuid`, [status, id])

    t.test('an active tenant: the write is served, in one round trip on PostgreSQL', async (t) => {
      const r = role()
      const w = wire()
      let rows: unknown[]
      try {
        rows = await orgTx(ctx, org, (tx) => r.write(tx))
      } finally {
        w.restore()
      }
      t.same(rows, [{ id: r.id }])
      t.equal(await written(r.id), 1, 'written')
      // PGlite's socket speaks the same protocol; the count is asserted where the network is real.
      if (kind === 'postgres') {
        const [conn, ...others] = w.opening()
        t.equal(others.length, 0, 'one transaction opened')
        t.equal(conn?.syncs, 1, 'begin, scoping, check, write and commit: one Sync')
        t.same(conn?.simple, [], 'no simple-protocol query (no separate begin or commit)')
        t.same(conn?.bound.length, 4, 'four statements bound: begin, the scoping, the write, commit')
      }
    })

    t.test('a suspended tenant: refused with its error, nothing written, the connection reusable', async (t) => {
      await setStatus('tenants', org, 'suspended')
      t.teardown(() => setStatus('tenants', org, 'active'))
      const r = role()
      await t.rejects(
        orgTx(ctx, org, (tx) => r.write(tx)),
        { code: 'KRN_ERR_TENANT_SUSPENDED' },
      )
      const r2 = role()
      await t.rejects(
        orgTx(ctx, org, (tx) => r2.write(tx, false)),
        { code: 'KRN_ERR_TENANT_SUSPENDED' },
        'a write that is not its last',
      )
      const r3 = role()
      await t.rejects(
        orgTx(ctx, org, async (tx) => {
          await r3.write(tx).catch(() => undefined)
          return 'the body went on'
        }),
        { code: 'KRN_ERR_TENANT_SUSPENDED' },
        'a body that catches the refusal is refused all the same',
      )
      let ran = false
      await t.rejects(
        orgTx(ctx, org, async () => {
          ran = true
          return 'no statement'
        }),
        { code: 'KRN_ERR_TENANT_SUSPENDED' },
        'a body that sends no statement is refused after it',
      )
      t.ok(ran)
      ran = false
      await t.rejects(
        orgTx(
          ctx,
          org,
          async () => {
            ran = true
          },
          { statusFirst: true },
        ),
        { code: 'KRN_ERR_TENANT_SUSPENDED' },
        'with statusFirst (workflow steps, AI work) the status is read before the body runs',
      )
      t.notOk(ran, 'and the body did not run')
      for (const x of [r, r2, r3]) t.equal(await written(x.id), 0, 'nothing written')
      t.equal(
        await orgTx(ctx, org, async (tx) => (await tx.sql<{ n: number }>('select 1 as n'))[0]!.n, {
          allowSuspended: true,
        }),
        1,
        'a transaction that allows a suspended tenant still runs',
      )
    })

    t.test('a suspended partner: its tenants are refused with the partner error', async (t) => {
      const partner = '01900000-0000-7000-8000-00000000beef'
      await k.ownerSql('insert into partners (id, name, slug, status) values (?::uuid, ?, ?, ?)', [
        partner,
        `p-${kind}`,
        `p-${kind}`,
        'suspended',
      ])
      await k.ownerSql('update tenants set partner_id = ?::uuid where id = ?::uuid', [partner, org])
      t.teardown(() => k.ownerSql('update tenants set partner_id = null where id = ?::uuid', [org]))
      const r = role()
      await t.rejects(
        orgTx(ctx, org, (tx) => r.write(tx)),
        { code: 'KRN_ERR_PARTNER_SUSPENDED' },
      )
      t.equal(await written(r.id), 0)
    })

    t.test('active again: served at once, on the same pool', async (t) => {
      const r = role()
      t.same(await orgTx(ctx, org, (tx) => r.write(tx)), [{ id: r.id }])
      t.same(await orgTx(ctx, org, async () => 'no statement'), 'no statement', 'a body without statements')
    })
  })
}
