// The task inbox's filters (GET /v1/tasks?assignee=me&role=&plugin=&overdue=): each returns
// exactly the tasks it names among those the caller sees unfiltered — a filter only narrows,
// it never reveals another user's, another role's or another tenant's task. `overdue` is
// judged by the workflow runtime's clock (a ManualClock here, set well in the past, so the
// wall clock would call every SLA missed). Filters combine and page with the cursor.
import t from 'tap'
import { join } from 'node:path'
import { readFile } from 'node:fs/promises'
import { buildPlugin } from '@trellis/plugin-sdk'
import { ManualClock } from '../src/workflows/clock.js'
import { DB_KINDS, addUser, createTenantWithAdmin, startTestKernel } from './helpers/test-kernel.js'
import { eventually } from './helpers/receiver.js'
import { registerVersion } from './helpers/plugin-versions.js'

const dir = join(import.meta.dirname, 'fixtures', 'plugins', 'flows')
const manifest = JSON.parse(await readFile(join(dir, 'trellis.plugin.json'), 'utf8'))
const built = await buildPlugin({ dir, write: false })
const bundle = { manifest, code: built.code, sourceMap: built.sourceMap }
const T0 = Date.parse('2026-01-05T09:00:00Z')
const DAY = 24 * 3_600_000

for (const kind of DB_KINDS)
  t.test(`task inbox filters on ${kind}`, async (t) => {
    const clock = new ManualClock(T0)
    // No sweep while the test runs (a day of the clock): a missed SLA stays missed, not escalated.
    const k = await startTestKernel(t, kind, { plugins: { sandboxWorkers: 1 }, workflows: { clock, sweepMs: DAY } })
    await registerVersion(k, bundle)
    const a = await createTenantWithAdmin(k, `inbox-a-${kind}`)
    const b = await createTenantWithAdmin(k, `inbox-b-${kind}`)
    const inst = await k.req('POST', '/v1/installations', {
      token: a.token,
      body: { plugin: '@acme/flows', version: '1.0.0', capabilities: manifest.capabilities },
    })
    t.equal(inst.status, 201, 'the fixture plugin is installed')
    for (const role of ['pricing_manager', 'sales_director'])
      await k.req('POST', '/v1/roles', { token: a.token, body: { name: role, permissions: ['users.read'] } })
    const pricing = await addUser(k, a.token, `pricing@inbox-${kind}.test`, 'pricing_manager')
    const pricing2 = await addUser(k, a.token, `pricing2@inbox-${kind}.test`, 'pricing_manager')
    const director = await addUser(k, a.token, `director@inbox-${kind}.test`, 'sales_director')
    const member = await addUser(k, a.token, `member@inbox-${kind}.test`, 'tenant_member')

    // Two tasks from the fixture's workflow (role pricing_manager, created at T0): one due a
    // minute later, one an hour later, which the first pricing manager claims.
    const startOrder = async (orderId: string, slaMs: number) => {
      const started = await k.req('POST', '/v1/workflows/instances', {
        token: a.token,
        body: { plugin: '@acme/flows', workflow: 'order', input: { orderId, discount: 0.3, slaMs } },
      })
      t.equal(started.status, 201, `${orderId} started`)
      return eventually(async () => {
        const [row] = await k.ownerSql(`select * from workflow_tasks where instance_id = ?`, [started.body.id])
        return row
      }, 20_000)
    }
    const soon = await startOrder('O-1', 60_000)
    const later = await startOrder('O-2', 3_600_000)
    t.equal(new Date(soon.due_at).toISOString(), new Date(T0 + 60_000).toISOString(), 'due by the runtime clock')
    t.equal((await k.req('POST', `/v1/tasks/${later.id}/claim`, { token: pricing.token })).status, 200)

    // More tasks, written as the runtime would (another plugin's; one assigned to a person;
    // one for another role; a completed one; one in another tenant).
    const copy = async (fields: Record<string, unknown>) => {
      const kept = ['tenant_id', 'instance_id', 'step_seq', 'plugin', 'workflow', 'title', 'role', 'outcomes', 'next']
      const cols = [...kept.filter((c) => !(c in fields)), ...Object.keys(fields)]
      const values = [...kept.filter((c) => !(c in fields)), ...Object.keys(fields).map(() => '?')]
      const [row] = await k.ownerSql(
        `insert into workflow_tasks (id, ${cols.join(', ')})
         select gen_random_uuid(), ${values.join(', ')} from workflow_tasks where id = ? returning id`,
        [...Object.values(fields), soon.id],
      )
      return row.id as string
    }
    const past = new Date(T0 - 1000).toISOString()
    const names = new Map<string, string>([
      [soon.id, 'soon'],
      [later.id, 'claimed'],
      [await copy({ plugin: '@acme/other', sla_ms: null, due_at: null }), 'other-plugin'],
      [await copy({ role: 'sales_director', assignee: pricing2.user.id, due_at: past }), 'assigned'],
      [await copy({ role: 'sales_director', due_at: null }), 'director'],
      [
        await copy({ status: 'completed', claimed_by: pricing.user.id, completed_by: pricing.user.id, due_at: past }),
        'done',
      ],
      [await copy({ tenant_id: b.orgId, role: 'tenant_admin', due_at: past }), 'other-tenant'],
    ])

    /** The names of the tasks the query returns, following every page. */
    const inbox = async (token: string, query = '') => {
      const seen: string[] = []
      let cursor: string | null = null
      do {
        const qs = [query, 'limit=2', cursor ? `cursor=${cursor}` : ''].filter(Boolean).join('&')
        const r = await k.req('GET', `/v1/tasks?${qs}`, { token })
        if (r.status !== 200) throw new Error(`${qs}: ${r.status} ${JSON.stringify(r.body)}`)
        seen.push(...r.body.items.map((x: { id: string }) => names.get(x.id) ?? x.id))
        cursor = r.body.nextCursor
      } while (cursor)
      return seen.sort()
    }

    await t.test('unfiltered: what each caller sees today', async (t) => {
      t.same(await inbox(pricing.token), ['claimed', 'other-plugin', 'soon'])
      t.same(await inbox(pricing2.token), ['assigned', 'claimed', 'other-plugin', 'soon'])
      t.same(await inbox(director.token), ['director'])
      t.same(await inbox(member.token), [])
      t.same(await inbox(b.token), ['other-tenant'])
      t.same(await inbox(pricing.token, 'status=completed'), ['done'])
    })

    await t.test('assignee=me: claimed by me or assigned to me', async (t) => {
      t.same(await inbox(pricing.token, 'assignee=me'), ['claimed'])
      t.same(await inbox(pricing2.token, 'assignee=me'), ['assigned'])
      t.same(await inbox(director.token, 'assignee=me'), [])
      t.same(await inbox(pricing.token, 'assignee=me&status=completed'), ['done'])
    })

    await t.test('role: only tasks of that role the caller already sees', async (t) => {
      t.same(await inbox(pricing.token, 'role=pricing_manager'), ['claimed', 'other-plugin', 'soon'])
      t.same(await inbox(pricing.token, 'role=sales_director'), [], "another role's tasks stay hidden")
      t.same(await inbox(director.token, 'role=sales_director'), ['director'])
      t.same(await inbox(pricing2.token, 'role=sales_director'), ['assigned'], 'only the one assigned to them')
      t.same(await inbox(director.token, 'role=pricing_manager'), [])
      t.same(await inbox(a.token, 'role=tenant_admin'), [], "another tenant's task never shows")
      t.same(await inbox(b.token, 'role=tenant_admin'), ['other-tenant'])
    })

    await t.test('plugin: tasks of that plugin’s workflows', async (t) => {
      t.same(await inbox(pricing.token, 'plugin=@acme/other'), ['other-plugin'])
      t.same(await inbox(pricing.token, 'plugin=@acme/flows'), ['claimed', 'soon'])
      t.same(await inbox(director.token, 'plugin=@acme/other'), [])
      t.same(await inbox(pricing.token, 'plugin=@acme/nothing'), [])
    })

    await t.test('overdue: by the runtime clock, open and claimed tasks only', async (t) => {
      t.same(await inbox(pricing.token, 'overdue=true'), [], 'at T0 the minute has not passed')
      t.same(await inbox(pricing2.token, 'overdue=true'), ['assigned'])
      await clock.set(T0 + 60_000)
      t.same(await inbox(pricing.token, 'overdue=true'), ['soon'], 'due exactly now: overdue, as the sweep sees it')
      t.same(await inbox(pricing.token, 'overdue=false'), ['claimed', 'other-plugin'])
      t.same(await inbox(pricing2.token, 'overdue=true'), ['assigned', 'soon'])
      t.same(await inbox(director.token, 'overdue=true'), [], "someone else's overdue task stays hidden")
      t.same(await inbox(pricing.token, 'overdue=true&status=completed'), [], 'a completed task is not overdue')
    })

    await t.test('filters combine', async (t) => {
      t.same(await inbox(pricing2.token, 'overdue=true&role=sales_director'), ['assigned'])
      t.same(await inbox(pricing2.token, 'overdue=true&plugin=@acme/flows&assignee=me'), ['assigned'])
      t.same(await inbox(pricing2.token, 'overdue=true&role=pricing_manager&plugin=@acme/flows'), ['soon'])
      t.same(await inbox(pricing.token, 'assignee=me&overdue=true'), [])
      t.same(await inbox(pricing.token, 'assignee=me&plugin=@acme/flows&role=pricing_manager'), ['claimed'])
    })

    await t.test('invalid values: 400 naming the parameter', async (t) => {
      for (const [query, param] of [
        ['assignee=someone', 'assignee'],
        ['role=Not%20A%20Role', 'role'],
        ['plugin=acme-flows', 'plugin'],
        ['overdue=maybe', 'overdue'],
        ['status=late', 'status'],
      ]) {
        const r = await k.req('GET', `/v1/tasks?${query}`, { token: pricing.token })
        t.equal(r.status, 400, query)
        t.equal(r.body.code, 'KRN_ERR_VALIDATION_FAILED', query)
        t.match(r.body.detail, param, `${query}: the detail names ${param}`)
      }
      t.equal((await k.req('GET', '/v1/tasks?overdue=true', {})).status, 401, 'sign-in comes first')
    })

    await t.test('the filters are in the API description', async (t) => {
      const doc = (await k.req('GET', '/openapi.json')).body
      const params = doc.paths['/v1/tasks'].get.parameters.map((p: { name: string }) => p.name)
      for (const name of ['status', 'assignee', 'role', 'plugin', 'overdue', 'cursor', 'limit'])
        t.ok(params.includes(name), name)
    })
  })
