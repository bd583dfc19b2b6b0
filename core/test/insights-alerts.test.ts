// Alert rules and stored anomalies, run by the scheduled insights pass on the workflow clock: a
// daily order count with a weekly pattern, a spike planted on the last complete day (carried by
// one customer) and a huge day still running. The spike is stored once with its baseline, score
// and contributors, emits insights.anomaly.detected and breaches both rules; the running day is
// judged only once it is over. Rules are set only on metrics the caller may read; tenants never
// see each other's.
import t from 'tap'
import { join } from 'node:path'
import { readFile } from 'node:fs/promises'
import { buildPlugin } from '@trellis/plugin-sdk'
import { median } from 'simple-statistics'
import { ManualClock } from '../src/workflows/clock.js'
import { DB_KINDS, addUser, createTenantWithAdmin, startTestKernel } from './helpers/test-kernel.js'
import { registerVersion } from './helpers/plugin-versions.js'

const dir = join(import.meta.dirname, 'fixtures', 'plugins', 'metrics-shop')
const manifest = JSON.parse(await readFile(join(dir, 'trellis.plugin.json'), 'utf8'))
const built = await buildPlugin({ dir, write: false })

const HOUR = 3_600_000
const START = Date.parse('2025-03-01T12:00:00Z')
// Orders per weekday (Monday first), each day moved by -1, 0 or +1 (a fixed pseudo-random
// draw), so the residuals have a spread; this draw leaves every ordinary day's |score| under 1.5.
const WEEK = [4, 6, 5, 7, 8, 3, 2]
const day = (d: Date) => d.toISOString().slice(0, 10)

/** mulberry32: the same draw on every run. */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

/** Orders per day from 2025-01-13 to 2025-03-01: the pattern, the spike (+15 by DUM) on 02-28, +60 on 03-01. */
function plan(): Map<string, Array<{ customer: string }>> {
  const out = new Map<string, Array<{ customer: string }>>()
  const r = rng(2)
  for (
    let t = Date.parse('2025-01-13T00:00:00Z'), i = 0;
    t <= Date.parse('2025-03-01T00:00:00Z');
    t += 86_400_000, i++
  ) {
    const d = new Date(t)
    const base = WEEK[(d.getUTCDay() + 6) % 7]! + Math.floor(r() * 3) - 1
    const list = Array.from({ length: base }, (_, j) => ({ customer: ['ALF', 'BON', 'CHO'][(i + j) % 3]! }))
    if (day(d) === '2025-02-28') list.push(...Array.from({ length: 15 }, () => ({ customer: 'DUM' })))
    if (day(d) === '2025-03-01') list.push(...Array.from({ length: 60 }, () => ({ customer: 'ALF' })))
    out.set(day(d), list)
  }
  return out
}

