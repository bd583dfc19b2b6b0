// The agent step in the in-memory host: a sure proposal proceeds with its record, model and
// confidence; an unsure one, a refused model call or `always-ask` becomes a task for the
// accountable role with the proposal prefilled; the person's confirmation or override is what
// proceeds, with who decided.
import t from 'tap'
import { agentStep, createTestHost, definePlugin, defineWorkflow, type AgentSpec } from '../src/index.js'

type Input = { kind: string; reason: string }
type Proposal = { action: string; role: string }

const spec = (over: Partial<AgentSpec<Input, Proposal>> = {}): AgentSpec<Input, Proposal> => ({
  name: 'exception-triage',
  prompt: 'triage',
  slots: (i) => ({ kind: i.kind, reason: i.reason }),
  proposal: {
    type: 'object',
    required: ['action', 'role'],
    properties: { action: { type: 'string' }, role: { type: 'string' } },
  },
  threshold: 0.8,
  role: (_i, p) => p?.role ?? 'sales_manager',
  title: (i) => `Triage the ${i.kind} exception`,
  fallback: (i) =>
    i.kind === 'credit_hold'
      ? { proposal: { action: 'hold', role: 'credit_controller' }, confidence: 0.5, reasons: ['rule: credit'] }
      : null,
  next: 'done',
  ...over,
})

function pluginWith(s: AgentSpec<Input, Proposal>) {
  const triage = agentStep(s, 'triageDecided')
  return definePlugin({
    manifest: {
      name: '@acme/agent',
      version: '1.0.0',
      engines: { trellis: '^0.1.0' },
      capabilities: ['ai:complete', 'workflows'],
      prompts: { triage: { template: 'Triage a {{kind}} exception: {{reason}}' } },
      workflows: { triage: { steps: ['triage', 'triageDecided', 'done'] } },
    },
    workflows: {
      triage: defineWorkflow({
        steps: { triage: triage.ask, triageDecided: triage.decided, done: async (input: unknown) => input },
      }),
    },
  })
}
const input = { kind: 'credit_hold', reason: 'order total exceeds the limit' }

t.test('a sure proposal proceeds, with its record, model and confidence', async (t) => {
  const host = createTestHost(pluginWith(spec()), {
    ai: () => '{"proposal":{"action":"hold","role":"credit_controller"},"confidence":0.92,"reasons":["over limit"]}',
  })
  const out = (await host.step('triage.triage', input)) as any
  t.equal(out.$workflow, 'next')
  t.equal(out.step, 'done')
  t.same(out.input.decision.proposal, { action: 'hold', role: 'credit_controller' })
  t.equal(out.input.decision.confidence, 0.92)
  t.equal(out.input.decision.decidedBy, 'agent')
  t.equal(out.input.decision.model, 'test-model')
  t.ok(out.input.decision.recordId)
  t.same(out.input.input, input)
})

t.test('an unsure proposal becomes a task for the accountable role, prefilled; an override proceeds', async (t) => {
  const host = createTestHost(pluginWith(spec()), {
    ai: () => '{"proposal":{"action":"release","role":"credit_controller"},"confidence":0.4,"reasons":["unclear"]}',
  })
  const out = (await host.step('triage.triage', input)) as any
  t.equal(out.$workflow, 'task')
  t.equal(out.task.role, 'credit_controller')
  t.same(out.task.data.proposal, { action: 'release', role: 'credit_controller' })
  t.equal(out.task.data.referral, 'below-threshold')
  const decided = (await host.step('triage.triageDecided', {
    outcome: 'override',
    data: { proposal: { action: 'hold', role: 'credit_controller' } },
    by: 'user-7',
    input: out.task.input,
  })) as any
  t.equal(decided.step, 'done')
  t.same(decided.input.decision.proposal, { action: 'hold', role: 'credit_controller' })
  t.equal(decided.input.decision.decidedBy, 'user-7')
  t.equal(decided.input.decision.overridden, true)
  t.equal(decided.input.decision.confidence, 0.4, 'the model’s confidence stays on the record')
})

