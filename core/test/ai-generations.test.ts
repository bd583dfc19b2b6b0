// Long generations (ADR 0066): ctx.ai.generate queues the governed call with the invocation and
// answers at once; a worker runs it with its own, longer timeout and writes the plugin's
// declared event with the answer (or the error's code); a workflow step that queued it waits
// for that event and resumes. The model answers slower than the sandbox's wall clock.
import t from 'tap'
import { createTestHost, definePlugin, type PluginContext } from '@trellis/plugin-sdk'
import { DB_KINDS } from './helpers/test-kernel.js'
import { generationEvents as eventOf, startGeneratorKernel } from './helpers/ai-generator.js'
import { eventually } from './helpers/receiver.js'

/** The sandbox's wall clock in this file; the model takes longer than that to answer. */
const WALL_MS = 2000
const MODEL_MS = 3000

for (const kind of DB_KINDS)
  t.test(`long generations on ${kind}`, async (t) => {
    const { k, a, inst, server, call } = await startGeneratorKernel(t, kind, {
      plugins: { sandboxWorkers: 1, sandboxLimits: { wallMs: WALL_MS } },
      // One at a time: a tenant's jobs run in the order queued, so a later answer proves earlier jobs ran.
      aiGenerations: { concurrency: 1 },
    })
    server.mode = 'slow'
    server.delayMs = MODEL_MS

    await t.test('the same model asked synchronously outlasts the sandbox: the invocation is ended', async (t) => {
      server.reply = () => 'too late'
      const r = await call('/complete', { question: 'synchronous' })
      t.not(r.status, 200)
      t.equal(r.body.code, 'SBX_ERR_TIMEOUT', JSON.stringify(r.body))
    })

    await t.test('the invocation answers with an id; the answer arrives as the declared event', async (t) => {
      server.reply = (messages) => `Answer to: ${messages.at(-1)!.content}`
      const r = await call('/generate', { question: 'what ships today?' })
      t.equal(r.status, 200, JSON.stringify(r.body))
      t.match(r.body.generationId, /^[0-9a-f-]{36}$/)
      const [ev] = await eventOf(k, a.orgId, r.body.generationId)
      t.equal(ev!.type, 'gen.answer.ready')
      t.equal(ev!.source, '@acme/ai-generator')
      t.equal(ev!.data.answer!.text, 'Answer to: what ships today?')
      t.equal(ev!.data.answer!.model, 'slow-chat')
      t.equal(server.received.at(-1)!.body.messages.at(-1).content, 'what ships today?')
      const rec = await k.req('GET', `/v1/ai/records/${ev!.data.answer!.recordId}`, { token: a.token })
      t.equal(rec.status, 200)
      t.equal(rec.body.outcome, 'ok')
      t.equal(rec.body.installationId, inst.body.id)
      t.ok(rec.body.latencyMs >= MODEL_MS, 'the call took longer than the sandbox may run')
      const [row] = await k.ownerSql(
        'select status, attempts, request, result, record_id, error_code from ai_generations where id = ?::uuid',
        [r.body.generationId],
      )
      t.match(row, {
        status: 'done',
        attempts: 1,
        request: null,
        record_id: ev!.data.answer!.recordId,
        error_code: null,
      })
      t.equal(row.result.text, 'Answer to: what ships today?', 'the row keeps the answer the event carried')
    })

    await t.test('a workflow step queues a generation, waits for its event and resumes with the answer', async (t) => {
      server.reply = () => 'Ship the blue crates first.'
      const r = await call('/start', { question: 'which crates first?' })
      t.equal(r.status, 200, JSON.stringify(r.body))
      const done = await eventually(async () => {
        const i = await k.req('GET', `/v1/workflows/instances/${r.body.instanceId}`, { token: a.token })
        return i.body.status === 'completed' || i.body.status === 'failed' ? i.body : undefined
      }, 60_000)
      t.equal(done.status, 'completed', JSON.stringify(done))
      t.equal(done.output.event.answer.text, 'Ship the blue crates first.')
      t.equal(done.output.event.generationId, done.output.generationId)
    })

    await t.test('a rolled-back invocation queues nothing', async (t) => {
      server.reply = (messages) => `Answer to: ${messages.at(-1)!.content}`
      const failed = await call('/generate', { question: 'rolled back question', fail: true })
      t.equal(failed.status, 502, 'the plugin failed')
      // Jobs of one tenant run in the order queued, one at a time: once this one has answered,
      // anything the failed invocation had queued would have run before it.
      const after = await call('/generate', { question: 'after the rollback' })
      t.equal(after.status, 200)
      await eventOf(k, a.orgId, after.body.generationId)
      const asked = server.received.map((x) => x.body?.messages?.at(-1)?.content)
      t.ok(asked.includes('after the rollback'))
      t.notOk(asked.includes('rolled back question'), 'the model was never asked')
      const events = await k.ownerSql(
        `select count(*)::int as n from events where tenant_id = ?::uuid and data->'answer'->>'text' = ?`,
        [a.orgId, 'Answer to: rolled back question'],
      )
      t.equal(events[0].n, 0)
      const rows = await k.ownerSql(
        `select count(*)::int as n from ai_generations where request->'messages'->-1->>'content' = 'rolled back question'`,
      )
      t.equal(rows[0].n, 0, 'the generation rolled back with the invocation')
    })

    await t.test('an event the plugin did not declare is refused with a typed code, nothing queued', async (t) => {
      const before = server.received.length
      const r = await call('/generate', { question: 'x', event: 'gen.not.declared' })
      t.same(r.body, { code: 'AI_ERR_GENERATION_EVENT_UNDECLARED' })
      const other = await call('/generate', { question: 'y', event: 'kernel.ai.finished' })
      t.same(other.body, { code: 'AI_ERR_GENERATION_EVENT_UNDECLARED' })
      const rows = await k.ownerSql(
        `select count(*)::int as n from ai_generations where event in ('gen.not.declared', 'kernel.ai.finished')`,
      )
      t.equal(rows[0].n, 0)
      t.equal(server.received.length, before)
    })

    await t.test('an exhausted budget ends the generation with an error event, the model never asked', async (t) => {
      const budget = await k.req('PUT', '/v1/ai/budgets', {
        token: a.token,
        body: { scope: 'tenant', unit: 'tokens', monthlyLimit: 1 },
      })
      t.equal(budget.status, 200, JSON.stringify(budget.body))
      const before = server.received.length
      const r = await call('/generate', { question: 'over budget' })
      t.equal(r.status, 200, 'queued: the budget is reserved when the job runs')
      const [ev] = await eventOf(k, a.orgId, r.body.generationId)
      t.same(ev!.data, { generationId: r.body.generationId, error: { code: 'AI_ERR_BUDGET_EXHAUSTED' } })
      t.equal(server.received.length, before)
      const refused = await k.ownerSql(
        `select count(*)::int as n from ai_records where tenant_id = ?::uuid and outcome = 'refused' and error_code = 'AI_ERR_BUDGET_EXHAUSTED'`,
        [a.orgId],
      )
      t.equal(refused[0].n, 1, 'the refusal is on record')
    })
  })

