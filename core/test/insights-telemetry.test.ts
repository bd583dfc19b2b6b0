// Kernel telemetry metrics fed by the kernel's own work, and a plugin's ctx.metrics answered from
// a rollup. kernel.webhook_failures counts deliveries that failed for good (a 410 and a dead
// letter from real endpoints), by reason; kernel.plugin_cpu sums the CPU of recorded invocations,
// by kind — each tenant's own, only for those holding the permission. A plugin reading a metric
// that has a refreshed rollup gets the rollup's answer (`source: "rollup"`), equal to the live one.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { addUser, createTenantWithAdmin, startTestKernel, type TestKernel } from './helpers/test-kernel.js'
import { builtFixture, registerVersion } from './helpers/plugin-versions.js'
import { eventually, startReceiver } from './helpers/receiver.js'

const shop = await builtFixture('metrics-shop')
const reader = await builtFixture('metrics-reader')

const k = await startTestKernel(t, 'postgres', {
  plugins: { sandboxWorkers: 1 },
  events: {
    egressAllow: ['127.0.0.1'],
    retryScheduleMs: [100],
    sweepMs: 200,
    totalTimeoutMs: 1000,
    connectTimeoutMs: 500,
  },
})
const installed = new Map<string, string>()
async function install(k: TestKernel, token: string, built: { manifest: { name: string; version: string } }) {
  const m = built.manifest as { name: string; version: string; capabilities: string[] }
  const r = await k.req('POST', '/v1/installations', {
    token,
    body: { plugin: m.name, version: m.version, capabilities: m.capabilities },
  })
  if (r.status !== 201) throw new Error(JSON.stringify(r.body))
  installed.set(`${token}:${m.name}`, r.body.id)
}
const versions = new Map<string, string>()
for (const b of [shop, reader]) versions.set(b.manifest.name, (await registerVersion(k, b)).id)
const a = await createTenantWithAdmin(k, 'tel2-a')
const b = await createTenantWithAdmin(k, 'tel2-b')
for (const tenant of [a, b]) for (const built of [shop, reader]) await install(k, tenant.token, built)
const get = (url: string, token = a.token) => k.req('GET', url, { token })

t.test('kernel.webhook_failures: deliveries failed for good, by reason', async (t) => {
  const gone = await startReceiver(() => 410)
  const down = await startReceiver(() => 500)
  const fine = await startReceiver(() => 200)
  t.teardown(async () => Promise.all([gone.close(), down.close(), fine.close()]))
  for (const [token, url] of [
    [a.token, gone.url],
    [a.token, down.url],
    [a.token, fine.url],
    [b.token, fine.url],
  ] as const) {
    const r = await k.req('POST', '/v1/webhooks', { token, body: { url, types: ['kernel.role.created'] } })
    t.equal(r.status, 201, JSON.stringify(r.body))
  }
  for (const [token, name] of [
    [a.token, 'first'],
    [b.token, 'other'],
  ] as const)
    t.equal((await k.req('POST', '/v1/roles', { token, body: { name, permissions: [] } })).status, 201)
  // One role in A: a 410 (gone at once) and a dead letter (500, retried once); the 200s succeed.
  const rows = await eventually(async () => {
    const r = await get('/v1/metrics/kernel.webhook_failures?groupBy=reason,eventType')
    const total = (r.body.rows as Array<{ value: number }>).reduce((s, x) => s + x.value, 0)
    return total === 2 && r.body.rows
  }, 20_000)
  t.same(
    rows.map((r: any) => [r.dims.reason, r.dims.eventType, r.value]),
    [
      ['dead_letter', 'kernel.role.created', 1],
      ['gone', 'kernel.role.created', 1],
    ],
  )
  await fine.until((all) => all.length >= 2, 10_000)
  t.same(
    (await get('/v1/metrics/kernel.webhook_failures', b.token)).body.rows.map((r: any) => r.value),
    [0],
    'tenant B had no failure',
  )
  await k.req('POST', '/v1/roles', { token: a.token, body: { name: 'shop-reader', permissions: ['shop.read'] } })
  const shopReader = await addUser(k, a.token, 'reader@tel2.test', 'shop-reader')
  const denied = await get('/v1/metrics/kernel.webhook_failures', shopReader.token)
  t.equal(denied.status, 403)
  t.equal(denied.body.code, 'AUTH_ERR_FORBIDDEN')
})