for (const kind of DB_KINDS) {
  t.test(kind, async (t) => {
    const clock = new ManualClock(START)
    const k = await startTestKernel(t, kind, {
      plugins: { sandboxWorkers: 1 },
      workflows: { clock },
      insights: { everyMs: HOUR },
    })
    await registerVersion(k, { manifest, code: built.code, sourceMap: built.sourceMap })
    const a = await createTenantWithAdmin(k, `alert-a-${kind}`)
    const b = await createTenantWithAdmin(k, `alert-b-${kind}`)
    const days = plan()
    const orders = [...days].flatMap(([d, list]) =>
      list.map((o, j) => ({
        number: `${d}-${j}`,
        customer: o.customer,
        status: 'placed',
        orderDate: d,
        requiredDate: d,
        lines: [],
      })),
    )
    for (const tenant of [a, b]) {
      const inst = await k.req('POST', '/v1/installations', {
        token: tenant.token,
        body: { plugin: manifest.name, version: manifest.version, capabilities: manifest.capabilities },
      })
      t.equal(inst.status, 201, JSON.stringify(inst.body))
    }
    for (let i = 0; i < orders.length; i += 60) {
      const seeded = await k.req('POST', '/v1/x/metrics-shop/seed', {
        token: a.token,
        body: { orders: orders.slice(i, i + 60) },
      })
      t.equal(seeded.status, 201, JSON.stringify(seeded.body))
    }
    const get = (url: string, token = a.token) => k.req('GET', url, { token })
    const post = (url: string, body: unknown, token = a.token) => k.req('POST', url, { token, body })
    const events = async (type: string, token = a.token) =>
      (await get(`/v1/events?type=${type}&limit=100`, token)).body.items
    const rules: Record<string, string> = {}

    t.test('who may set a rule, and bad input', async (t) => {
      await post('/v1/roles', { name: 'shop-writer', permissions: ['shop.write'] })
      await post('/v1/roles', { name: 'shop-reader', permissions: ['shop.read'] })
      const writer = await addUser(k, a.token, `writer@alert-${kind}.test`, 'shop-writer')
      const reader = await addUser(k, a.token, `reader@alert-${kind}.test`, 'shop-reader')
      const rule = { metric: 'metrics-shop.orders', kind: 'threshold', grain: 'day', op: 'above', threshold: 15 }
      const denied = await post('/v1/insights/alert-rules', { ...rule, kind: 'nonsense' }, writer.token)
      t.equal(denied.status, 403, 'permission before validation')
      t.equal(denied.body.code, 'AUTH_ERR_FORBIDDEN')
      const tasks = await post('/v1/insights/alert-rules', { ...rule, taskRole: 'ops' }, reader.token)
      t.equal(tasks.status, 403, 'sending tasks to a role needs workflows.manage')
      for (const [body, field] of [
        [{ ...rule, kind: undefined }, 'kind'],
        [{ ...rule, op: undefined }, 'op'],
        [{ ...rule, grain: 'fortnight' }, 'grain'],
        [{ metric: rule.metric, kind: 'anomaly', grain: 'day', by: 'colour' }, 'by'],
        [{ metric: rule.metric, kind: 'anomaly', grain: 'day', threshold: 3 }, 'threshold'],
        [{ ...rule, filter: { colour: 'red' } }, 'filter'],
      ] as const) {
        const r = await post('/v1/insights/alert-rules', body)
        t.equal(r.status, 400, field)
        t.equal(r.body.code, 'MET_ERR_RULE_INVALID')
        t.match(r.body.detail, new RegExp(`^${field}: `))
      }
      t.equal(
        (await post('/v1/insights/alert-rules', { ...rule, metric: 'metrics-shop.nope' })).body.code,
        'MET_ERR_NOT_FOUND',
      )
      t.same((await get('/v1/insights/alert-rules')).body.items, [], 'nothing was written')
      const mine = await post('/v1/insights/alert-rules', rule, reader.token)
      t.equal(mine.status, 201, 'a reader of the metric may watch it')
      rules.threshold = mine.body.id
      const watch = await post('/v1/insights/alert-rules', {
        metric: 'metrics-shop.orders',
        kind: 'anomaly',
        grain: 'day',
        season: 7,
        by: 'customer',
        minVolume: 1,
        taskRole: 'ops',
      })
      t.equal(watch.status, 201, JSON.stringify(watch.body))
      rules.anomaly = watch.body.id
      t.equal((await k.req('DELETE', `/v1/insights/alert-rules/${rules.anomaly}`, { token: reader.token })).status, 403)
      t.same(
        (await get('/v1/insights/alert-rules', writer.token)).body.items,
        [],
        'rules on metrics one may not read are not shown',
      )
    })

    t.test('the scheduled run stores the spike once, with baseline, score and contributors', async (t) => {
      t.same((await get('/v1/insights/anomalies')).body.items, [], 'nothing has run yet')
      await clock.advance(HOUR)
      const ran = (await get('/v1/insights/alert-rules')).body.items
      t.ok(
        ran.every((r: any) => r.lastRunAt === new Date(START + HOUR).toISOString() && r.lastError === null),
        JSON.stringify(ran),
      )
      const stored = (await get('/v1/insights/anomalies')).body.items
      t.same(
        stored.map((x: any) => x.period),
        ['2025-02-28'],
        'the spike alone — not the bigger day still running',
      )
      const spike = stored[0]
      const count = (d: string) => days.get(d)!.length
      t.equal(spike.value, count('2025-02-28'))
      t.equal(spike.baseline, median(['2025-02-21', '2025-02-14', '2025-02-07'].map(count)))
      t.ok(spike.score > 3.5, `score ${spike.score}`)
      t.equal(spike.by, 'customer')
      t.equal(spike.contributors[0].value, 'DUM')
      t.equal(spike.contributors[0].change, 15)
      const detected = await events('insights.anomaly.detected')
      t.equal(detected.length, 1)
      t.match(detected[0].data, {
        anomalyId: spike.id,
        ruleId: rules.anomaly,
        period: '2025-02-28',
        value: spike.value,
      })
      const breached = await events('insights.alert.breached')
      t.same(breached.map((e: any) => e.data.ruleId).sort(), [rules.threshold, rules.anomaly].sort())
      t.match(breached.find((e: any) => e.data.ruleId === rules.anomaly).data, {
        kind: 'anomaly',
        period: '2025-02-28',
        anomalyId: spike.id,
        taskRole: 'ops',
      })
      t.match(breached.find((e: any) => e.data.ruleId === rules.threshold).data, {
        kind: 'threshold',
        op: 'above',
        threshold: 15,
        value: count('2025-02-28'),
      })
    })

    t.test('the next run on the same day adds nothing', async (t) => {
      await clock.advance(HOUR)
      const ran = (await get('/v1/insights/alert-rules')).body.items
      t.ok(
        ran.every((r: any) => r.lastRunAt === new Date(START + 2 * HOUR).toISOString()),
        'the run happened',
      )
      t.equal((await get('/v1/insights/anomalies')).body.items.length, 1)
      t.equal((await events('insights.anomaly.detected')).length, 1)
      t.equal((await events('insights.alert.breached')).length, 2)
    })

    t.test('once the running day is over it is judged', async (t) => {
      await clock.set(Date.parse('2025-03-02T01:00:00Z'))
      const stored = (await get('/v1/insights/anomalies')).body.items
      t.same(
        stored.map((x: any) => x.period),
        ['2025-03-01', '2025-02-28'],
      )
      t.equal(stored[0].value, days.get('2025-03-01')!.length)
      t.equal(stored[0].contributors[0].value, 'ALF')
      const breached = await events('insights.alert.breached')
      t.equal(breached.length, 4, 'each rule breached once more, for 2025-03-01')
    })

    t.test('isolation: another tenant sees none of it and cannot remove a rule', async (t) => {
      t.same((await get('/v1/insights/alert-rules', b.token)).body.items, [])
      t.same((await get('/v1/insights/anomalies', b.token)).body.items, [])
      t.same(await events('insights.anomaly.detected', b.token), [])
      const del = await k.req('DELETE', `/v1/insights/alert-rules/${rules.anomaly}`, { token: b.token })
      t.equal(del.body.code, 'MET_ERR_RULE_NOT_FOUND')
      const peek = await k.appSql(b.orgId, 'select count(*)::int as n from insight_anomalies')
      t.equal(peek[0].n, 0, 'row-level security')
      t.equal((await k.req('DELETE', `/v1/insights/alert-rules/${rules.anomaly}`, { token: a.token })).status, 204)
      t.same((await get('/v1/insights/anomalies')).body.items, [], "a removed rule's anomalies go with it")
    })
  })
}
