// The workflow runtime through the public API: chaining, branching, human tasks (roles, forms,
// SLA escalation, audit), waits for events with timeouts, timers, retries and compensation,
// version pinning, cancellation, metrics, and a kernel restart in the middle.
import t from 'tap'
import { join } from 'node:path'
import { readFile } from 'node:fs/promises'
import { buildPlugin } from '@trellis/plugin-sdk'
import { createKernel } from '../src/kernel.js'
import { loadConfig } from '../src/config.js'
import { createPlatformAdmin } from '../src/bootstrap.js'
import {
  DB_KINDS,
  durableDatabase,
  redisKeys,
  startTestKernel,
  createTenantWithAdmin,
  addUser,
  ADMIN,
  type TestKernel,
} from './helpers/test-kernel.js'
import { eventually } from './helpers/receiver.js'
import { ManualClock } from '../src/workflows/clock.js'
import { registerVersion } from './helpers/plugin-versions.js'

const dir = join(import.meta.dirname, 'fixtures', 'plugins', 'flows')
const manifest = JSON.parse(await readFile(join(dir, 'trellis.plugin.json'), 'utf8'))
const built = await buildPlugin({ dir, write: false })
const bundle = { manifest, code: built.code, sourceMap: built.sourceMap }
const FAST = { sweepMs: 100, stalledMs: 2000 }

async function setUp(k: TestKernel, slug: string) {
  const a = await createTenantWithAdmin(k, slug)
  const inst = await k.req('POST', '/v1/installations', {
    token: a.token,
    body: { plugin: '@acme/flows', version: '1.0.0', capabilities: manifest.capabilities },
  })
  if (inst.status !== 201) throw new Error(JSON.stringify(inst.body))
  for (const role of ['pricing_manager', 'sales_director'])
    await k.req('POST', '/v1/roles', { token: a.token, body: { name: role, permissions: ['users.read'] } })
  const pricing = await addUser(k, a.token, `pricing@${slug}.test`, 'pricing_manager')
  const director = await addUser(k, a.token, `director@${slug}.test`, 'sales_director')
  const member = await addUser(k, a.token, `member@${slug}.test`, 'tenant_member')
  return { a, installationId: inst.body.id as string, pricing, director, member }
}

const start = (k: TestKernel, token: string, workflow: string, input: unknown) =>
  k.req('POST', '/v1/workflows/instances', { token, body: { plugin: '@acme/flows', workflow, input } })
const instance = (k: TestKernel, token: string, id: string) =>
  k.req('GET', `/v1/workflows/instances/${id}`, { token }).then((r) => r.body)
async function until(k: TestKernel, token: string, id: string, status: string | string[]) {
  const want = Array.isArray(status) ? status : [status]
  return eventually(async () => {
    const i = await instance(k, token, id)
    return want.includes(i.status) ? i : undefined
  }, 20_000)
}

