// Metrics beyond one tenant's plugin data. Across organisations, as aggregates only: a partner
// sees the total and the spread across its own tenants (never another partner's, never a tenant
// without a partner); the platform compares each partner's value per tenant with its peers;
// tenants and other partners are refused. The kernel's telemetry, queryable like any metric
// (kernel.*): workflow cycle times, workflow exceptions by type, task SLA breaches, plugin
// invocation errors — each tenant's own only, and only for those who hold the permission that
// governs it. One kernel per database serves both.
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

/** `n` invoiced orders, half in January and half in February 2025, one line of 2 × 10.50 each. */
const orders = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({
    number: `${prefix}${i}`,
    customer: 'ALF',
    status: 'invoiced',
    orderDate: i % 2 ? '2025-02-10' : '2025-01-10',
    requiredDate: '2025-03-01',
    lines: [{ sku: 'P-1', quantity: 2, unitPrice: '10.50', discount: '0' }],
  }))

for (const kind of DB_KINDS) {
  t.test(kind, async (t) => {
    const k = await startTestKernel(t, kind, { plugins: { sandboxWorkers: 1 } })
    const version = await registerVersion(k, { manifest, code: built.code, sourceMap: built.sourceMap })
    const partner = async (slug: string) => {
      const r = await k.req('POST', '/v1/partners', {
        token: k.adminToken,
        body: {
          name: slug,
          slug: `${slug}-${kind}`,
          admin: { email: `pa@${slug}-${kind}.test`, name: slug, password: `${slug}-password-1` },
        },
      })
      t.equal(r.status, 201, JSON.stringify(r.body))
      return { id: r.body.id as string, ...(await k.login(`pa@${slug}-${kind}.test`, `${slug}-password-1`)) }
    }
    const p1 = await partner('north')
    const p2 = await partner('south')
    const p3 = await partner('west')
    const tenants = {
      a1: { partner: p1.id, n: 6 },
      a2: { partner: p1.id, n: 2 },
      b1: { partner: p2.id, n: 10 },
      c1: { partner: p3.id, n: 4 },
      direct: { partner: undefined, n: 40 },
    }
    const tokens: Record<string, string> = {}
    for (const [slug, spec] of Object.entries(tenants)) {
      const tenant = await createTenantWithAdmin(
        k,
        `agg-${slug}-${kind}`,
        spec.partner ? { partnerId: spec.partner } : {},
      )
      tokens[slug] = tenant.token
      const inst = await k.req('POST', '/v1/installations', {
        token: tenant.token,
        body: { plugin: manifest.name, version: manifest.version, capabilities: manifest.capabilities },
      })
      t.equal(inst.status, 201, JSON.stringify(inst.body))
      const seeded = await k.req('POST', '/v1/x/metrics-shop/seed', {
        token: tenant.token,
        body: { orders: orders(slug, spec.n) },
      })
      t.equal(seeded.status, 201)
    }
    const get = (url: string, token: string) => k.req('GET', url, { token })

    t.test('a partner sees totals and the spread across its own tenants only', async (t) => {
      const all = await get('/v1/partner/metrics/metrics-shop.orders', p1.token)
      t.equal(all.status, 200, JSON.stringify(all.body))
      t.equal(all.body.tenants, 2)
      t.match(all.body.rows, [{ tenants: 2, total: 8, min: 2, max: 6, mean: 4 }])
      t.equal(all.body.rows.length, 1)
      const monthly = await get('/v1/partner/metrics/metrics-shop.net_sales?grain=month', p1.token)
      t.match(monthly.body.rows, [
        { period: '2025-01-01', tenants: 2, total: 4 * 21 },
        { period: '2025-02-01', tenants: 2, total: 4 * 21 },
      ])
      t.notOk(
        JSON.stringify(monthly.body).includes('orgId') || JSON.stringify(monthly.body).includes('tenantId'),
        'no tenant named',
      )
      const south = await get('/v1/partner/metrics/metrics-shop.orders', p2.token)
      t.match(south.body.rows, [{ tenants: 1, total: 10 }], "another partner's total is its own")
      const avg = await get('/v1/partner/metrics/metrics-shop.avg_quantity', p1.token)
      t.equal(avg.body.additive, false)
      t.equal(avg.body.rows[0].total, null, 'averages do not add up across tenants')
      t.equal(avg.body.rows[0].median, 2)
    })

    t.test('refused: tenants, bad input, metrics nobody has', async (t) => {
      const tenant = await get('/v1/partner/metrics/metrics-shop.orders', tokens.a1!)
      t.equal(tenant.status, 403)
      t.equal(tenant.body.code, 'AUTH_ERR_FORBIDDEN')
      const grain = await get('/v1/partner/metrics/metrics-shop.orders?grain=fortnight', p1.token)
      t.equal(grain.body.code, 'MET_ERR_QUERY_INVALID')
      t.equal((await get('/v1/partner/metrics/metrics-shop.nope', p1.token)).body.code, 'MET_ERR_NOT_FOUND')
      t.equal(
        (await get('/v1/platform/metrics/metrics-shop.orders/peers', p1.token)).status,
        403,
        'peers are the platform view',
      )
      t.equal((await get('/v1/platform/metrics/metrics-shop.orders/peers', tokens.direct!)).status, 403)
    })

    t.test('the platform compares each partner with its peers', async (t) => {
      const r = await get('/v1/platform/metrics/metrics-shop.orders/peers', k.adminToken)
      t.equal(r.status, 200, JSON.stringify(r.body))
      const by = Object.fromEntries(r.body.partners.map((p: any) => [p.name, p]))
      t.same(Object.keys(by).sort(), ['north', 'south', 'west'], 'a tenant without a partner is nobody’s peer')
      t.match(by.north, { tenants: 2, total: 8, perTenant: 4, peers: 2, percentile: 0.25 })
      t.match(by.south, { tenants: 1, total: 10, perTenant: 10, peers: 2, percentile: 1, score: null })
      t.match(by.west, { tenants: 1, total: 4, perTenant: 4, percentile: 0.25 })
      t.match(by.north.distribution, { min: 4, max: 10 })
    })

    t.test('kernel telemetry', async (t) => {
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
  })
}