t.test('a model that cannot answer falls back to the rules and a person', async (t) => {
  const host = createTestHost(pluginWith(spec()), { ai: () => 'not json at all' })
  const out = (await host.step('triage.triage', input)) as any
  t.equal(out.$workflow, 'task')
  t.equal(out.task.data.model, 'rules')
  t.equal(out.task.data.referral, 'AI_ERR_SCHEMA_MISMATCH')
  t.same(out.task.data.proposal, { action: 'hold', role: 'credit_controller' })
  const accepted = (await host.step('triage.triageDecided', {
    outcome: 'accept',
    data: {},
    by: 'user-8',
    input: out.task.input,
  })) as any
  t.equal(accepted.input.decision.overridden, false)
  t.equal(accepted.input.decision.decidedBy, 'user-8')
})

t.test('always-ask: a person decides even a sure proposal', async (t) => {
  const host = createTestHost(pluginWith(spec({ threshold: 'always-ask' })), {
    ai: () => '{"proposal":{"action":"hold","role":"credit_controller"},"confidence":0.99,"reasons":["sure"]}',
  })
  const out = (await host.step('triage.triage', input)) as any
  t.equal(out.$workflow, 'task')
  t.equal(out.task.data.confidence, 0.99)
})

t.test('a second proposer answers when the chat model cannot; a sure answer stands under its own model', async (t) => {
  const proposed: Input[] = []
  const host = createTestHost(
    pluginWith(
      spec({
        propose: async (i) => {
          proposed.push(i)
          return {
            proposal: { action: 'hold', role: 'credit_controller' },
            confidence: 0.9,
            reasons: ['nearest examples'],
            model: 'local-lexical',
            recordId: 'rec-1',
          }
        },
      }),
    ),
    { ai: () => 'not json at all' },
  )
  const out = (await host.step('triage.triage', input)) as any
  t.same(proposed, [input], 'asked once the chat model failed')
  t.equal(out.$workflow, 'next')
  t.match(out.input.decision, {
    model: 'local-lexical',
    recordId: 'rec-1',
    confidence: 0.9,
    decidedBy: 'agent',
    referral: null,
  })
})

t.test('a sure chat model answer is not second-guessed by the proposer', async (t) => {
  const host = createTestHost(
    pluginWith(
      spec({
        propose: async () => {
          throw new Error('not asked')
        },
      }),
    ),
    { ai: () => '{"proposal":{"action":"hold","role":"credit_controller"},"confidence":0.95,"reasons":["x"]}' },
  )
  const out = (await host.step('triage.triage', input)) as any
  t.equal(out.input.decision.model, 'test-model')
})

t.test('a proposer refused too leaves the rules, and a person decides whatever their confidence', async (t) => {
  const host = createTestHost(
    pluginWith(
      spec({
        propose: async () => {
          throw Object.assign(new Error('budget'), { code: 'AI_ERR_BUDGET_EXHAUSTED' })
        },
        fallback: () => ({
          proposal: { action: 'hold', role: 'credit_controller' },
          confidence: 0.99,
          reasons: ['rule'],
        }),
      }),
    ),
    { ai: () => 'not json at all' },
  )
  const out = (await host.step('triage.triage', input)) as any
  t.equal(out.$workflow, 'task')
  t.match(out.task.data, { model: 'rules', referral: 'AI_ERR_BUDGET_EXHAUSTED', confidence: 0.99 })
})

t.test('a proposer failing for another reason fails the step (the runtime retries it)', async (t) => {
  const host = createTestHost(
    pluginWith(
      spec({
        propose: async () => {
          throw new Error('a bug in the proposer')
        },
      }),
    ),
    { ai: () => 'not json at all' },
  )
  await t.rejects(host.step('triage.triage', input), /a bug in the proposer/)
})

t.test('the threshold may depend on the input', async (t) => {
  const answer = '{"proposal":{"action":"hold","role":"credit_controller"},"confidence":0.7,"reasons":["x"]}'
  const host = createTestHost(pluginWith(spec({ threshold: (i) => (i.kind === 'credit_hold' ? 0.9 : 0.5) })), {
    ai: () => answer,
  })
  t.equal(((await host.step('triage.triage', input)) as any).$workflow, 'task', '0.7 < 0.9 for a credit hold')
  t.equal(
    ((await host.step('triage.triage', { kind: 'stock_short', reason: 'late' })) as any).$workflow,
    'next',
    '0.7 ≥ 0.5 otherwise',
  )
})