for (const kind of DB_KINDS)
  t.test(`workflows on ${kind}`, async (t) => {
    const k = await startTestKernel(t, kind, { plugins: { sandboxWorkers: 1 }, workflows: FAST })
    await registerVersion(k, bundle)
    const { a, installationId, pricing, director, member } = await setUp(k, 'wf-a')
    const b = await createTenantWithAdmin(k, 'wf-b')

    await t.test('a small discount runs straight through: chained and branched steps, one record each', async (t) => {
      const started = await start(k, a.token, 'order', { orderId: 'O-1', discount: 0.05 })
      t.equal(started.status, 201, JSON.stringify(started.body))
      t.equal(started.body.version, '1.0.0')
      const done = await until(k, a.token, started.body.id, 'completed')
      t.same(done.output, { confirmed: 'O-1', approvedBy: 'system' })
      t.same(
        done.history.map((h: any) => [h.seq, h.step, h.status]),
        [
          [1, 'reserve', 'completed'],
          [2, 'price', 'completed'],
          [3, 'confirm', 'completed'],
        ],
      )
      const events = await k.ownerSql(
        `select type from events where tenant_id = ? and type like 'workflow.instance.%' and data->>'instanceId' = ? order by id`,
        [a.orgId, started.body.id],
      )
      t.same(
        events.map((e: any) => e.type),
        ['workflow.instance.started', 'workflow.instance.completed'],
      )
      t.equal(
        (await k.req('GET', `/v1/workflows/instances/${started.body.id}`, { token: b.token })).status,
        404,
        'another tenant cannot see it',
      )
      t.equal(
        (await start(k, member.token, 'order', { orderId: 'x', discount: 0 })).status,
        403,
        'starting needs workflows.manage',
      )
      t.equal((await start(k, b.token, 'order', { orderId: 'x', discount: 0 })).body.code, 'PLG_ERR_NOT_INSTALLED')
      t.equal((await start(k, a.token, 'nothing', {})).body.code, 'WFL_ERR_WORKFLOW_NOT_FOUND')
    })

    await t.test(
      'a big discount waits for a person of the role; the form is validated; the decision is audited',
      async (t) => {
        const started = await start(k, a.token, 'order', { orderId: 'O-2', discount: 0.3 })
        const waiting = await until(k, a.token, started.body.id, 'waiting')
        t.equal(waiting.waitingFor.kind, 'task')
        const mine = await k.req('GET', '/v1/tasks', { token: pricing.token })
        const task = mine.body.items.find((x: any) => x.instanceId === started.body.id)
        t.ok(task, 'the pricing manager sees the task')
        t.equal(task.title, 'Approve a 30 % discount on O-2')
        t.same(task.outcomes, ['approve', 'reject'])
        t.same((await k.req('GET', '/v1/tasks', { token: member.token })).body.items, [], 'others do not')
        t.equal(
          (
            await k.req('POST', `/v1/tasks/${task.id}/complete`, {
              token: member.token,
              body: { outcome: 'approve', data: { note: 'x' } },
            })
          ).body.code,
          'WFL_ERR_NOT_YOUR_TASK',
        )
        t.equal(
          (
            await k.req('POST', `/v1/tasks/${task.id}/complete`, {
              token: pricing.token,
              body: { outcome: 'maybe', data: { note: 'x' } },
            })
          ).body.code,
          'WFL_ERR_OUTCOME_INVALID',
        )
        t.equal(
          (
            await k.req('POST', `/v1/tasks/${task.id}/complete`, {
              token: pricing.token,
              body: { outcome: 'approve', data: {} },
            })
          ).body.code,
          'WFL_ERR_FORM_INVALID',
        )
        t.equal((await k.req('POST', `/v1/tasks/${task.id}/claim`, { token: pricing.token })).body.status, 'claimed')
        const done = await k.req('POST', `/v1/tasks/${task.id}/complete`, {
          token: pricing.token,
          body: { outcome: 'approve', data: { note: 'long-standing customer' } },
        })
        t.equal(done.status, 200, JSON.stringify(done.body))
        t.equal(done.body.outcome, 'approve')
        const finished = await until(k, a.token, started.body.id, 'completed')
        t.equal(finished.output.approvedBy, pricing.user.id)
        t.equal(
          (
            await k.req('POST', `/v1/tasks/${task.id}/complete`, {
              token: pricing.token,
              body: { outcome: 'approve', data: { note: 'again' } },
            })
          ).body.code,
          'WFL_ERR_TASK_NOT_OPEN',
        )
        const [audit] = await k.ownerSql(
          `select actor_id, data from audit_log where tenant_id = ? and action = 'workflow.task.completed' and target_id = ?`,
          [a.orgId, task.id],
        )
        t.equal(audit.actor_id, pricing.user.id, 'who decided is audited')
        t.same([audit.data.outcome, audit.data.data], ['approve', { note: 'long-standing customer' }])
        const orders = await k.ownerSql(
          `select data from plugin_records where tenant_id = ? and collection = 'orders' and data->>'orderId' = 'O-2'`,
          [a.orgId],
        )
        t.equal(orders[0].data.note, 'long-standing customer')
      },
    )

    await t.test('a rejection fails the workflow and the compensation releases the reservation', async (t) => {
      const started = await start(k, a.token, 'order', { orderId: 'O-3', discount: 0.5 })
      await until(k, a.token, started.body.id, 'waiting')
      const task = (await k.req('GET', '/v1/tasks', { token: pricing.token })).body.items.find(
        (x: any) => x.instanceId === started.body.id,
      )
      await k.req('POST', `/v1/tasks/${task.id}/complete`, {
        token: pricing.token,
        body: { outcome: 'reject', data: { note: 'too much' } },
      })
      const failed = await until(k, a.token, started.body.id, 'failed')
      t.match(failed.error.message, /discount rejected by/)
      t.same(
        failed.history.map((h: any) => [h.step, h.status]),
        [
          ['reserve', 'completed'],
          ['price', 'completed'],
          ['reject', 'completed'],
          ['release', 'compensated'],
        ],
      )
      const [r] = await k.ownerSql(
        `select data from plugin_records where tenant_id = ? and collection = 'reservations' and data->>'orderId' = 'O-3'`,
        [a.orgId],
      )
      t.equal(r.data.status, 'released')
    })

    await t.test(
      'a failing step is retried, then the workflow fails and compensates; the failed attempts roll back their writes',
      async (t) => {
        const started = await start(k, a.token, 'order', { orderId: 'O-4', discount: 0, failConfirm: true })
        const failed = await until(k, a.token, started.body.id, 'failed')
        t.same(
          failed.history.filter((h: any) => h.step === 'confirm').map((h: any) => [h.attempt, h.status]),
          [
            [0, 'failed'],
            [1, 'failed'],
          ],
        )
        t.match(failed.error.code, /SBX_ERR_PLUGIN_ERROR/)
        t.same(
          await k.ownerSql(
            `select id from plugin_records where tenant_id = ? and collection = 'orders' and data->>'orderId' = 'O-4'`,
            [a.orgId],
          ),
          [],
          'no half-written order',
        )
        const events = await k.ownerSql(
          `select type from events where tenant_id = ? and data->>'instanceId' = ? and type = 'workflow.instance.failed'`,
          [a.orgId, started.body.id],
        )
        t.equal(events.length, 1)
      },
    )

    await t.test('an SLA miss escalates the task to the escalation role', async (t) => {
      const started = await start(k, a.token, 'order', { orderId: 'O-5', discount: 0.3, slaMs: 200 })
      await until(k, a.token, started.body.id, 'waiting')
      const escalated = await eventually(async () => {
        const items = (await k.req('GET', '/v1/tasks', { token: director.token })).body.items
        return items.find((x: any) => x.instanceId === started.body.id)
      }, 10_000)
      t.equal(escalated.role, 'sales_director')
      t.ok(escalated.escalatedAt)
      t.notOk(
        (await k.req('GET', '/v1/tasks', { token: pricing.token })).body.items.some(
          (x: any) => x.instanceId === started.body.id,
        ),
        'it left the pricing managers',
      )
      const ev = await k.ownerSql(
        `select count(*)::int as n from events where tenant_id = ? and type = 'workflow.task.escalated' and data->>'instanceId' = ?`,
        [a.orgId, started.body.id],
      )
      t.equal(ev[0].n, 1)
      await k.req('POST', `/v1/tasks/${escalated.id}/complete`, {
        token: director.token,
        body: { outcome: 'approve', data: { note: 'director says yes' } },
      })
      await until(k, a.token, started.body.id, 'completed')
    })

    await t.test(
      'an event starts a workflow, which waits for another event (matched on data) or times out',
      async (t) => {
        const emit = (type: string, data: unknown) =>
          k.req('POST', '/v1/x/flows/emit', { token: a.token, body: { type, data } })
        t.equal((await emit('flows.order.placed', { orderId: 'S-1' })).status, 202)
        const found = await eventually(async () => {
          const list = await k.req('GET', '/v1/workflows/instances?workflow=shipment', { token: a.token })
          return list.body.items.find((i: any) => i.input.event.data.orderId === 'S-1' && i.status === 'waiting')
        }, 20_000).catch(async (err) => {
          t.comment(
            JSON.stringify(
              await k.ownerSql(
                `select type, subject, dispatched_at, processed_at from events where tenant_id = ? and type like 'flows.%'`,
                [a.orgId],
              ),
            ),
          )
          t.comment(
            JSON.stringify(
              await k.ownerSql(
                `select workflow, status, step, error from workflow_instances where tenant_id = ? and workflow = 'shipment'`,
                [a.orgId],
              ),
            ),
          )
          throw err
        })
        await emit('flows.shipment.arrived', { orderId: 'S-other' })
        await emit('flows.shipment.arrived', { orderId: 'S-1' })
        const done = await until(k, a.token, found.id, 'completed')
        t.equal(done.output.arrived, 'S-1', 'only the matching event resumed it')
        await emit('flows.order.placed', { orderId: 'S-2', timeoutMs: 300 })
        const late = await eventually(async () => {
          const list = await k.req('GET', '/v1/workflows/instances?workflow=shipment&status=completed', {
            token: a.token,
          })
          return list.body.items.find((i: any) => i.output?.late === 'S-2')
        }, 20_000)
        t.same(late.output, { late: 'S-2', timedOut: true })
      },
    )

    await t.test('timers, cancellation, version pinning and metrics', async (t) => {
      const napped = await start(k, a.token, 'nap', { ms: 150 })
      const woke = await until(k, a.token, napped.body.id, 'completed')
      t.same(woke.output, { woke: true, dozed: 150 })
      const long = await start(k, a.token, 'nap', { ms: 600_000 })
      await until(k, a.token, long.body.id, 'waiting')
      const cancelled = await k.req('POST', `/v1/workflows/instances/${long.body.id}/cancel`, { token: a.token })
      t.equal(cancelled.body.status, 'cancelled')
      t.equal(
        (await k.req('POST', `/v1/workflows/instances/${long.body.id}/cancel`, { token: a.token })).body.code,
        'WFL_ERR_NOT_CANCELLABLE',
      )
      // An instance started on 1.0.0 finishes on 1.0.0 after the tenant upgrades.
      const pinned = await start(k, a.token, 'order', { orderId: 'P-1', discount: 0.9 })
      await until(k, a.token, pinned.body.id, 'waiting')
      await registerVersion(k, { ...bundle, manifest: { ...manifest, version: '1.1.0' } })
      t.equal(
        (
          await k.req('POST', `/v1/installations/${installationId}/upgrade`, {
            token: a.token,
            body: { version: '1.1.0' },
          })
        ).body.version,
        '1.1.0',
      )
      const task = (await k.req('GET', '/v1/tasks', { token: pricing.token })).body.items.find(
        (x: any) => x.instanceId === pinned.body.id,
      )
      await k.req('POST', `/v1/tasks/${task.id}/complete`, {
        token: pricing.token,
        body: { outcome: 'approve', data: { note: 'ok' } },
      })
      const done = await until(k, a.token, pinned.body.id, 'completed')
      t.equal(done.version, '1.0.0')
      const inv = await k.req('GET', `/v1/installations/${installationId}/invocations?limit=200`, { token: a.token })
      const confirmRun = inv.body.items.find(
        (i: any) => i.entryName === 'order.confirm' && i.startedAt >= task.createdAt,
      )
      t.equal(confirmRun.version, '1.0.0', 'its later steps ran the version it started on')
      const metrics = await k.req('GET', '/v1/workflows/metrics', { token: a.token })
      const order = metrics.body.workflows.find((w: any) => w.workflow === 'order')
      t.ok(order.started >= 6)
      t.ok(order.failed >= 2)
      t.ok(order.humanHandoffs >= 4)
      t.ok(order.slaBreaches >= 1)
      t.ok(order.waitingOnPeopleMs.total > 0)
      t.ok(order.latencyMs.p95 >= order.latencyMs.p50)
      t.ok(order.steps.find((s: any) => s.step === 'confirm').failures >= 2)
      const prom = await k.req('GET', '/metrics')
      t.match(
        prom.body,
        /trellis_workflow_instances_total\{plugin="@acme\/flows",workflow="order",outcome="completed"\} \d+/,
      )
      t.match(prom.body, /trellis_workflow_tasks_total\{plugin="@acme\/flows",workflow="order",event="escalated"\} \d+/)
    })
  })

