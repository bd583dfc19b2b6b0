// The kernel's telemetry, queryable like any metric (kernel.*): workflow cycle times, workflow
// exceptions by type, task SLA breaches, plugin invocation errors — each tenant's own only, and
// only for those who hold the permission that governs the telemetry.
import t from 'tap'
import { join } from 'node:path'
import { readFile } from 'node:fs/promises'
import { randomUUID } from 'node:crypto'
import { buildPlugin } from '@trellis/plugin-sdk'
import { DB_KINDS, addUser, createTenantWithAdmin, startTestKernel } from './helpers/test-kernel.js'
import { registerVersion } from './helpers/plugin-versions.js'

const dir = join(import.meta.dirname, 'fixtures', 'plugins', 'metrics-shop')
const manifest = JSON.parse(await readFile(join(dir, 'trellis.plugin.json'), 'utf8'))
const built = await buildPlugin({ dir, write: false })

for (const kind of DB_KINDS) {
  t.test(kind, async (t) => {
    const k = await startTestKernel(t, kind, { plugins: { sandboxWorkers: 1 } })
    const version = await registerVersion(k, { manifest, code: built.code, sourceMap: built.sourceMap })
    const a = await createTenantWithAdmin(k, `tel-a-${kind}`)
    const b = await createTenantWithAdmin(k, `tel-b-${kind}`)
    const installs: Record<string, string> = {}
    for (const tenant of [a, b]) {
      const inst = await k.req('POST', '/v1/installations', {
        token: tenant.token,
        body: { plugin: manifest.name, version: manifest.version, capabilities: manifest.capabilities },
      })
      t.equal(inst.status, 201)
      installs[tenant.orgId] = inst.body.id
    }
    // Real invocation errors: the plugin's route throws on a record it cannot insert.
    for (const [tenant, n] of [
      [a, 2],
      [b, 1],
    ] as const)
      for (let i = 0; i < n; i++) {
        const r = await k.req('POST', '/v1/x/metrics-shop/seed', { token: tenant.token, body: { orders: [null] } })
        t.ok(r.status >= 400, `the route failed (${r.status})`)
      }
    t.equal((await k.req('POST', '/v1/x/metrics-shop/seed', { token: a.token, body: { orders: [] } })).status, 201)
    await k.kernel.ctx.plugins.recorder.flush()
    // Workflow history as the runtime writes it: instances finished on 2025-05-10, tasks escalated on 05-11.
    const FINISHED = '2025-05-10T18:00:00Z'
    const instance = async (tenant: string, status: string, hours: number, error?: string) => {
      const id = randomUUID()
      await k.ownerSql(
        `insert into workflow_instances (id, tenant_id, installation_id, plugin, version_id, version, workflow, status, started_by, started_at, updated_at, finished_at, error)
         values (?::uuid, ?::uuid, ?::uuid, ?, ?::uuid, '1.0.0', 'fulfil', ?, 'test', ?::timestamptz - make_interval(hours => ?::int), ?::timestamptz, ?::timestamptz, ?::jsonb)`,
        [
          id,
          tenant,
          installs[tenant],
          manifest.name,
          version.id,
          status,
          FINISHED,
          hours,
          FINISHED,
          FINISHED,
          error ? JSON.stringify({ code: error }) : null,
        ],
      )
      return id
    }
    const done = [
      await instance(a.orgId, 'completed', 2),
      await instance(a.orgId, 'completed', 4),
      await instance(a.orgId, 'completed', 9),
    ]
    await instance(a.orgId, 'failed', 1, 'ORD_ERR_OUT_OF_STOCK')
    await instance(a.orgId, 'failed', 1, 'ORD_ERR_OUT_OF_STOCK')
    await instance(a.orgId, 'failed', 1, 'ORD_ERR_CREDIT_LIMIT')
    await instance(b.orgId, 'completed', 100)
    for (const [i, escalated] of [
      [0, '2025-05-11T09:00:00Z'],
      [1, '2025-05-11T10:00:00Z'],
      [2, null],
    ] as const)
      await k.ownerSql(
        `insert into workflow_tasks (id, tenant_id, instance_id, step_seq, plugin, workflow, title, role, outcomes, next, escalated_at)
         values (?::uuid, ?::uuid, ?::uuid, 1, ?, 'fulfil', 'Approve', 'ops', '{ok}', '{}'::jsonb, ?::timestamptz)`,
        [randomUUID(), a.orgId, done[i], manifest.name, escalated],
      )
    const get = (url: string, token = a.token) => k.req('GET', url, { token })

    t.test('cycle time, exceptions by type, SLA breaches, invocation errors', async (t) => {
      const list = (await get('/v1/metrics')).body.items.map((m: any) => m.name)
      t.ok(list.includes('kernel.workflow_cycle_time') && list.includes('kernel.plugin_invocation_errors'))
      t.same(
        (await get('/v1/metrics/kernel.workflow_cycle_time')).body.rows.map((r: any) => r.value),
        ['5.000'],
      )
      t.same(
        (await get('/v1/metrics/kernel.workflow_cycle_time', b.token)).body.rows.map((r: any) => r.value),
        ['100.000'],
      )
      const byError = await get('/v1/metrics/kernel.workflow_exceptions?groupBy=error')
      t.same(
        byError.body.rows.map((r: any) => [r.dims.error, r.value]),
        [
          ['ORD_ERR_CREDIT_LIMIT', 1],
          ['ORD_ERR_OUT_OF_STOCK', 2],
        ],
      )
      const breaches = await get('/v1/metrics/kernel.sla_breaches?grain=day&groupBy=role')
      t.same(
        breaches.body.rows.map((r: any) => [r.period, r.dims.role, r.value]),
        [['2025-05-11', 'ops', 2]],
      )
      const errors = await get('/v1/metrics/kernel.plugin_invocation_errors?groupBy=plugin')
      t.same(
        errors.body.rows.map((r: any) => [r.dims.plugin, r.value]),
        [[manifest.name, 2]],
      )
      const errorsB = await get('/v1/metrics/kernel.plugin_invocation_errors', b.token)
      t.same(
        errorsB.body.rows.map((r: any) => r.value),
        [1],
        "tenant B's count is its own",
      )
    })

    t.test('permission, and telemetry is read live', async (t) => {
      await k.req('POST', '/v1/roles', { token: a.token, body: { name: 'shop-reader', permissions: ['shop.read'] } })
      const reader = await addUser(k, a.token, `reader@tel-${kind}.test`, 'shop-reader')
      t.notOk(
        (await get('/v1/metrics', reader.token)).body.items.some((m: any) => m.name.startsWith('kernel.')),
        'not listed without the permission that governs it',
      )
      const denied = await get('/v1/metrics/kernel.workflow_cycle_time', reader.token)
      t.equal(denied.status, 403)
      t.equal(denied.body.code, 'AUTH_ERR_FORBIDDEN')
      const rollup = await k.req('POST', '/v1/metrics/rollups', {
        token: a.token,
        body: { metric: 'kernel.sla_breaches', grain: 'day' },
      })
      t.equal(rollup.status, 422)
      t.equal(rollup.body.code, 'MET_ERR_ROLLUP_UNSUPPORTED')
    })
  })
}
