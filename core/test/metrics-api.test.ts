// Metrics declared in a plugin's manifest, answered by the kernel over the plugin's records:
// every measure kind, dimensions through another collection, filters, grains; tenant isolation;
// permission before validation; validation errors that name the parameter and what it allows.
import t from 'tap'
import { join } from 'node:path'
import { readFile } from 'node:fs/promises'
import { buildPlugin } from '@trellis/plugin-sdk'
import { DB_KINDS, addUser, createTenantWithAdmin, startTestKernel, type TestKernel } from './helpers/test-kernel.js'
import { registerVersion } from './helpers/plugin-versions.js'

const dir = join(import.meta.dirname, 'fixtures', 'plugins', 'metrics-shop')
const manifest = JSON.parse(await readFile(join(dir, 'trellis.plugin.json'), 'utf8'))
const built = await buildPlugin({ dir, write: false })

/** A deterministic PRNG (mulberry32). */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

interface Line {
  sku: string
  quantity: number
  unitPrice: string
  discount: string | number
}
interface Order {
  number: string
  customer: string
  status: string
  orderDate: string
  requiredDate: string
  shippedDate?: string
  lines: Line[]
}

const COUNTRIES: Record<string, string> = { ALF: 'Germany', BON: 'France', CHO: 'Germany', DUM: 'Spain' }

function orders(seed: number, n: number, prefix: string): Order[] {
  const r = rng(seed)
  const out: Order[] = []
  for (let i = 0; i < n; i++) {
    const month = 1 + Math.floor(r() * 6)
    const day = 1 + Math.floor(r() * 28)
    const orderDate = `2025-0${month}-${String(day).padStart(2, '0')}`
    const req = new Date(Date.parse(`${orderDate}T00:00:00Z`) + 14 * 86_400_000).toISOString().slice(0, 10)
    const shipDays = Math.floor(r() * 25)
    const shipped = r() < 0.85
    const lines: Line[] = Array.from({ length: 1 + Math.floor(r() * 3) }, () => ({
      sku: `P-${1 + Math.floor(r() * 5)}`,
      quantity: 1 + Math.floor(r() * 40),
      unitPrice: (Math.floor(r() * 9000) / 100 + 1).toFixed(2),
      discount: r() < 0.6 ? '0' : r() < 0.5 ? '0.05' : 0.15,
    }))
    out.push({
      number: `${prefix}${i}`,
      customer: Object.keys(COUNTRIES)[Math.floor(r() * 4)]!,
      status: shipped ? 'invoiced' : r() < 0.5 ? 'placed' : 'cancelled',
      orderDate,
      requiredDate: req,
      ...(shipped
        ? {
            shippedDate: new Date(Date.parse(`${orderDate}T00:00:00Z`) + shipDays * 86_400_000)
              .toISOString()
              .slice(0, 10),
          }
        : {}),
      lines,
    })
  }
  return out
}

// Exact arithmetic: 10^-6 units.
const micros = (s: string | number) => {
  const [i, f = ''] = String(s).split('.')
  return BigInt(i!) * 1_000_000n + BigInt(f.padEnd(6, '0'))
}
const lineNet = (l: Line) => (micros(l.unitPrice) * BigInt(l.quantity) * (1_000_000n - micros(l.discount))) / 1_000_000n
const cents = (u: bigint) => {
  const c = (u + 5_000n) / 10_000n
  const s = c.toString().padStart(3, '0')
  return `${s.slice(0, -2)}.${s.slice(-2)}`
}
function sumBy(os: Order[], key: (o: Order, l: Line) => string): Record<string, string> {
  const m = new Map<string, bigint>()
  for (const o of os)
    if (o.status === 'invoiced') for (const l of o.lines) m.set(key(o, l), (m.get(key(o, l)) ?? 0n) + lineNet(l))
  return Object.fromEntries([...m].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, cents(v)]))
}

const today = new Date().toISOString().slice(0, 10)
const dataA = orders(1, 60, 'A')
// One order this month: its month is reported as incomplete.
dataA.push({
  number: 'A-now',
  customer: 'ALF',
  status: 'invoiced',
  orderDate: today,
  requiredDate: today,
  shippedDate: today,
  lines: [{ sku: 'P-1', quantity: 1, unitPrice: '10.00', discount: '0' }],
})
const dataB = orders(2, 25, 'B')