// The runtime's clock is the test's: "not before a period has passed" holds however slow the
// machine is, and each sweep the test causes has finished when the clock's move resolves.
for (const kind of DB_KINDS)
  t.test(`a workflow with start.everyMs starts on its schedule, once per period, on ${kind}`, async (t) => {
    const clock = new ManualClock()
    const k = await startTestKernel(t, kind, {
      plugins: { sandboxWorkers: 1 },
      workflows: { ...FAST, clock, sweepMs: 1, scheduleScanMs: 1 },
    })
    await registerVersion(k, bundle)
    const a = await createTenantWithAdmin(k, 'wf-tick')
    const inst = await k.req('POST', '/v1/installations', {
      token: a.token,
      body: { plugin: '@acme/flows', version: '1.0.0', capabilities: manifest.capabilities },
    })
    t.equal(inst.status, 201)
    const runs = async () =>
      (await k.req('GET', '/v1/workflows/instances?workflow=tick', { token: a.token })).body.items as any[]
    const completed = (n: number) =>
      eventually(async () => {
        const all = await runs()
        return all.length === n && all.every((i) => i.status === 'completed') && all
      }, 20_000)

    await clock.advance(1) // the sweep that first sees the installation
    const firstSeen = clock.now()
    const [schedule] = await k.ownerSql(
      `select next_at from workflow_schedules where tenant_id = ? and workflow = 'tick'`,
      [a.orgId],
    )
    t.equal(new Date(schedule.next_at).getTime(), firstSeen + 60_000, 'the first run is a period after installation')
    t.same(await runs(), [], 'nothing ran at installation')
    await clock.advance(59_999)
    t.same(await runs(), [], 'nor a millisecond before the period ends')
    await clock.advance(1)
    const [ran] = await completed(1)
    t.equal(ran.output.ticked, true)
    t.equal(ran.startedBy, 'schedule')
    await clock.advance(3 * 60_000)
    t.equal((await completed(2)).length, 2, 'three periods passed without a sweep start one run, not three')
  })

