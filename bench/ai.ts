// `npm run bench -- ai`: the governed AI path's own overhead over the provider's answer time.
// - baseline: `@huggingface/inference`'s InferenceClient calling the local inference test server
//   directly (chatCompletion, endpointUrl) — the provider's answer time and nothing else;
// - kernel: the same question through the AI service (`ai.complete` as a plugin host call or the
//   /v1/ai/complete route makes it): tenant settings and model resolution, a budget reservation,
//   masking and injection screening, the same client through the egress guard, settlement, the
//   call record and its audit entry — on the embedded database (PGlite), one call at a time.
// Alternating rounds; the overhead is p50(kernel) − p50(baseline) of the same run.
import { randomBytes } from 'node:crypto'
import { InferenceClient } from '@huggingface/inference'
import { createKernel } from '../core/src/kernel.js'
import { loadConfig } from '../core/src/config.js'
import { createPlatformAdmin } from '../core/src/bootstrap.js'
import { startInferenceServer } from '../core/test/helpers/inference-server.js'
import { loadAverage, median, percentile } from './_harness.js'

const CALLS = Number(process.env.BENCH_AI_CALLS ?? 200)
const ROUNDS = Number(process.env.BENCH_AI_ROUNDS ?? 4)

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
    const tenant = await kernel.app.inject({
      method: 'POST',
      url: '/v1/tenants',
      headers: admin,
      payload: {
        name: 'bench',
        slug: 'bench-ai',
        admin: { email: 'a@bench.test', name: 'A', password: 'bench-password-2' },
      },
    })
    const tenantId = tenant.json().id as string
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
    await kernel.ctx.db.inOrg(tenantId, (tx) =>
      tx.sql(`insert into ai_settings (tenant_id, chat_model) values (?::uuid, 'bench-chat')`, [tenantId]),
    )
    await kernel.ctx.db.inOrg(tenantId, (tx) =>
      tx.sql(
        `insert into ai_budgets (scope_id, scope, unit, monthly_limit) values (?::uuid, 'tenant', 'tokens', 1000000000)`,
        [tenantId],
      ),
    )
    const messages = [{ role: 'user' as const, content: 'Who approves orders over 500 EUR? Write to ada@example.org.' }]
    const client = new InferenceClient(undefined, { endpointUrl: server.url, retry_on_error: false })
    const direct = async () => {
      const r = await client.chatCompletion({ model: 'bench/chat', messages })
      if (!r.choices[0]?.message?.content) throw new Error('baseline: empty answer')
    }
    const governed = async () => {
      const r = await kernel.ctx.ai.complete({ tenantId, feature: 'bench' }, { messages, maxTokens: 100 })
      if (!r.recordId || !r.text) throw new Error('kernel: no record')
    }
    for (let i = 0; i < 20; i++) {
      await direct()
      await governed()
    }
    const times = { baseline: [] as number[], kernel: [] as number[] }
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, fn] of [
        ['baseline', direct],
        ['kernel', governed],
      ] as const) {
        for (let i = 0; i < CALLS / ROUNDS; i++) {
          const t0 = performance.now()
          await fn()
          times[name].push(performance.now() - t0)
        }
      }
    }
    const b50 = median(times.baseline)
    const k50 = median(times.kernel)
    console.log(
      `  baseline (InferenceClient → local server): p50 ${b50.toFixed(2)} ms, p99 ${percentile(times.baseline, 99).toFixed(2)} ms`,
    )
    console.log(
      `  kernel   (AiService.complete, governed):   p50 ${k50.toFixed(2)} ms, p99 ${percentile(times.kernel, 99).toFixed(2)} ms`,
    )
    console.log(
      `  overhead p50: ${(k50 - b50).toFixed(2)} ms (target ≤ 5 ms); ${CALLS} calls each, ${ROUNDS} alternating rounds; load ${loadAverage()}`,
    )
    const records = await kernel.ctx.db.inOrg(tenantId, (tx) =>
      tx.sql<{ n: number }>(`select count(*)::int as n from ai_records`),
    )
    console.log(`  records written: ${records[0]!.n} (every kernel call recorded)`)
  } finally {
    await kernel.close()
    await server.close()
  }
}
