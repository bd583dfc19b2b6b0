// ctx.workflows.start in the SDK: what the runtime sends (valid against the protocol schema)
// and the in-memory test host's answers — one instance per start key, own workflows only, and
// the "workflows" capability.
import t from 'tap'
import { createTestHost, defineWorkflow, definePlugin, validateHostCall } from '../src/index.js'
import type { PluginContext, PluginManifest } from '../src/index.js'

const manifest: PluginManifest = {
  name: '@acme/approvals',
  version: '1.0.0',
  engines: { trellis: '^0.1.0' },
  capabilities: ['workflows'],
  workflows: { approve: { steps: ['ask'] } },
}

const plugin = definePlugin({
  manifest,
  actions: {
    start: async (input: { workflow: string; startKey?: string }, ctx: PluginContext) =>
      ctx.workflows.start(input.workflow, { asked: true }, input.startKey ? { startKey: input.startKey } : undefined),
  },
  workflows: { approve: defineWorkflow({ steps: { ask: async () => ({ asked: true }) } }) },
})

t.test('starts the plugin own workflow; the same start key answers the same instance', async (t) => {
  const host = createTestHost(plugin)
  const first = await host.action<{ instanceId: string; started: boolean }>('start', {
    workflow: 'approve',
    startKey: 'event:1',
  })
  const again = await host.action<{ instanceId: string; started: boolean }>('start', {
    workflow: 'approve',
    startKey: 'event:1',
  })
  const other = await host.action<{ instanceId: string; started: boolean }>('start', { workflow: 'approve' })
  t.equal(first.started, true)
  t.same(again, { instanceId: first.instanceId, started: false })
  t.not(other.instanceId, first.instanceId)
  t.same(
    host.started.map((s) => [s.instanceId, s.workflow, s.startKey]),
    [
      [first.instanceId, 'approve', 'event:1'],
      [other.instanceId, 'approve', undefined],
    ],
  )
  for (const c of host.calls) t.same(validateHostCall(c.op, c.args), [], 'the runtime sends what the protocol allows')
  t.same(host.calls[0], {
    op: 'workflows.start',
    args: { workflow: 'approve', input: { asked: true }, startKey: 'event:1' },
  })
})

t.test("another plugin's workflow, or no capability, is refused", async (t) => {
  const host = createTestHost(plugin)
  await t.rejects(host.action('start', { workflow: 'onboard' }), { code: 'WFL_ERR_WORKFLOW_NOT_FOUND' })
  const ungranted = createTestHost(plugin, { capabilities: [] })
  await t.rejects(ungranted.action('start', { workflow: 'approve' }), { code: 'KRN_ERR_CAPABILITY_DENIED' })
  t.same(ungranted.started, [])
})