// PostgreSQL keeps its database; the embedded database keeps its directory across the restart.
for (const kind of DB_KINDS)
  t.test(`a kernel restart in the middle on ${kind}: waiting and interrupted instances go on`, async (t) => {
    const { env, embeddedDir } = await durableDatabase(t, kind)
    const boot = () =>
      createKernel({
        config: loadConfig(env),
        ...(embeddedDir ? { embeddedDir } : {}),
        migrate: true,
        rateLimitPerMinute: 100_000,
        plugins: { sandboxWorkers: 1 },
        workflows: FAST,
      })
    let kernel = await boot()
    await createPlatformAdmin(kernel.ctx, ADMIN)
    const req = async (method: string, url: string, opts: { token?: string; body?: unknown } = {}) => {
      const res = await kernel.app.inject({
        method: method as 'GET',
        url,
        headers: {
          ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
          ...(opts.body ? { 'content-type': 'application/json' } : {}),
        },
        ...(opts.body ? { payload: JSON.stringify(opts.body) } : {}),
      })
      return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : null }
    }
    const login = async (email: string, password: string) =>
      (await req('POST', '/v1/auth/login', { body: { email, password } })).body.accessToken as string
    const fake = { req, kernel } as unknown as TestKernel
    fake.ownerSql = (text: string, params: unknown[] = []) => kernel.ctx.db.asOwner((tx) => tx.sql(text, params))
    fake.kernel = kernel
    const admin = await login(ADMIN.email, ADMIN.password)
    await req('POST', '/v1/tenants', {
      token: admin,
      body: {
        name: 'Restart',
        slug: 'restart',
        admin: { email: 'admin@restart.test', name: 'Admin', password: 'password-of-restart' },
      },
    })
    let token = await login('admin@restart.test', 'password-of-restart')
    await registerVersion(fake, bundle)
    t.equal(
      (
        await req('POST', '/v1/installations', {
          token,
          body: { plugin: '@acme/flows', version: '1.0.0', capabilities: manifest.capabilities },
        })
      ).status,
      201,
    )
    await req('POST', '/v1/roles', { token, body: { name: 'pricing_manager', permissions: ['users.read'] } })
    const pmInvite = await req('POST', '/v1/invitations', {
      token,
      body: { email: 'pm@restart.test', role: 'pricing_manager' },
    })
    await req('POST', '/v1/invitations/accept', {
      body: { token: pmInvite.body.acceptToken, name: 'PM', password: 'password-of-pm-restart' },
    })
    const waiting = (
      await req('POST', '/v1/workflows/instances', {
        token,
        body: { plugin: '@acme/flows', workflow: 'order', input: { orderId: 'R-1', discount: 0.4 } },
      })
    ).body
    const napping = (
      await req('POST', '/v1/workflows/instances', {
        token,
        body: { plugin: '@acme/flows', workflow: 'nap', input: { ms: 1500 } },
      })
    ).body
    await eventually(
      async () => (await req('GET', `/v1/workflows/instances/${waiting.id}`, { token })).body.status === 'waiting',
      20_000,
    )

    await kernel.close()
    kernel = await boot()
    fake.kernel = kernel
    token = await login('admin@restart.test', 'password-of-restart')
    const pm = await login('pm@restart.test', 'password-of-pm-restart')
    const woke = await eventually(async () => {
      const i = (await req('GET', `/v1/workflows/instances/${napping.id}`, { token })).body
      return i.status === 'completed' ? i : undefined
    }, 20_000)
    t.same(woke.output, { woke: true, dozed: 1500 }, 'the timer set before the restart fired after it')
    const task = (await req('GET', '/v1/tasks', { token: pm })).body.items.find((x: any) => x.instanceId === waiting.id)
    t.ok(task, 'the task survived the restart')
    await req('POST', `/v1/tasks/${task.id}/complete`, {
      token: pm,
      body: { outcome: 'approve', data: { note: 'after restart' } },
    })
    const done = await eventually(async () => {
      const i = (await req('GET', `/v1/workflows/instances/${waiting.id}`, { token })).body
      return i.status === 'completed' ? i : undefined
    }, 20_000)
    // A step attempt that failed and was retried (a loaded machine can time one out) is in the
    // history as `failed`; what must hold is that each step completed exactly once.
    t.same(
      done.history.filter((h: any) => h.status === 'completed').map((h: any) => h.step),
      ['reserve', 'price', 'confirm'],
      'no step skipped or doubled',
    )
    await kernel.close()
  })