t.test('the in-memory test host serves ctx.ai.generate with the same refusals', async (t) => {
  const plugin = definePlugin({
    manifest: {
      name: '@acme/drafts',
      version: '1.0.0',
      engines: { trellis: '^0.1.0' },
      capabilities: ['ai:complete', 'events:emit:drafts.**'],
      events: { emits: { 'drafts.reply.ready': { schema: { type: 'object', required: ['generationId'] } } } },
      routes: [{ method: 'POST', path: '/draft' }],
    },
    routes: {
      'POST /draft': async (req, ctx: PluginContext) => {
        const { event, text } = req.body as { event: string; text: string }
        return { status: 200, body: await ctx.ai.generate({ messages: [{ role: 'user', content: text }], event }) }
      },
    },
  })
  const host = createTestHost(plugin, { ai: (req) => `Dear customer: ${req.messages.at(-1)!.content}` })
  const r = await host.route('POST /draft', { body: { event: 'drafts.reply.ready', text: 'late parcel' } })
  t.same(host.emitted.at(-1)!.data, {
    generationId: (r.body as { generationId: string }).generationId,
    answer: {
      text: 'Dear customer: late parcel',
      model: 'test-model',
      usage: { inputTokens: 3, outputTokens: 7 },
      costMicros: 0,
      recordId: (host.emitted.at(-1)!.data as { answer: { recordId: string } }).answer.recordId,
    },
  })
  await t.rejects(host.route('POST /draft', { body: { event: 'drafts.other', text: 'x' } }), {
    code: 'AI_ERR_GENERATION_EVENT_UNDECLARED',
  })
  const denied = createTestHost(plugin, { capabilities: ['events:emit:drafts.**'] })
  await t.rejects(denied.route('POST /draft', { body: { event: 'drafts.reply.ready', text: 'x' } }), {
    code: 'KRN_ERR_CAPABILITY_DENIED',
  })
  t.equal(denied.emitted.length, 0)
})
