// Rollups: a metric's series materialised and refreshed incrementally. After every refresh the
// rollup answers exactly what the live query answers — when new rows arrive, rows change or go,
// and a joined collection changes — and only the periods whose records changed are recomputed.
// The scheduled insights pass refreshes them; a tenant never sees or refreshes another's.
import t, { type Test } from 'tap'
import { join } from 'node:path'
import { readFile } from 'node:fs/promises'
import { buildPlugin } from '@trellis/plugin-sdk'
import { ManualClock } from '../src/workflows/clock.js'
import { DB_KINDS, addUser, createTenantWithAdmin, startTestKernel } from './helpers/test-kernel.js'
import { registerVersion } from './helpers/plugin-versions.js'

const dir = join(import.meta.dirname, 'fixtures', 'plugins', 'metrics-shop')
const manifest = JSON.parse(await readFile(join(dir, 'trellis.plugin.json'), 'utf8'))
const built = await buildPlugin({ dir, write: false })
const CUSTOMERS = [
  { code: 'ALF', country: 'Germany' },
  { code: 'BON', country: 'France' },
  { code: 'DUM', country: 'Spain' },
]

/** Orders spread over January to June 2025, a few lines each, prices with cents and discounts. */
function orders(prefix: string, n: number, seed: number) {
  return Array.from({ length: n }, (_, i) => {
    const x = (i * 7919 + seed * 104729) % 1000
    const month = 1 + (x % 6)
    return {
      number: `${prefix}${i}`,
      customer: CUSTOMERS[x % 3]!.code,
      status: x % 7 === 0 ? 'cancelled' : 'invoiced',
      orderDate: `2025-0${month}-${String(1 + (x % 27)).padStart(2, '0')}`,
      requiredDate: '2025-07-01',
      lines: Array.from({ length: 1 + (x % 3) }, (_, j) => ({
        sku: `P-${1 + ((x + j) % 4)}`,
        quantity: 1 + ((x + j * 3) % 17),
        unitPrice: `${1 + ((x * 13 + j) % 90)}.${String((x + j) % 100).padStart(2, '0')}`,
        discount: (x + j) % 4 === 0 ? '0.05' : '0',
      })),
    }
  })
}

