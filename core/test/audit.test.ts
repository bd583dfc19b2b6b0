import t from 'tap'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { DB_KINDS, startTestKernel, createTenantWithAdmin } from './helpers/test-kernel.js'
import { auditAttacks } from './helpers/audit-attacks.js'
import { verifyChain } from '../src/audit/verify.js'

const CLI = fileURLToPath(new URL('../../platform/bin/trellis.js', import.meta.url))

for (const kind of DB_KINDS) {
  t.test(`audit chain on ${kind}`, async (t) => {
    const k = await startTestKernel(t, kind)
    const db = k.kernel.ctx.db
    const { tamper, busyTenant } = auditAttacks(t, k)

    t.test('concurrent writers are chained in order without gaps', async (t) => {
      const s = await createTenantWithAdmin(k, `busy-${kind}`)
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          k.req('POST', '/v1/roles', { token: s.token, body: { name: `c${i}`, permissions: ['users.read'] } }),
        ),
      )
      t.ok(results.every((r) => r.status === 201))
      await k.kernel.ctx.sealer.flush()
      const report = await verifyChain(db, s.orgId)
      t.equal(report.ok, true)
      t.equal(report.unsealed, 0)
      t.ok(report.entries >= 42, `${report.entries} entries`)
      const seqs = (
        await k.ownerSql('select seq::int as seq from audit_log where tenant_id = ?::uuid order by seq', [s.orgId])
      ).map((r) => r.seq)
      t.same(
        seqs,
        Array.from({ length: seqs.length }, (_, i) => i + 1),
      )
    })

    t.test('an altered entry is named as the first broken link', async (t) => {
      const s = await busyTenant('alter')
      t.equal((await verifyChain(db, s.orgId)).ok, true)
      await t.rejects(
        k.ownerSql(`update audit_log set action = 'x' where tenant_id = ?::uuid and seq = 3`, [s.orgId]),
        /append-only/,
        'the guard refuses even the owner',
      )
      await t.rejects(
        k.ownerSql(`delete from audit_log where tenant_id = ?::uuid and seq = 3`, [s.orgId]),
        /append-only/,
      )
      const [victim] = await k.ownerSql('select id from audit_log where tenant_id = ?::uuid and seq = 3', [s.orgId])
      await tamper(`update audit_log set data = '{"name":"innocent"}' where tenant_id = ?::uuid and seq = 3`, [s.orgId])
      const report = await verifyChain(db, s.orgId)
      t.equal(report.ok, false)
      t.equal(report.brokenAt!.seq, '3')
      t.equal(report.brokenAt!.id, victim.id)
      t.match(report.brokenAt!.reason, /altered/)
    })

    t.test('a deleted entry breaks the chain where it was', async (t) => {
      const s = await busyTenant('delete')
      await tamper('delete from audit_log where tenant_id = ?::uuid and seq = 4', [s.orgId])
      const report = await verifyChain(db, s.orgId)
      t.equal(report.ok, false)
      t.equal(report.brokenAt!.seq, '5')
      t.match(report.brokenAt!.reason, /deleted/)
      // Re-numbering to hide the gap does not help.
      await tamper('update audit_log set seq = seq - 1 where tenant_id = ?::uuid and seq > 4', [s.orgId])
      const again = await verifyChain(db, s.orgId)
      t.equal(again.ok, false)
      t.equal(again.brokenAt!.seq, '4')
    })

    t.test('re-ordered entries are caught', async (t) => {
      const s = await busyTenant('reorder')
      for (const [from, to] of [
        [3, -3],
        [4, 3],
        [-3, 4],
      ])
        await tamper('update audit_log set seq = ? where tenant_id = ?::uuid and seq = ?', [to, s.orgId, from])
      const report = await verifyChain(db, s.orgId)
      t.equal(report.ok, false)
      t.equal(report.brokenAt!.seq, '3')
    })

    if (kind === 'postgres') {
      t.test('`trellis audit verify` exits 0 on an intact chain and 1 naming the broken entry', async (t) => {
        const s = await busyTenant('cli', 2)
        const env = {
          ...process.env,
          DATABASE_URL: k.databaseUrl,
          TRELLIS_SECRET_KEY: k.kernel.ctx.config.secretKey.toString('hex'),
          LOG_LEVEL: 'silent',
        }
        const ok = spawnSync(process.execPath, [CLI, 'audit', 'verify', '--tenant', s.orgId], { env, encoding: 'utf8' })
        t.equal(ok.status, 0, ok.stderr)
        t.match(ok.stdout, new RegExp(`ok\\s+${s.orgId}\\s+\\d+ entries`))
        const [victim] = await k.ownerSql('select id from audit_log where tenant_id = ?::uuid and seq = 2', [s.orgId])
        await tamper(`update audit_log set actor_id = 'someone-else' where id = ?::uuid`, [victim.id])
        const all = spawnSync(process.execPath, [CLI, 'audit', 'verify'], { env, encoding: 'utf8' })
        t.equal(all.status, 1)
        t.match(all.stdout, new RegExp(`BROKEN\\s+${s.orgId}\\s+at entry 2 \\(${victim.id}\\)`))
        t.match(all.stdout, /ok\s+platform/)
      })
    }

    t.test('GET /v1/audit filters by actor, action and time, and pages with a cursor', async (t) => {
      const s = await busyTenant('filters', 3)
      const me = (await k.req('GET', '/v1/me', { token: s.token })).body
      const mine = await k.req('GET', `/v1/audit?actor=${me.user.id}&action=role.created`, { token: s.token })
      t.equal(mine.body.items.length, 3)
      t.ok(
        mine.body.items.every((e: any) => e.action === 'role.created' && e.actor.id === me.user.id && e.seq !== null),
      )
      t.same(
        mine.body.items.map((e: any) => e.data.name),
        ['r2', 'r1', 'r0'],
        'newest first',
      )
      const prefix = await k.req('GET', '/v1/audit?action=role.', { token: s.token })
      t.equal(prefix.body.items.length, 3)
      const p1 = await k.req('GET', '/v1/audit?limit=2', { token: s.token })
      t.equal(p1.body.items.length, 2)
      t.type(p1.body.nextCursor, 'string')
      const p2 = await k.req('GET', `/v1/audit?limit=2&cursor=${p1.body.nextCursor}`, { token: s.token })
      t.notOk(
        p2.body.items.some((e: any) => p1.body.items.some((x: any) => x.id === e.id)),
        'no overlap between pages',
      )
      const future = await k.req(
        'GET',
        `/v1/audit?from=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`,
        { token: s.token },
      )
      t.equal(future.body.items.length, 0)
      const past = await k.req(
        'GET',
        `/v1/audit?to=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}&action=role.created`,
        { token: s.token },
      )
      t.equal(past.body.items.length, 3)
      for (const evil of ["' or 1=1 --", "role.created'; delete from audit_log; --", '%', '\\']) {
        const r = await k.req('GET', `/v1/audit?action=${encodeURIComponent(evil)}`, { token: s.token })
        t.equal(r.status, 200)
        t.equal(r.body.items.length, 0, `no match for ${evil}`)
      }
      const bad = await k.req('GET', `/v1/audit?cursor=${encodeURIComponent('eyJrIjoiJyBvciAxPTEgLS0ifQ')}`, {
        token: s.token,
      })
      t.equal(bad.body.code, 'KRN_ERR_INVALID_CURSOR')
      t.equal(
        (await k.req('GET', `/v1/audit?cursor=not-base64!!`, { token: s.token })).body.code,
        'KRN_ERR_INVALID_CURSOR',
      )
      t.equal(
        (await k.req('GET', `/v1/audit?from=yesterday`, { token: s.token })).body.code,
        'KRN_ERR_VALIDATION_FAILED',
      )
      t.equal((await verifyChain(db, s.orgId)).ok, true, 'reading changed nothing')
    })
  })
}
