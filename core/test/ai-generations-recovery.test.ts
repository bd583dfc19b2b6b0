// Long generations survive the process that queued or ran them (ADR 0087), on both databases
// and both queues: a generation committed with its invocation whose job never reached the queue
// (the process died in between), and one whose worker died while running it, are queued again
// by a worker's sweeper and answered once; one abandoned too often ends with a typed error
// event; and an attempt that lost its generation to another writes no event.
import t from 'tap'
import { QUEUE_MATRIX } from './helpers/test-kernel.js'
import { generationEvents, startGeneratorKernel } from './helpers/ai-generator.js'
import { claimGeneration, finishGeneration } from '../src/ai/generation-store.js'

for (const setup of QUEUE_MATRIX)
  t.test(setup.name, async (t) => {
    const { k, a, inst, server, call } = await startGeneratorKernel(t, setup, {
      // Sweeps come often here; a generation counts as lost after 60 s (its row is dated back).
      aiGenerations: { concurrency: 1, sweepEveryMs: 100 },
    })
    server.reply = (messages) => `Answer to: ${messages.at(-1)!.content}`
    const user = (await k.ownerSql<{ id: string }>('select id from users where email = ?', [a.email]))[0]!.id
    /** A generation as a committed invocation leaves it, dated `agoMs` back, with no job queued for it. */
    const leftBehind = async (question: string, agoMs: number, extra: { status?: string; attempts?: number } = {}) => {
      const id = crypto.randomUUID()
      const caller = {
        tenantId: a.orgId,
        userId: user,
        installationId: inst.body.id,
        pluginId: '@acme/ai-generator',
        feature: '@acme/ai-generator',
        mayReadPersonal: false,
      }
      await k.ownerSql(
        `insert into ai_generations (id, tenant_id, installation_id, plugin, event, caller, request, status, attempts, lease_until, created_at)
         values (?::uuid, ?::uuid, ?::uuid, '@acme/ai-generator', 'gen.answer.ready', ?::jsonb, ?::jsonb, ?, ?, ?::timestamptz, ?::timestamptz)`,
        [
          id,
          a.orgId,
          inst.body.id,
          JSON.stringify(caller),
          JSON.stringify({ messages: [{ role: 'user', content: question }] }),
          extra.status ?? 'queued',
          extra.attempts ?? 0,
          extra.status === 'running' ? new Date(Date.now() - agoMs / 2).toISOString() : null,
          new Date(Date.now() - agoMs).toISOString(),
        ],
      )
      return id
    }

    await t.test('a generation whose job never reached the queue is queued again and answered once', async (t) => {
      const id = await leftBehind('lost before the queue', 120_000)
      const [ev] = await generationEvents(k, a.orgId, id)
      t.equal(ev!.type, 'gen.answer.ready')
      t.equal(ev!.data.answer!.text, 'Answer to: lost before the queue')
      const [row] = await k.ownerSql('select status, attempts, swept from ai_generations where id = ?::uuid', [id])
      t.match(row, { status: 'done', attempts: 1 })
      t.ok(row.swept >= 1, 'the sweeper queued it')
    })

    await t.test('a generation whose worker died while running it is taken over after its lease', async (t) => {
      const id = await leftBehind('worker died', 120_000, { status: 'running', attempts: 1 })
      const [ev] = await generationEvents(k, a.orgId, id)
      t.equal(ev!.data.answer!.text, 'Answer to: worker died')
      const [row] = await k.ownerSql('select status, attempts from ai_generations where id = ?::uuid', [id])
      t.match(row, { status: 'done', attempts: 2 })
    })

    await t.test(
      'a generation started too often ends with AI_ERR_GENERATION_ABANDONED, the model not asked',
      async (t) => {
        const before = server.received.length
        const id = await leftBehind('abandoned', 120_000, { status: 'running', attempts: 3 })
        const [ev] = await generationEvents(k, a.orgId, id)
        t.same(ev!.data, { generationId: id, error: { code: 'AI_ERR_GENERATION_ABANDONED' } })
        const [row] = await k.ownerSql('select status, error_code from ai_generations where id = ?::uuid', [id])
        t.match(row, { status: 'failed', error_code: 'AI_ERR_GENERATION_ABANDONED' })
        t.notOk(
          server.received.slice(before).some((r) => r.body?.messages?.at(-1)?.content === 'abandoned'),
          'the model was never asked',
        )
      },
    )

    await t.test('an attempt that lost its generation to another finishes nothing', async (t) => {
      const id = await leftBehind('contended', 0)
      const db = k.kernel.ctx.db
      // Claimed far in the past by a first worker (lease long over), then taken over by a second.
      const first = await db.inOrg(a.orgId, (tx) => claimGeneration(tx, id, Date.now() - 600_000, 1000))
      const second = await db.inOrg(a.orgId, (tx) => claimGeneration(tx, id, Date.now(), 600_000))
      t.equal(first?.attempt, 1)
      t.equal(second?.attempt, 2)
      const third = await db.inOrg(a.orgId, (tx) => claimGeneration(tx, id, Date.now(), 600_000))
      t.equal(third, null, 'not while the second holds it')
      const outcome = { status: 'done' as const, result: { text: 'x' }, errorCode: null, recordId: null }
      t.equal(
        await db.inOrg(a.orgId, (tx) => finishGeneration(tx, id, 1, outcome)),
        false,
        'the first may not finish it',
      )
      t.equal(await db.inOrg(a.orgId, (tx) => finishGeneration(tx, id, 2, outcome)), true)
      t.equal(await db.inOrg(a.orgId, (tx) => finishGeneration(tx, id, 2, outcome)), false, 'only once')
    })

    await t.test('a generation asked through the plugin is answered once, its row done', async (t) => {
      const r = await call('/generate', { question: 'through the plugin' })
      t.equal(r.status, 200, JSON.stringify(r.body))
      const events = await generationEvents(k, a.orgId, r.body.generationId)
      t.equal(events.length, 1)
      const [row] = await k.ownerSql('select status, attempts from ai_generations where id = ?::uuid', [
        r.body.generationId,
      ])
      t.match(row, { status: 'done', attempts: 1 })
    })
  })