// The kernel as production runs it: REDIS_URL set, so its event and step queues are BullMQ.
for (const kind of DB_KINDS)
  t.test(`steps run as BullMQ jobs when Redis is configured, on ${kind}`, async (t) => {
    const k = await startTestKernel(
      t,
      { db: kind, queue: 'bullmq', name: `${kind} + bullmq` },
      {
        plugins: { sandboxWorkers: 1 },
        workflows: FAST,
      },
    )
    await registerVersion(k, bundle)
    const { a, pricing } = await setUp(k, 'wf-bull')
    const quick = await start(k, a.token, 'order', { orderId: 'B-1', discount: 0 })
    t.same((await until(k, a.token, quick.body.id, 'completed')).output, { confirmed: 'B-1', approvedBy: 'system' })
    const asked = await start(k, a.token, 'order', { orderId: 'B-2', discount: 0.4 })
    await until(k, a.token, asked.body.id, 'waiting')
    const task = (await k.req('GET', '/v1/tasks', { token: pricing.token })).body.items.find(
      (x: any) => x.instanceId === asked.body.id,
    )
    await k.req('POST', `/v1/tasks/${task.id}/complete`, {
      token: pricing.token,
      body: { outcome: 'approve', data: { note: 'via Redis' } },
    })
    t.equal((await until(k, a.token, asked.body.id, 'completed')).status, 'completed')
    const retried = await start(k, a.token, 'order', { orderId: 'B-3', discount: 0, failConfirm: true })
    t.equal(
      (await until(k, a.token, retried.body.id, 'failed')).history.filter((h: any) => h.step === 'confirm').length,
      2,
      'a delayed retry ran',
    )
    t.ok(
      (await redisKeys(k.redisPrefix!)).some((key) => key.startsWith(`${k.redisPrefix}:trellis-events-workflows:`)),
      'the steps went through the BullMQ queue in Redis',
    )
  })
