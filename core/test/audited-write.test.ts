import t from 'tap'
import type { Tx } from '../src/db/database.js'
import { auditedWrite } from '../src/audit/audited-write.js'
import { kernelEvent } from '../src/events/outbox.js'
import { DB_KINDS, createTenantWithAdmin, startTestKernel } from './helpers/test-kernel.js'

/** A transaction that counts the statements it is sent. */
function counting(tx: Tx): { tx: Tx; statements: () => number } {
  let n = 0
  const counted: Tx = {
    ...tx,
    orgs: tx.orgs,
    sql: (text, params) => {
      n++
      return tx.sql(text, params)
    },
    sqlOnce: (text, params) => {
      n++
      return tx.sqlOnce(text, params)
    },
  }
  return { tx: counted, statements: () => n }
}

// The one audited write path (ADR 0019): the row, its audit entry and its event in one
// statement; nothing else written when the row write matched nothing.
for (const kind of DB_KINDS) {
  t.test(`the audited write path on ${kind}`, async (t) => {
    const k = await startTestKernel(t, kind)
    const a = await createTenantWithAdmin(k, `aw-${kind}`)
    const db = k.kernel.ctx.db
    const actor = { kind: 'user' as const, id: 'tester' }
    const count = async (sql: string, params: unknown[]) => (await k.ownerSql(sql, params))[0].n as number

    t.test('row, audit entry and event: one statement, all committed together', async (t) => {
      const id = '01900000-0000-7000-8000-000000000001'
      const seen = await db.inOrg(a.orgId, async (raw) => {
        const { tx, statements } = counting(raw)
        const rows = await auditedWrite<{ id: string }>(tx, {
          write: {
            sql: 'insert into roles (id, tenant_id, name, description, permissions) values (?::uuid, ?::uuid, ?, ?, ?::text[]) returning id',
            params: [id, a.orgId, 'fused', '', '{users.read}'],
          },
          auditOrg: a.orgId,
          audit: { actor, action: 'role.created', target: { kind: 'role', id } },
          events: [kernelEvent('kernel.role.created', `role/${id}`, { roleId: id, name: 'fused', permissions: [] })],
        })
        return { rows, statements: statements() }
      })
      t.same(seen.rows, [{ id }], 'the write returns its rows')
      t.equal(seen.statements, 1, 'one statement for the row, the audit entry and the event')
      t.equal(
        await count("select count(*)::int as n from audit_log where target_id = ? and action = 'role.created'", [id]),
        1,
      )
      t.equal(
        await count("select count(*)::int as n from events where subject = ? and type = 'kernel.role.created'", [
          `role/${id}`,
        ]),
        1,
      )
    })

    t.test('a write that matches no row leaves no audit entry and no event', async (t) => {
      const missing = '01900000-0000-7000-8000-0000000000ff'
      const rows = await db.inOrg(a.orgId, (tx) =>
        auditedWrite(tx, {
          write: { sql: 'update api_keys set revoked_at = now() where id = ?::uuid returning id', params: [missing] },
          auditOrg: a.orgId,
          audit: { actor, action: 'api_key.revoked', target: { kind: 'api_key', id: missing } },
          events: [kernelEvent('kernel.api_key.revoked', `api_key/${missing}`, { apiKeyId: missing })],
        }),
      )
      t.same(rows, [])
      t.equal(await count('select count(*)::int as n from audit_log where target_id = ?', [missing]), 0)
      t.equal(await count('select count(*)::int as n from events where subject = ?', [`api_key/${missing}`]), 0)
    })

    t.test('a refused name through the API writes nothing either (409, no audit entry, no event)', async (t) => {
      const body = { name: 'twice', permissions: ['users.read'] }
      t.equal((await k.req('POST', '/v1/roles', { token: a.token, body })).status, 201)
      const again = await k.req('POST', '/v1/roles', { token: a.token, body })
      t.equal(again.status, 409)
      t.equal(again.body.code, 'KRN_ERR_CONFLICT')
      const audited =
        "select count(*)::int as n from audit_log where tenant_id = ?::uuid and action = 'role.created' and data->>'name' = 'twice'"
      t.equal(await count(audited, [a.orgId]), 1, 'one audit entry: the first, successful write')
      const events =
        "select count(*)::int as n from events where tenant_id = ?::uuid and type = 'kernel.role.created' and data->>'name' = 'twice'"
      t.equal(await count(events, [a.orgId]), 1, 'one event: the first, successful write')
    })

    // ADR 0111: a transaction's last write carries its commit.
    const roleWrite = (id: string, name: string, last: boolean) => (tx: Tx) =>
      auditedWrite(tx, {
        write: {
          sql: 'insert into roles (id, tenant_id, name, description, permissions) values (?::uuid, ?::uuid, ?, ?, ?::text[]) returning id',
          params: [id, a.orgId, name, '', '{users.read}'],
        },
        auditOrg: a.orgId,
        audit: { actor, action: 'role.created', target: { kind: 'role', id } },
        events: [kernelEvent('kernel.role.created', `role/${id}`, { roleId: id, name, permissions: [] })],
        last,
      })
    const written = async (id: string) => ({
      roles: await count('select count(*)::int as n from roles where id = ?::uuid', [id]),
      audit: await count("select count(*)::int as n from audit_log where target_id = ? and action = 'role.created'", [
        id,
      ]),
      events: await count('select count(*)::int as n from events where subject = ?', [`role/${id}`]),
    })

    t.test(
      'the last write commits with its statement: nothing runs after it, an error after it undoes nothing',
      async (t) => {
        const id = '01900000-0000-7000-8000-000000000011'
        const failed = await db
          .inOrg(a.orgId, async (tx) => {
            await roleWrite(id, 'last', true)(tx)
            await t.rejects(tx.sql('select 1'), /committed with its last statement/, 'the transaction takes no more')
            throw new Error('after the last write')
          })
          .catch((err: Error) => err)
        t.equal(failed.message, 'after the last write')
        t.same(await written(id), { roles: 1, audit: 1, events: 1 }, 'the row, its audit entry and its event committed')
        const other = '01900000-0000-7000-8000-000000000012'
        await t.rejects(
          db.inOrg(a.orgId, async (tx) => {
            await roleWrite(other, 'not-last', false)(tx)
            throw new Error('after a write that is not the last')
          }),
        )
        t.same(
          await written(other),
          { roles: 0, audit: 0, events: 0 },
          'a write without its commit rolls back as before',
        )
        t.same(
          await db.inOrg(a.orgId, (tx) => tx.sql('select 1 as one')),
          [{ one: 1 }],
          'the connection serves the next',
        )
      },
    )

    t.test('a failed last write commits nothing, nor what came before it in its transaction', async (t) => {
      const before = '01900000-0000-7000-8000-000000000013'
      const taken = '01900000-0000-7000-8000-000000000014'
      await db.inOrg(a.orgId, roleWrite(taken, 'taken', false))
      await t.rejects(
        db.inOrg(a.orgId, async (tx) => {
          await roleWrite(before, 'before', false)(tx)
          await roleWrite(taken, 'taken-id', true)(tx)
        }),
        /duplicate key|unique/,
      )
      t.same(await written(before), { roles: 0, audit: 0, events: 0 }, 'the earlier write rolled back')
      t.equal(await count("select count(*)::int as n from roles where name = 'taken-id'", []), 0)
      t.same(await db.inOrg(a.orgId, (tx) => tx.sql('select 1 as one')), [{ one: 1 }], 'the connection serves the next')
    })
  })
}
