// A breached alert rule that names a role opens a task for that role, through the insights
// plugin's workflow started by the kernel's insights.alert.breached: the person holding the role
// sees the metric, the period, the value and the threshold, and closes it. A rule without a role
// opens no task; people of other roles and other tenants never see it. The rule's SLA is the
// task's deadline.
import t from 'tap'
import { ManualClock } from '../../../core/src/workflows/clock.js'
import { DB_KINDS, addUser, createTenantWithAdmin, startTestKernel } from '../../../core/test/helpers/test-kernel.js'
import { eventually } from '../../../core/test/helpers/receiver.js'
import { lintErp } from '../../support/kernel.js'
import { installInsights } from './install-insights.js'

const HOUR = 3_600_000
const START = Date.parse('2025-03-02T12:00:00Z')

/** Invoiced orders of 2025-03-01: 4 × 20.00 each, 10 % off the second — 80 + 72 = 152.00. */
const orders = [
  { discount: '0.0000', number: 'A-1' },
  { discount: '0.1000', number: 'A-2' },
].map(({ number, discount }) => ({
  number,
  customer: 'ALF',
  status: 'invoiced',
  orderDate: '2025-03-01',
  lines: [{ line: 1, sku: 'P-1', quantity: 4, listPrice: '20.00', unitPrice: '20.00', discount }],
  exceptions: [],
  history: [],
}))

t.test('the workflow and its subscription pass the plugin lint', async (t) => {
  t.same((await lintErp('insights')).errors, [])
})

for (const kind of DB_KINDS) {
  t.test(kind, async (t) => {
    const clock = new ManualClock(START)
    const k = await startTestKernel(t, kind, {
      plugins: { sandboxWorkers: 1 },
      workflows: { clock },
      insights: { everyMs: HOUR },
    })
    const a = await createTenantWithAdmin(k, `atask-a-${kind}`)
    const b = await createTenantWithAdmin(k, `atask-b-${kind}`)
    await installInsights(k, [a.token, b.token])
    await k.ownerSql(
      `insert into plugin_records (tenant_id, plugin, collection, id, data)
       select ?::uuid, '@trellis/orders', 'orders', gen_random_uuid(), x from jsonb_array_elements(?::jsonb) x`,
      [a.orgId, JSON.stringify(orders)],
    )
    const post = (url: string, body: unknown, token = a.token) => k.req('POST', url, { token, body })
    const get = (url: string, token = a.token) => k.req('GET', url, { token })
    for (const role of ['ops', 'clerk'])
      t.equal((await post('/v1/roles', { name: role, permissions: ['orders.read'] })).status, 201)
    const ops = await addUser(k, a.token, `ops@atask-${kind}.test`, 'ops')
    const clerk = await addUser(k, a.token, `clerk@atask-${kind}.test`, 'clerk')
    const rule = { metric: 'orders.net_sales', kind: 'threshold', grain: 'day', op: 'above', threshold: 100 }
    const noRole = await post('/v1/insights/alert-rules', { ...rule, taskSlaHours: 4 })
    t.equal(noRole.status, 400, 'a deadline needs a role')
    t.equal(noRole.body.code, 'MET_ERR_RULE_INVALID')
    const withTask = await post('/v1/insights/alert-rules', { ...rule, taskRole: 'ops', taskSlaHours: 4 })
    t.equal(withTask.status, 201, JSON.stringify(withTask.body))
    t.equal(withTask.body.taskSlaHours, 4)
    const without = await post('/v1/insights/alert-rules', { ...rule, threshold: 50 })
    t.equal(without.status, 201, JSON.stringify(without.body))

    await clock.advance(HOUR)
    const finished = await eventually(async () => {
      const r = await get('/v1/workflows/instances?plugin=@trellis/insights&workflow=alertTask')
      const items = r.body.items as any[]
      return items.length === 2 && items.every((i) => i.status !== 'running') && items
    }, 30_000)

    t.test('the role holder sees the task: metric, period, value, threshold', async (t) => {
      const inbox = (await get('/v1/tasks', ops.token)).body.items
      t.equal(inbox.length, 1, JSON.stringify(inbox))
      const task = inbox[0]
      t.equal(task.plugin, '@trellis/insights')
      t.equal(task.role, 'ops')
      t.equal(task.title, 'orders.net_sales above 100 for day 2025-03-01: 152')
      t.equal(
        task.dueAt,
        new Date(START + HOUR + 4 * HOUR).toISOString(),
        "due 4 hours (the rule's SLA) after it opened",
      )
      t.match(task.data, {
        metric: 'orders.net_sales',
        kind: 'threshold',
        grain: 'day',
        period: '2025-03-01',
        value: 152,
        op: 'above',
        threshold: 100,
        ruleId: withTask.body.id,
      })
      const breaches = (await get('/v1/events?type=insights.alert.breached&limit=10')).body.items
      t.same(
        breaches.map((e: any) => e.data.ruleId).sort(),
        [withTask.body.id, without.body.id].sort(),
        'both rules breached',
      )
      const noRole = finished.find((i: any) => i.status === 'completed')
      t.match(noRole.output, { task: false }, 'a rule without a role opens no task')
      t.equal(finished.filter((i: any) => i.status === 'waiting').length, 1)

      const done = await post(`/v1/tasks/${task.id}/complete`, { outcome: 'resolved' }, ops.token)
      t.equal(done.status, 200, JSON.stringify(done.body))
      const closed = await eventually(async () => {
        const r = await get(`/v1/workflows/instances/${task.instanceId}`)
        return r.body.status === 'completed' && r.body
      }, 30_000)
      t.match(closed.output, { outcome: 'resolved', by: ops.user.id })
      t.same((await get('/v1/tasks', ops.token)).body.items, [], 'the inbox is empty again')
    })

    t.test('other roles and other tenants never see it', async (t) => {
      t.same((await get('/v1/tasks', clerk.token)).body.items, [])
      t.same((await get('/v1/tasks?status=completed', clerk.token)).body.items, [])
      t.same((await get('/v1/tasks?status=completed', b.token)).body.items, [])
      t.same((await get('/v1/workflows/instances?plugin=@trellis/insights', b.token)).body.items, [])
    })
  })
}
