// Refused host calls: checked for capability before their arguments, audited once per kind with
// a count, stored safely whatever text they carry; and an invocation a lost sandbox worker
// took down with it (a bystander) runs again once instead of failing.
import t from 'tap'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { buildPlugin } from '@trellis/plugin-sdk'
import { DB_KINDS, startTestKernel, createTenantWithAdmin } from './helpers/test-kernel.js'
import { eventually } from './helpers/receiver.js'
import { registerVersion } from './helpers/plugin-versions.js'
import { verifyChain } from '../src/audit/verify.js'

const dir = join(import.meta.dirname, 'fixtures', 'plugins', 'hog')
const manifest = JSON.parse(await readFile(join(dir, 'trellis.plugin.json'), 'utf8'))
const b = await buildPlugin({ dir, write: false })
const hog = { manifest, code: b.code, sourceMap: b.sourceMap, sha256: b.sha256 }

for (const kind of DB_KINDS) {
  t.test(`plugin host guards on ${kind}`, async (t) => {
    // Two workers: the invocation runs again on the one that survived.
    const k = await startTestKernel(t, kind, { plugins: { sandboxWorkers: 2 } })
    const host = k.kernel.ctx.plugins
    await registerVersion(k, hog)
    const a = await createTenantWithAdmin(k, `guard-a-${kind}`)
    const r = await k.req('POST', '/v1/installations', {
      token: a.token,
      body: { plugin: '@acme/hog', version: '1.0.0', capabilities: hog.manifest.capabilities },
    })
    t.equal(r.status, 201, JSON.stringify(r.body))
    const denials = (since: string) =>
      k.ownerSql(
        `select actor_id, data from audit_log where tenant_id = ? and action = 'plugin.capability.denied' and data -> 'entry' ->> 'name' = ? order by id`,
        [a.orgId, since],
      )

    await t.test('repeated refusals of one invocation are one audit entry each, with a count', async (t) => {
      const res = await k.req('GET', '/v1/x/hog/probe', { token: a.token })
      t.equal(res.status, 200, JSON.stringify(res.body))
      t.same(res.body.codes, ['KRN_ERR_CAPABILITY_DENIED'])
      const rows = await denials('GET /probe')
      t.equal(rows.length, 3, '150 refusals of three distinct calls: three entries')
      t.same(rows.map((x: any) => x.data.target).sort(), ['key-0', 'key-1', 'key-2'])
      t.equal(
        rows.reduce((n: number, x: any) => n + x.data.count, 0),
        150,
        'the counts add up to every refusal',
      )
      t.equal(rows[0].actor_id, '@acme/hog')
    })

    await t.test('a call without the capability is refused as such, malformed or not, and audited', async (t) => {
      const res = await k.req('GET', '/v1/x/hog/malformed', { token: a.token })
      t.equal(res.status, 200, JSON.stringify(res.body))
      t.same(res.body, {
        secrets: 'KRN_ERR_CAPABILITY_DENIED',
        emit: 'KRN_ERR_CAPABILITY_DENIED',
        call: 'KRN_ERR_CAPABILITY_DENIED',
      })
      const ops = (await denials('GET /malformed')).map((x: any) => x.data.op).sort()
      t.same(ops, ['events.emit', 'plugins.call', 'secrets.get'], 'each refusal is in the audit log')
    })

    await t.test(
      'a refusal whose arguments carry NUL or a lone surrogate is audited, stored escaped, and the chain verifies',
      async (t) => {
        const res = await k.req('GET', '/v1/x/hog/nul', { token: a.token })
        t.equal(res.status, 200, JSON.stringify(res.body))
        t.same(res.body, { emit: 'KRN_ERR_CAPABILITY_DENIED' })
        const rows = await denials('GET /nul')
        t.equal(rows.length, 1, 'the refusal was not lost')
        t.equal(
          rows[0].data.target,
          'hog.\\u0000hidden.\\ud800done',
          'NUL and the lone surrogate are stored as their escapes',
        )
        const report = await eventually(async () => {
          const rep = await verifyChain(k.kernel.ctx.db, a.orgId)
          return rep.unsealed === 0 && rep.entries > 0 && rep
        })
        t.equal(report.ok, true, JSON.stringify(report.brokenAt))
      },
    )

    await t.test(
      'an invocation whose worker was lost under it (a bystander) runs again once and commits once',
      async (t) => {
        const sandbox = await host.sandbox()
        const data = host.data
        const insert = data.insert.bind(data)
        let killed = 0
        data.insert = async (...args: Parameters<typeof insert>) => {
          const out = await insert(...args)
          if (killed === 0) {
            // The worker running this invocation dies while the invocation awaits this call.
            const stats = await sandbox.stats({ refresh: true })
            for (const w of stats.workers.filter((x) => x.inflight > 0)) {
              process.kill(w.pid, 'SIGKILL')
              killed++
              await eventually(async () => {
                try {
                  process.kill(w.pid, 0)
                  return false
                } catch {
                  return true
                }
              })
            }
          }
          return out
        }
        t.teardown(() => {
          data.insert = insert
        })
        const res = await k.req('POST', '/v1/x/hog/items', { token: a.token, body: { name: 'phoenix' } })
        t.ok(killed > 0, 'a worker was killed under the invocation')
        t.equal(res.status, 201, JSON.stringify(res.body))
        const rows = await k.ownerSql(
          `select count(*)::int as n from plugin_records where tenant_id = ? and data ->> 'name' = 'phoenix'`,
          [a.orgId],
        )
        t.equal(rows[0].n, 1, 'the first attempt was rolled back, the second committed')
      },
    )
  })
}
