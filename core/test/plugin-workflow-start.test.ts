// ctx.workflows.start: a plugin starts its own workflows in its invocation's transaction —
// the instance runs once the invocation commits, is gone when it rolls back, is started once
// per start key (also against the event delivery that would start it), and needs the
// "workflows" capability and a workflow of the plugin's own.
import t from 'tap'
import { join } from 'node:path'
import { readFile } from 'node:fs/promises'
import { buildPlugin } from '@trellis/plugin-sdk'
import { DB_KINDS, startTestKernel, createTenantWithAdmin, type TestKernel } from './helpers/test-kernel.js'
import { eventually } from './helpers/receiver.js'
import { registerVersion } from './helpers/plugin-versions.js'

async function fixture(name: string) {
  const dir = join(import.meta.dirname, 'fixtures', 'plugins', name)
  const manifest = JSON.parse(await readFile(join(dir, 'trellis.plugin.json'), 'utf8'))
  const built = await buildPlugin({ dir, write: false })
  return { manifest, code: built.code, sourceMap: built.sourceMap }
}
const starter = await fixture('starter')
const flows = await fixture('flows')
const ungranted = await fixture('no-workflows')

async function install(k: TestKernel, token: string, bundle: typeof starter, capabilities: string[]) {
  const r = await k.req('POST', '/v1/installations', {
    token,
    body: { plugin: bundle.manifest.name, version: bundle.manifest.version, capabilities },
  })
  if (r.status !== 201) throw new Error(JSON.stringify(r.body))
}

const instance = (k: TestKernel, token: string, id: string) =>
  k.req('GET', `/v1/workflows/instances/${id}`, { token }).then((r) => r.body)

for (const kind of DB_KINDS)
  t.test(`ctx.workflows.start on ${kind}`, async (t) => {
    const k = await startTestKernel(t, kind, { plugins: { sandboxWorkers: 1 }, workflows: { sweepMs: 100 } })
    await registerVersion(k, starter)
    await registerVersion(k, flows)
    await registerVersion(k, ungranted)
    const a = await createTenantWithAdmin(k, 'wfs-a')
    await install(k, a.token, starter, starter.manifest.capabilities)
    await install(k, a.token, flows, flows.manifest.capabilities)
    await install(k, a.token, ungranted, [])
    const start = (body: unknown, token = a.token) => k.req('POST', '/v1/x/@acme/starter/start', { token, body })
    const count = (startKey: string) =>
      k
        .ownerSql<{ n: number }>(
          `select count(*)::int as n from workflow_instances where tenant_id = ? and start_key = ?`,
          [a.orgId, startKey],
        )
        .then((r) => r[0]!.n)

    await t.test('the started instance exists, runs to completion, and the use is audited', async (t) => {
      const r = await start({ workflow: 'greet', input: { name: 'Ada' } })
      t.equal(r.status, 201, JSON.stringify(r.body))
      t.equal(r.body.started, true)
      const done = await eventually(async () => {
        const i = await instance(k, a.token, r.body.instanceId)
        return i.status === 'completed' ? i : undefined
      }, 20_000)
      t.equal(done.plugin, '@acme/starter')
      t.equal(done.workflow, 'greet')
      t.same(done.output, { hello: { name: 'Ada' } })
      const audit = await k.ownerSql(
        `select data from audit_log where tenant_id = ? and action = 'plugin.capability.used' and actor_id = '@acme/starter'`,
        [a.orgId],
      )
      t.ok(
        audit.some((row: any) => row.data.uses.some((u: any) => u.op === 'workflows.start' && u.target === 'greet')),
        'audited as a capability use',
      )
    })

    await t.test('an invocation that fails after starting leaves no instance', async (t) => {
      const failed = await start({ workflow: 'greet', input: 1, startKey: 'rolled-back', fail: true })
      t.ok(failed.status >= 500, `${failed.status} ${JSON.stringify(failed.body)}`)
      t.equal(await count('rolled-back'), 0)
      // The key was not used up: starting with it again starts an instance.
      const again = await start({ workflow: 'greet', input: 2, startKey: 'rolled-back' })
      t.equal(again.status, 201, JSON.stringify(again.body))
      t.equal(again.body.started, true)
      t.equal(await count('rolled-back'), 1)
    })

    await t.test('the same start key twice gives one instance', async (t) => {
      const first = await start({ workflow: 'greet', input: 'x', startKey: 'once' })
      const second = await start({ workflow: 'greet', input: 'y', startKey: 'once' })
      t.equal(first.status, 201)
      t.equal(second.status, 201)
      t.equal(first.body.started, true)
      t.equal(second.body.started, false)
      t.equal(second.body.instanceId, first.body.instanceId)
      t.equal(await count('once'), 1)
      // Without a key, every start is a new instance.
      const free1 = await start({ workflow: 'greet', input: 'z' })
      const free2 = await start({ workflow: 'greet', input: 'z' })
      t.not(free1.body.instanceId, free2.body.instanceId)
    })

    await t.test("the event's own delivery starts no second instance with the event's key", async (t) => {
      const r = await k.req('POST', '/v1/x/@acme/starter/ping', { token: a.token, body: {} })
      t.equal(r.status, 201, JSON.stringify(r.body))
      // The plugin's handler runs after the workflow runtime saw the delivery: once it has, the
      // runtime has had its chance to start the workflow.
      await eventually(async () => {
        const rows = await k.ownerSql(
          `select 1 from plugin_records where tenant_id = ? and collection = 'seen' and data->>'event' = ?`,
          [a.orgId, r.body.event],
        )
        return rows.length > 0
      }, 20_000)
      const rows = await k.ownerSql<{ id: string; started_by: string }>(
        `select id, started_by from workflow_instances where tenant_id = ? and workflow = 'onPing' and start_key = ?`,
        [a.orgId, `event:${r.body.event}`],
      )
      t.same(
        rows.map((x) => x.id),
        [r.body.instanceId],
      )
      t.match(rows[0]!.started_by, /^user:/, 'started by the person whose request started it')
    })

    await t.test("another plugin's workflow is refused", async (t) => {
      const r = await start({ workflow: 'order', input: { orderId: 'O-1', discount: 0 } })
      t.equal(r.status, 409, JSON.stringify(r.body))
      t.equal(r.body.code, 'WFL_ERR_WORKFLOW_NOT_FOUND')
      const rows = await k.ownerSql(`select 1 from workflow_instances where tenant_id = ? and workflow = 'order'`, [
        a.orgId,
      ])
      t.equal(rows.length, 0)
    })

    await t.test('without the workflows capability the call is refused', async (t) => {
      const r = await k.req('POST', '/v1/x/@acme/no-workflows/start', {
        token: a.token,
        body: { workflow: 'greet', startKey: 'denied' },
      })
      t.equal(r.status, 409, JSON.stringify(r.body))
      t.equal(r.body.code, 'KRN_ERR_CAPABILITY_DENIED')
      t.equal(await count('denied'), 0)
      const denials = await k.ownerSql<{ data: { op: string } }>(
        `select data from audit_log where tenant_id = ? and action = 'plugin.capability.denied' and actor_id = '@acme/no-workflows'`,
        [a.orgId],
      )
      t.ok(
        denials.some((d) => d.data.op === 'workflows.start'),
        'the refusal is audited',
      )
    })
  })