for (const kind of DB_KINDS) {
  t.test(kind, async (t) => {
    const clock = new ManualClock(Date.now())
    const k = await startTestKernel(t, kind, {
      plugins: { sandboxWorkers: 1 },
      workflows: { clock },
      insights: { everyMs: 60_000 },
    })
    await registerVersion(k, { manifest, code: built.code, sourceMap: built.sourceMap })
    const a = await createTenantWithAdmin(k, `roll-a-${kind}`)
    const b = await createTenantWithAdmin(k, `roll-b-${kind}`)
    for (const [tenant, data] of [
      [a, orders('A', 45, 1)],
      [b, orders('B', 12, 2)],
    ] as const) {
      const inst = await k.req('POST', '/v1/installations', {
        token: tenant.token,
        body: { plugin: manifest.name, version: manifest.version, capabilities: manifest.capabilities },
      })
      t.equal(inst.status, 201, JSON.stringify(inst.body))
      for (let i = 0; i < data.length; i += 25) {
        const seeded = await k.req('POST', '/v1/x/metrics-shop/seed', {
          token: tenant.token,
          body: { ...(i === 0 ? { customers: CUSTOMERS } : {}), orders: data.slice(i, i + 25) },
        })
        t.equal(seeded.status, 201, JSON.stringify(seeded.body))
      }
    }
    const get = (url: string, token = a.token) => k.req('GET', url, { token })
    const post = (url: string, body: unknown, token = a.token) => k.req('POST', url, { token, body })
    /** The rollup's answer and the live one: same rows, and the first really came from the rollup. */
    const sameAsLive = async (t: Test, query: string, token = a.token, source = 'rollup') => {
      const rolled = await get(`/v1/metrics/${query}`, token)
      const live = await get(`/v1/metrics/${query}&live=true`, token)
      t.equal(rolled.status, 200, JSON.stringify(rolled.body))
      t.equal(rolled.body.source, source, `${query} answered from the ${source}`)
      t.equal(live.body.source, 'query')
      t.ok(live.body.rows.length > 0, 'the series is not empty')
      t.same(rolled.body.rows, live.body.rows, `${query}: the rollup equals the live query`)
      return live.body.rows
    }
    const Q = 'metrics-shop.net_sales?grain=month&groupBy=product'
    let byProduct = ''

    t.test('who may create one, and bad input', async (t) => {
      const role = await post('/v1/roles', { name: 'shop-reader', permissions: ['shop.read'] })
      t.equal(role.status, 201)
      const reader = await addUser(k, a.token, `reader@roll-${kind}.test`, 'shop-reader')
      const denied = await post(
        '/v1/metrics/rollups',
        { metric: 'metrics-shop.net_sales', grain: 'fortnight' },
        reader.token,
      )
      t.equal(denied.status, 403, 'reading a metric is not enough to make the database materialise it')
      t.equal(denied.body.code, 'AUTH_ERR_FORBIDDEN')
      const unknown = await post('/v1/metrics/rollups', { metric: 'metrics-shop.nope', grain: 'month' })
      t.equal(unknown.body.code, 'MET_ERR_NOT_FOUND')
      const grain = await post('/v1/metrics/rollups', { metric: 'metrics-shop.net_sales', grain: 'fortnight' })
      t.equal(grain.status, 400)
      t.equal(grain.body.code, 'MET_ERR_QUERY_INVALID')
      const dim = await post('/v1/metrics/rollups', {
        metric: 'metrics-shop.net_sales',
        grain: 'month',
        groupBy: ['colour'],
      })
      t.equal(dim.body.code, 'MET_ERR_QUERY_INVALID')
      t.same((await get('/v1/metrics/rollups')).body.items, [], 'nothing was written')
      const made = await post('/v1/metrics/rollups', {
        metric: 'metrics-shop.net_sales',
        grain: 'month',
        groupBy: ['product'],
      })
      t.equal(made.status, 201, JSON.stringify(made.body))
      t.equal(made.body.refreshedAt, null)
      byProduct = made.body.id
      const twice = await post('/v1/metrics/rollups', {
        metric: 'metrics-shop.net_sales',
        grain: 'month',
        groupBy: ['product'],
      })
      t.equal(twice.status, 409)
      t.equal(twice.body.code, 'MET_ERR_ROLLUP_EXISTS')
      t.equal((await get(`/v1/metrics/${Q}`)).body.source, 'query', 'never refreshed: answered live')
    })

    t.test('refreshed, it answers exactly what the live query answers', async (t) => {
      const r = await post(`/v1/metrics/rollups/${byProduct}/refresh`, {})
      t.equal(r.status, 200, JSON.stringify(r.body))
      t.equal(r.body.full, true)
      t.same(r.body.recomputed, ['2025-01-01', '2025-02-01', '2025-03-01', '2025-04-01', '2025-05-01', '2025-06-01'])
      await sameAsLive(t, Q)
      await sameAsLive(t, `${Q}&from=2025-02-01&to=2025-05-01`)
      await sameAsLive(t, `${Q}&filter=${encodeURIComponent(JSON.stringify({ product: ['P-1', 'P-3'] }))}`)
      await sameAsLive(t, `${Q}&from=2025-02-15`, a.token, 'query')
      const other = await get('/v1/metrics/metrics-shop.net_sales?grain=month')
      t.equal(other.body.source, 'query', 'another groupBy is not this rollup')
    })

    t.test('new rows arrive: only their month is recomputed, and the answers agree again', async (t) => {
      const arriving = orders('N', 3, 9).map((o) => ({ ...o, status: 'invoiced', orderDate: '2025-03-10' }))
      t.equal((await post('/v1/x/metrics-shop/seed', { orders: arriving })).status, 201)
      const stale = await get(`/v1/metrics/${Q}`)
      const live = await get(`/v1/metrics/${Q}&live=true`)
      t.not(
        JSON.stringify(stale.body.rows),
        JSON.stringify(live.body.rows),
        'until refreshed the rollup is as of its refreshedAt',
      )
      const r = await post(`/v1/metrics/rollups/${byProduct}/refresh`, {})
      t.same(r.body, { ...r.body, full: false, recomputed: ['2025-03-01'], removed: [] })
      await sameAsLive(t, Q)
    })

    t.test('rows change and go: the months they left and entered are recomputed', async (t) => {
      const data = orders('A', 45, 1)
      const jan = data.find((o) => o.orderDate.startsWith('2025-01') && o.status === 'invoiced')!
      const apr = data.find((o) => o.orderDate.startsWith('2025-04') && o.status === 'invoiced')!
      const jun = data.find((o) => o.orderDate.startsWith('2025-06') && o.status === 'invoiced')!
      for (const body of [
        { number: jan.number, patch: { orderDate: '2025-02-03' } },
        { number: apr.number, patch: { status: 'cancelled' } },
        { number: jun.number, remove: true },
      ])
        t.equal((await post('/v1/x/metrics-shop/change', body)).status, 200)
      const r = await post(`/v1/metrics/rollups/${byProduct}/refresh`, {})
      t.same(r.body.recomputed, ['2025-01-01', '2025-02-01', '2025-04-01', '2025-06-01'])
      t.equal(r.body.full, false)
      await sameAsLive(t, Q)
    })

    t.test('a joined collection changes: every period is recomputed', async (t) => {
      const made = await post('/v1/metrics/rollups', {
        metric: 'metrics-shop.net_sales',
        grain: 'quarter',
        groupBy: ['country'],
      })
      t.equal(made.status, 201)
      await post(`/v1/metrics/rollups/${made.body.id}/refresh`, {})
      const QC = 'metrics-shop.net_sales?grain=quarter&groupBy=country'
      const before = await sameAsLive(t, QC)
      t.equal((await post('/v1/x/metrics-shop/customer', { code: 'BON', country: 'Belgium' })).status, 200)
      const r = await post(`/v1/metrics/rollups/${made.body.id}/refresh`, {})
      t.equal(r.body.full, true)
      const after = await sameAsLive(t, QC)
      t.ok(after.some((row: any) => row.dims.country === 'Belgium'))
      t.notOk(before.some((row: any) => row.dims.country === 'Belgium'))
    })

    t.test('the scheduled pass refreshes every tenant', async (t) => {
      const made = await post(
        '/v1/metrics/rollups',
        { metric: 'metrics-shop.orders', grain: 'month', groupBy: ['status'] },
        b.token,
      )
      t.equal(made.status, 201)
      t.equal(
        (await post('/v1/x/metrics-shop/seed', { orders: orders('A2', 4, 5) })).status,
        201,
        'tenant A has new rows too',
      )
      await clock.advance(60_000)
      const listB = await get('/v1/metrics/rollups', b.token)
      t.equal(listB.body.items.length, 1, "tenant B sees its rollup, not A's")
      t.equal(listB.body.items[0].refreshedAt, new Date(clock.now()).toISOString())
      await sameAsLive(t, 'metrics-shop.orders?grain=month&groupBy=status', b.token)
      const listA = await get('/v1/metrics/rollups')
      t.ok(listA.body.items.every((r: any) => r.refreshedAt === new Date(clock.now()).toISOString()))
      await sameAsLive(t, Q)
    })

    t.test('isolation: another tenant can neither see nor refresh a rollup, nor read its rows', async (t) => {
      t.equal(
        (await post(`/v1/metrics/rollups/${byProduct}/refresh`, {}, b.token)).body.code,
        'MET_ERR_ROLLUP_NOT_FOUND',
      )
      t.equal((await k.req('DELETE', `/v1/metrics/rollups/${byProduct}`, { token: b.token })).status, 404)
      const leaked = await k.appSql(
        b.orgId,
        'select count(*)::int as n from metric_rollup_rows where rollup_id = ?::uuid',
        [byProduct],
      )
      t.equal(leaked[0].n, 0, "row-level security hides A's rollup rows from B")
      const forged = await k
        .appSql(
          b.orgId,
          `insert into metric_rollup_rows (tenant_id, rollup_id, period, dims, value) values (?::uuid, ?::uuid, '2025-01-01', '{P-1}', '1')`,
          [a.orgId, byProduct],
        )
        .then(
          () => 'written',
          (err: Error) => err.message,
        )
      t.match(forged, /row-level security|violates/, "B cannot write into A's rollup")
      t.equal((await k.req('DELETE', `/v1/metrics/rollups/${byProduct}`, { token: a.token })).status, 204)
      t.equal((await get(`/v1/metrics/${Q}`)).body.source, 'query', 'removed: answered live again')
    })
  })
}
