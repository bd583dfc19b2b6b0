// Late workflow instances (GET /v1/insights/late-instances): each running instance of a workflow
// judged against the durations of the completed ones — known durations give known probabilities;
// another tenant's instances count for nobody else; workflows.manage is required.
import t from 'tap'
import { join } from 'node:path'
import { readFile } from 'node:fs/promises'
import { randomUUID } from 'node:crypto'
import { buildPlugin } from '@trellis/plugin-sdk'
import { ManualClock } from '../src/workflows/clock.js'
import { addUser, createTenantWithAdmin, startTestKernel } from './helpers/test-kernel.js'
import { registerVersion } from './helpers/plugin-versions.js'

const dir = join(import.meta.dirname, 'fixtures', 'plugins', 'metrics-shop')
const manifest = JSON.parse(await readFile(join(dir, 'trellis.plugin.json'), 'utf8'))
const built = await buildPlugin({ dir, write: false })
const NOW = Date.parse('2025-06-01T00:00:00Z')
const DAY = 86_400_000

const clock = new ManualClock(NOW)
const k = await startTestKernel(t, 'postgres', { plugins: { sandboxWorkers: 1 }, workflows: { clock } })
const version = await registerVersion(k, { manifest, code: built.code, sourceMap: built.sourceMap })
const a = await createTenantWithAdmin(k, 'late-a')
const b = await createTenantWithAdmin(k, 'late-b')
const installs: Record<string, string> = {}
for (const tenant of [a, b]) {
  const inst = await k.req('POST', '/v1/installations', {
    token: tenant.token,
    body: { plugin: manifest.name, version: manifest.version, capabilities: manifest.capabilities },
  })
  if (inst.status !== 201) throw new Error(JSON.stringify(inst.body))
  installs[tenant.orgId] = inst.body.id
}

/** An instance of `workflow` started `startDaysAgo` before NOW; completed after `days` when given. */
const instance = async (tenant: string, workflow: string, startDaysAgo: number, days?: number, status?: string) => {
  const id = randomUUID()
  const started = new Date(NOW - startDaysAgo * DAY).toISOString()
  const finished = days === undefined ? null : new Date(NOW - startDaysAgo * DAY + days * DAY).toISOString()
  await k.ownerSql(
    `insert into workflow_instances (id, tenant_id, installation_id, plugin, version_id, version, workflow, status, started_by, started_at, updated_at, finished_at, run_at)
     values (?::uuid, ?::uuid, ?::uuid, ?, ?::uuid, '1.0.0', ?, ?, 'test', ?::timestamptz, ?::timestamptz, ?::timestamptz, 'infinity')`,
    [
      id,
      tenant,
      installs[tenant],
      manifest.name,
      version.id,
      workflow,
      status ?? (days === undefined ? 'waiting' : 'completed'),
      started,
      finished ?? started,
      finished,
    ],
  )
  return id
}

// Tenant A: ten onboardings completed in 10, 20, … 100 days; four open for 5, 45, 95 and 120 days.
for (let i = 1; i <= 10; i++) await instance(a.orgId, 'onboarding', 400 + i, i * 10)
const fresh = await instance(a.orgId, 'onboarding', 5)
const overdue = await instance(a.orgId, 'onboarding', 45)
const old = await instance(a.orgId, 'onboarding', 95, undefined, 'running')
const unprecedented = await instance(a.orgId, 'onboarding', 120)
await instance(a.orgId, 'onboarding', 3, undefined, 'failed')
await instance(a.orgId, 'other', 2)
// Tenant B: fast onboardings only, and one open.
for (let i = 1; i <= 3; i++) await instance(b.orgId, 'onboarding', 300, 1)
const bOpen = await instance(b.orgId, 'onboarding', 0.5)

const url = (q: string) => `/v1/insights/late-instances?plugin=${encodeURIComponent(manifest.name)}&${q}`

t.test('each open instance against the completed durations', async (t) => {
  const r = await k.req('GET', url('workflow=onboarding&due=30'), { token: a.token })
  t.equal(r.status, 200, JSON.stringify(r.body))
  t.match(r.body, {
    dueDays: 30,
    asOf: '2025-06-01T00:00:00.000Z',
    method: { name: 'empirical conditional survival', completed: 10 },
    completed: { count: 10, median: 55, max: 100 },
  })
  const by = Object.fromEntries(r.body.running.map((x: any) => [x.instanceId, x]))
  t.same(
    Object.keys(by).sort(),
    [fresh, overdue, old, unprecedented].sort(),
    'waiting and running; not failed, not another workflow',
  )
  // Open 5 days: all ten lasted longer; seven of them longer than 30 days.
  t.match(by[fresh], { elapsedDays: 5, overdue: false, comparable: 10, probabilityLate: 0.7, expectedDays: 55 })
  // Open 45 days, past the due time: late for certain; the six that lasted longer took 75 days at the median.
  t.match(by[overdue], { elapsedDays: 45, overdue: true, comparable: 6, probabilityLate: 1, expectedDays: 75 })
  t.match(by[old], { elapsedDays: 95, comparable: 1, probabilityLate: 1, expectedDays: 100 })
  // Open longer than any completed one: no evidence either way.
  t.match(by[unprecedented], { elapsedDays: 120, comparable: 0, probabilityLate: null, expectedDays: null })
  t.equal(r.body.running.at(-1).instanceId, unprecedented, 'riskiest first, the unjudged last')

  const lenient = await k.req('GET', url('workflow=onboarding&due=85'), { token: a.token })
  const fresh85 = lenient.body.running.find((x: any) => x.instanceId === fresh)
  t.equal(fresh85.probabilityLate, 0.2, 'two of ten lasted longer than 85 days')
})

t.test("a tenant's distribution is its own", async (t) => {
  const r = await k.req('GET', url('workflow=onboarding&due=2'), { token: b.token })
  t.equal(r.status, 200)
  t.match(r.body.completed, { count: 3, median: 1, max: 1 })
  t.same(
    r.body.running.map((x: any) => [x.instanceId, x.comparable, x.probabilityLate]),
    [[bOpen, 3, 0]],
  )
})

t.test('refused: no permission, bad input', async (t) => {
  await k.req('POST', '/v1/roles', { token: a.token, body: { name: 'shop-reader', permissions: ['shop.read'] } })
  const reader = await addUser(k, a.token, 'reader@late.test', 'shop-reader')
  const denied = await k.req('GET', url('workflow=onboarding&due=30'), { token: reader.token })
  t.equal(denied.status, 403)
  t.equal(denied.body.code, 'AUTH_ERR_FORBIDDEN')
  for (const q of ['workflow=onboarding', 'workflow=onboarding&due=0', 'workflow=onboarding&due=x', 'due=30']) {
    const r = await k.req('GET', url(q), { token: a.token })
    t.equal(r.status, 400, q)
    t.equal(r.body.code, 'MET_ERR_QUERY_INVALID', q)
  }
})

t.test('as the clock moves, elapsed time grows', async (t) => {
  await clock.advance(30 * DAY)
  const r = await k.req('GET', url('workflow=onboarding&due=30'), { token: a.token })
  const f = r.body.running.find((x: any) => x.instanceId === fresh)
  t.match(f, { elapsedDays: 35, overdue: true, comparable: 7, probabilityLate: 1 })
})