for (const kind of DB_KINDS) {
  t.test(kind, async (t) => {
    const k: TestKernel = await startTestKernel(t, kind, { plugins: { sandboxWorkers: 1 } })
    await registerVersion(k, { manifest, code: built.code, sourceMap: built.sourceMap })
    const a = await createTenantWithAdmin(k, `met-a-${kind}`)
    const b = await createTenantWithAdmin(k, `met-b-${kind}`)
    for (const [tenant, data] of [
      [a, dataA],
      [b, dataB],
    ] as const) {
      const inst = await k.req('POST', '/v1/installations', {
        token: tenant.token,
        body: { plugin: manifest.name, version: manifest.version, capabilities: manifest.capabilities },
      })
      t.equal(inst.status, 201, JSON.stringify(inst.body))
      const customers = Object.entries(COUNTRIES).map(([code, country]) => ({ code, country }))
      for (let i = 0; i < data.length; i += 30) {
        const seeded = await k.req('POST', '/v1/x/metrics-shop/seed', {
          token: tenant.token,
          body: { ...(i === 0 ? { customers } : {}), orders: data.slice(i, i + 30) },
        })
        t.equal(seeded.status, 201, JSON.stringify(seeded.body))
      }
    }
    const get = (url: string, token = a.token) => k.req('GET', url, { token })
    const table = (rows: any[], key: (r: any) => string) =>
      Object.fromEntries(rows.map((r) => [key(r), r.value]).sort(([x], [y]) => x.localeCompare(y)))

    t.test('the catalog lists what the caller may read', async (t) => {
      const list = await get('/v1/metrics')
      t.equal(list.status, 200)
      const names = list.body.items.map((m: any) => m.name)
      t.ok(names.includes('metrics-shop.net_sales'))
      const net = list.body.items.find((m: any) => m.name === 'metrics-shop.net_sales')
      t.same(net.dimensions, ['country', 'customer', 'product'])
      t.equal(net.unit, 'money')
      t.equal((await k.req('GET', '/v1/metrics')).status, 401, 'no credential')
    })

    t.test('net sales to the cent: total, by month, by product, by country (through customers)', async (t) => {
      const total = await get('/v1/metrics/metrics-shop.net_sales')
      t.equal(total.status, 200, JSON.stringify(total.body))
      t.same(
        total.body.rows.map((r: any) => r.value),
        Object.values(sumBy(dataA, () => 'all')),
      )
      const byMonth = await get('/v1/metrics/metrics-shop.net_sales?grain=month')
      t.same(
        table(byMonth.body.rows, (r) => r.period),
        sumBy(dataA, (o) => `${o.orderDate.slice(0, 7)}-01`),
      )
      const byProduct = await get('/v1/metrics/metrics-shop.net_sales?groupBy=product')
      t.same(
        table(byProduct.body.rows, (r) => r.dims.product),
        sumBy(dataA, (_o, l) => l.sku),
      )
      const byCountry = await get('/v1/metrics/metrics-shop.net_sales?groupBy=country&from=2025-01-01&to=2025-04-01')
      const q1 = dataA.filter((o) => o.orderDate >= '2025-01-01' && o.orderDate < '2025-04-01')
      t.same(
        table(byCountry.body.rows, (r) => r.dims.country),
        sumBy(q1, (o) => COUNTRIES[o.customer]!),
      )
      const filtered = await get(
        `/v1/metrics/metrics-shop.net_sales?groupBy=customer&filter=${encodeURIComponent(JSON.stringify({ country: 'Germany' }))}`,
      )
      t.same(
        table(filtered.body.rows, (r) => r.dims.customer),
        sumBy(
          dataA.filter((o) => COUNTRIES[o.customer] === 'Germany'),
          (o) => o.customer,
        ),
      )
      const quarters = await get('/v1/metrics/metrics-shop.net_sales?grain=quarter&groupBy=product&to=2025-07-01')
      t.ok(quarters.body.rows.every((r: any) => r.complete === true && /^2025-0[14]-01$/.test(r.period)))
    })

    t.test('the current period is marked incomplete', async (t) => {
      const byMonth = await get('/v1/metrics/metrics-shop.net_sales?grain=month')
      const last = byMonth.body.rows[byMonth.body.rows.length - 1]
      t.equal(last.period, `${today.slice(0, 7)}-01`)
      t.equal(last.complete, false)
      t.ok(byMonth.body.rows.slice(0, -1).every((r: any) => r.complete === true))
    })

    t.test('count, conditional count, distinct count, avg, min, max, ratio', async (t) => {
      const byStatus = await get('/v1/metrics/metrics-shop.orders?groupBy=status')
      const want: Record<string, number> = {}
      for (const o of dataA) want[o.status] = (want[o.status] ?? 0) + 1
      t.same(
        table(byStatus.body.rows, (r) => r.dims.status),
        Object.fromEntries(Object.entries(want).sort()),
      )
      const late = await get('/v1/metrics/metrics-shop.late_orders')
      t.equal(late.body.rows[0].value, dataA.filter((o) => o.shippedDate && o.shippedDate > o.requiredDate).length)
      const unshipped = await get('/v1/metrics/metrics-shop.unshipped')
      t.equal(unshipped.body.rows[0].value, dataA.filter((o) => !o.shippedDate).length)
      const buyers = await get('/v1/metrics/metrics-shop.buyers?from=2025-02-01&to=2025-03-01')
      t.equal(
        buyers.body.rows[0].value,
        new Set(dataA.filter((o) => o.orderDate.startsWith('2025-02')).map((o) => o.customer)).size,
      )
      const lines = dataA.flatMap((o) => o.lines)
      const avg = await get('/v1/metrics/metrics-shop.avg_quantity')
      t.equal(avg.body.rows[0].value, (lines.reduce((s, l) => s + l.quantity, 0) / lines.length).toFixed(4))
      const prices = lines.map((l) => Number(l.unitPrice))
      const low = await get('/v1/metrics/metrics-shop.price_range_low')
      const high = await get('/v1/metrics/metrics-shop.price_range_high')
      t.equal(Number(low.body.rows[0].value), Math.min(...prices))
      t.equal(Number(high.body.rows[0].value), Math.max(...prices))
      const rate = await get('/v1/metrics/metrics-shop.discount_rate')
      let disc = 0n
      let gross = 0n
      for (const l of lines) {
        disc += micros(l.unitPrice) * BigInt(l.quantity) * micros(l.discount)
        gross += micros(l.unitPrice) * BigInt(l.quantity) * 1_000_000n
      }
      t.equal(rate.body.rows[0].value, (Number((disc * 10_000_000n) / gross) / 1e7).toFixed(6))
    })

    t.test("a tenant's metric never includes another tenant's rows", async (t) => {
      const mine = await get('/v1/metrics/metrics-shop.net_sales?groupBy=product', b.token)
      t.same(
        table(mine.body.rows, (r) => r.dims.product),
        sumBy(dataB, (_o, l) => l.sku),
      )
      const count = await get('/v1/metrics/metrics-shop.orders', b.token)
      t.equal(count.body.rows[0].value, dataB.length)
    })

    t.test('permission before validation: 403 for those who may not read the source', async (t) => {
      const role = await k.req('POST', '/v1/roles', {
        token: a.token,
        body: { name: 'shop-writer', permissions: ['shop.write'] },
      })
      t.equal(role.status, 201, JSON.stringify(role.body))
      const writer = await addUser(k, a.token, `writer@met-${kind}.test`, 'shop-writer')
      t.same((await get('/v1/metrics', writer.token)).body.items, [])
      const denied = await get('/v1/metrics/metrics-shop.net_sales?grain=fortnight', writer.token)
      t.equal(denied.status, 403)
      t.equal(denied.body.code, 'AUTH_ERR_FORBIDDEN')
      const reader = await k.req('POST', '/v1/roles', {
        token: a.token,
        body: { name: 'shop-reader', permissions: ['shop.read'] },
      })
      t.equal(reader.status, 201)
      const r = await addUser(k, a.token, `reader@met-${kind}.test`, 'shop-reader')
      t.equal((await get('/v1/metrics/metrics-shop.orders', r.token)).status, 200)
      t.equal((await get('/v1/metrics/metrics-shop.nope')).status, 404)
    })

    t.test('validation errors name the parameter and the allowed values', async (t) => {
      const grain = await get('/v1/metrics/metrics-shop.net_sales?grain=fortnight')
      t.equal(grain.status, 400)
      t.equal(grain.body.code, 'MET_ERR_QUERY_INVALID')
      t.match(grain.body.detail, /^grain: .*allowed: day, week, month, quarter, year/)
      const dim = await get('/v1/metrics/metrics-shop.net_sales?groupBy=colour')
      t.match(dim.body.detail, /groupBy: "colour" is not a dimension.*allowed: country, customer, product/)
      const from = await get('/v1/metrics/metrics-shop.net_sales?from=2025-02-30')
      t.match(from.body.detail, /^from: /)
      const filter = await get('/v1/metrics/metrics-shop.net_sales?filter=%7B%22size%22%3A1%7D')
      t.match(filter.body.detail, /^filter.size: .*allowed: country, customer, product/)
    })
  })
}
