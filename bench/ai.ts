// `npm run bench -- ai`: the governed AI path's own overhead over the provider's answer time.
// - baseline: `@huggingface/inference`'s InferenceClient calling the local inference test server
//   directly (chatCompletion, endpointUrl) — the provider's answer time and nothing else;
// - kernel: the same question through the AI service (`ai.complete` as a plugin host call or the
//   /v1/ai/complete route makes it): tenant settings and model resolution, masking and injection
//   screening, the same client through the egress guard, the call record and its audit entry —
//   on the embedded database (PGlite), one call at a time — for a tenant with no budget (no
//   transaction before the model, ADR 0087) and for a tenant with a monthly token budget (a
//   reservation before the model, a settlement after).
// Alternating rounds; the overhead is p50(kernel) − p50(baseline) of the same run, and the CPU
// time per call of this process (the embedded database and the local server run in it) against
// the baseline's. Every answer is checked, and every kernel call must have left its record.
import { randomBytes } from 'node:crypto'
import { InferenceClient } from '@huggingface/inference'
import { createKernel } from '../core/src/kernel.js'
import { loadConfig } from '../core/src/config.js'
import { createPlatformAdmin } from '../core/src/bootstrap.js'
import { startInferenceServer } from '../core/test/helpers/inference-server.js'
import { reserveBeforeModel } from '../core/src/ai/budgets.js'
import { periodOf } from '../core/src/ai/usage-period.js'
import { loadAverage, median, percentile } from './_harness.js'

const CALLS = Number(process.env.BENCH_AI_CALLS ?? 200)
const ROUNDS = Number(process.env.BENCH_AI_ROUNDS ?? 4)
const PER_ROUND = Math.ceil(CALLS / ROUNDS)
const MEASURED = PER_ROUND * ROUNDS