t.test('kernel.plugin_cpu: the CPU of recorded invocations, by kind', async (t) => {
  // Invocation records as the recorder writes them, with known CPU times, in a tenant of their own.
  const c = await createTenantWithAdmin(k, 'tel2-c')
  await install(k, c.token, shop)
  const installation = installed.get(`${c.token}:${shop.manifest.name}`)!
  for (const [kind, cpu, at] of [
    ['route', 12.5, '2025-04-01T10:00:00Z'],
    ['route', 7.25, '2025-04-02T10:00:00Z'],
    ['event', 3, '2025-05-01T10:00:00Z'],
  ] as const)
    await k.ownerSql(
      `insert into plugin_invocations (id, tenant_id, installation_id, plugin, version, entry_kind, entry_name, caller_kind, caller_id, started_at, wall_ms, cpu_ms, host_calls, outcome)
       values (?::uuid, ?::uuid, ?::uuid, ?, '1.0.0', ?, 'x', 'user', 'u', ?::timestamptz, 20, ?, 1, 'ok')`,
      [randomUUID(), c.orgId, installation, shop.manifest.name, kind, at, cpu],
    )
  const byKind = await get('/v1/metrics/kernel.plugin_cpu?groupBy=kind', c.token)
  t.equal(byKind.status, 200, JSON.stringify(byKind.body))
  t.same(
    byKind.body.rows.map((r: any) => [r.dims.kind, r.value]),
    [
      ['event', '3.000'],
      ['route', '19.750'],
    ],
  )
  const monthly = await get('/v1/metrics/kernel.plugin_cpu?grain=month', c.token)
  t.same(
    monthly.body.rows.map((r: any) => [r.period, r.value]),
    [
      ['2025-04-01', '19.750'],
      ['2025-05-01', '3.000'],
    ],
  )
  // Tenant A's figure is its own: the seed it ran, of its one plugin with invocations.
  t.equal((await k.req('POST', '/v1/x/metrics-shop/seed', { token: a.token, body: { orders: [] } })).status, 201)
  await k.kernel.ctx.plugins.recorder.flush()
  const [own] = await k.ownerSql<{ n: number }>(
    'select count(*)::int as n from plugin_invocations where tenant_id = ?::uuid',
    [a.orgId],
  )
  t.ok(own!.n >= 1, 'the seed was recorded')
  const aCpu = await get('/v1/metrics/kernel.plugin_cpu?groupBy=plugin')
  t.same(
    aCpu.body.rows.map((r: any) => r.dims.plugin),
    [shop.manifest.name],
  )
})

t.test('ctx.metrics answers from a refreshed rollup, equal to the live answer', async (t) => {
  const orders = (prefix: string, month: string, n: number) =>
    Array.from({ length: n }, (_, i) => ({
      number: `${prefix}${i}`,
      customer: 'ALF',
      status: 'invoiced',
      orderDate: `2025-${month}-10`,
      lines: [{ sku: 'P-1', quantity: 2, unitPrice: '10.50', discount: '0' }],
    }))
  const seed = async (o: unknown[]) =>
    t.equal((await k.req('POST', '/v1/x/metrics-shop/seed', { token: b.token, body: { orders: o } })).status, 201)
  await seed([...orders('R1-', '01', 3), ...orders('R2-', '02', 1)])
  const made = await k.req('POST', '/v1/metrics/rollups', {
    token: b.token,
    body: { metric: 'metrics-shop.net_sales', grain: 'month' },
  })
  t.equal(made.status, 201, JSON.stringify(made.body))
  t.equal((await k.req('POST', `/v1/metrics/rollups/${made.body.id}/refresh`, { token: b.token })).status, 200)
  const ask = () =>
    k.req('POST', '/v1/x/metrics-reader/query', {
      token: b.token,
      body: { metric: 'metrics-shop.net_sales', options: { grain: 'month' } },
    })
  const rolled = await ask()
  t.equal(rolled.status, 200, JSON.stringify(rolled.body))
  t.equal(rolled.body.source, 'rollup')
  t.ok(rolled.body.refreshedAt, 'it says when the rollup was refreshed')
  const live = await get('/v1/metrics/metrics-shop.net_sales?grain=month&live=true', b.token)
  t.equal(live.body.source, 'query')
  t.same(rolled.body.rows, live.body.rows)
  t.same(
    rolled.body.rows.map((r: any) => [r.period, Number(r.value)]),
    [
      ['2025-01-01', 63],
      ['2025-02-01', 21],
    ],
  )
  // New orders are in the plugin's answer once the rollup is refreshed, not before.
  await seed(orders('R3-', '02', 2))
  t.same((await ask()).body.rows, rolled.body.rows, 'as of the last refresh')
  t.equal((await k.req('POST', `/v1/metrics/rollups/${made.body.id}/refresh`, { token: b.token })).status, 200)
  const after = await ask()
  t.equal(after.body.source, 'rollup')
  t.same(
    after.body.rows.map((r: any) => [r.period, Number(r.value)]),
    [
      ['2025-01-01', 63],
      ['2025-02-01', 63],
    ],
  )
  t.same(after.body.rows, (await get('/v1/metrics/metrics-shop.net_sales?grain=month&live=true', b.token)).body.rows)
})