export async function run(): Promise<void> {
  const server = await startInferenceServer()
  const kernel = await createKernel({
    config: loadConfig({
      LOG_LEVEL: 'silent',
      TRELLIS_SECRET_KEY: randomBytes(32).toString('hex'),
      TRELLIS_DATA_DIR: '/tmp/trellis-bench-ai',
      PORT: '0',
    }),
    embeddedDir: 'memory://',
    migrate: true,
    events: { egressAllow: ['127.0.0.1'] },
  })
  try {
    await createPlatformAdmin(kernel.ctx, { email: 'root@bench.test', password: 'bench-password-1' })
    const login = await kernel.app.inject({
      method: 'POST',
      url: '/v1/auth/login',
      payload: { email: 'root@bench.test', password: 'bench-password-1' },
    })
    const admin = { authorization: `Bearer ${login.json().accessToken}` }
    const tenantIds: string[] = []
    for (const slug of ['bench-ai', 'bench-ai-budget']) {
      const tenant = await kernel.app.inject({
        method: 'POST',
        url: '/v1/tenants',
        headers: admin,
        payload: { name: slug, slug, admin: { email: `a@${slug}.test`, name: 'A', password: 'bench-password-2' } },
      })
      if (tenant.statusCode !== 201) throw new Error(tenant.body)
      tenantIds.push(tenant.json().id as string)
    }
    const [tenantId, budgetTenantId] = tenantIds as [string, string]
    const model = await kernel.app.inject({
      method: 'POST',
      url: '/v1/ai/models',
      headers: admin,
      payload: {
        alias: 'bench-chat',
        kind: 'chat',
        provider: 'huggingface',
        endpointUrl: server.url,
        modelId: 'bench/chat',
      },
    })
    if (model.statusCode !== 201) throw new Error(model.body)
    for (const id of tenantIds)
      await kernel.ctx.db.inOrg(id, (tx) =>
        tx.sql(`insert into ai_settings (tenant_id, chat_model) values (?::uuid, 'bench-chat')`, [id]),
      )
    await kernel.ctx.db.inOrg(budgetTenantId, (tx) =>
      tx.sql(
        `insert into ai_budgets (scope_id, scope, unit, monthly_limit) values (?::uuid, 'tenant', 'tokens', 1000000000)`,
        [budgetTenantId],
      ),
    )
    const messages = [{ role: 'user' as const, content: 'Who approves orders over 500 EUR? Write to ada@example.org.' }]
    const client = new InferenceClient(undefined, { endpointUrl: server.url, retry_on_error: false })
    const direct = async () => {
      const r = await client.chatCompletion({ model: 'bench/chat', messages })
      if (!r.choices[0]?.message?.content) throw new Error('baseline: empty answer')
    }
    const governed = (tenant: string) => async () => {
      const r = await kernel.ctx.ai.complete({ tenantId: tenant, feature: 'bench' }, { messages, maxTokens: 100 })
      if (!r.recordId || !r.text) throw new Error('kernel: no record')
    }
    // What the budgeted call does before the model and the unbudgeted one does not, alone: the
    // same function, budget and amount (the call's bound: 100 output tokens plus its input's).
    const budget = {
      owner: budgetTenantId,
      scopeId: budgetTenantId,
      scope: 'tenant',
      unit: 'tokens',
      limit: 1e9,
    } as const
    const reservationOnly = async () => {
      const r = await reserveBeforeModel(kernel.ctx.db, budgetTenantId, [budget], periodOf(Date.now()), () => 140)
      if (r.length !== 1) throw new Error('reservation: none made')
    }
    const sides = [
      ['baseline', direct],
      ['kernel, no budget', governed(tenantId)],
      ['kernel, with a budget', governed(budgetTenantId)],
      ['reservation alone', reservationOnly],
    ] as const
    for (let i = 0; i < 20; i++) for (const [, fn] of sides) await fn()
    const times: Record<string, number[]> = {}
    const cpu: Record<string, number> = {}
    const cpuMs = () => {
      const u = process.cpuUsage()
      return (u.user + u.system) / 1000
    }
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? sides : [...sides].reverse()
      for (const [name, fn] of order) {
        const c0 = cpuMs()
        for (let i = 0; i < PER_ROUND; i++) {
          const t0 = performance.now()
          await fn()
          ;(times[name] ??= []).push(performance.now() - t0)
        }
        cpu[name] = (cpu[name] ?? 0) + cpuMs() - c0
      }
    }
    const b50 = median(times.baseline as number[])
    const bCpu = (cpu.baseline as number) / MEASURED
    for (const [name] of sides) {
      const xs = times[name] as number[]
      const perCall = (cpu[name] as number) / MEASURED
      console.log(
        `  ${name.padEnd(22)} p50 ${median(xs).toFixed(2)} ms, p99 ${percentile(xs, 99).toFixed(2)} ms, CPU ${perCall.toFixed(2)} ms/call` +
          (name === 'baseline'
            ? ' (InferenceClient → local server)'
            : name === 'reservation alone'
              ? ' (what the budgeted path does before the model)'
              : `; overhead p50 ${(median(xs) - b50).toFixed(2)} ms (target ≤ 5 ms), CPU ${(perCall - bCpu).toFixed(2)} ms/call`),
      )
    }
    const extra = (name: string) => (cpu[name] as number) / MEASURED
    const diffCpu = extra('kernel, with a budget') - extra('kernel, no budget')
    const diffWall = median(times['kernel, with a budget'] as number[]) - median(times['kernel, no budget'] as number[])
    console.log(
      `  budget minus no budget: p50 ${diffWall.toFixed(2)} ms, CPU ${diffCpu.toFixed(2)} ms/call; ` +
        `the reservation alone: p50 ${median(times['reservation alone'] as number[]).toFixed(2)} ms, CPU ${extra('reservation alone').toFixed(2)} ms/call`,
    )
    console.log(`  ${MEASURED} calls each, ${ROUNDS} alternating rounds; ${loadAverage()}`)
    for (const [id, label] of [
      [tenantId, 'no budget'],
      [budgetTenantId, 'with a budget'],
    ] as const) {
      const records = await kernel.ctx.db.inOrg(id, (tx) =>
        tx.sql<{ n: number }>(`select count(*)::int as n from ai_records`),
      )
      const expected = 20 + MEASURED
      if (records[0]!.n !== expected) throw new Error(`${label}: ${records[0]!.n} records for ${expected} calls`)
      console.log(`  records written (${label}): ${records[0]!.n}, one per kernel call`)
    }
  } finally {
    await kernel.close()
    await server.close()
  }
}
