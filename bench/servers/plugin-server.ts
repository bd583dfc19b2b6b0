// The kernel with the benchmark plugin installed for a tenant, and — for the baseline — a
// native kernel route doing the same work: the same body schema, one record inserted through
// the same data service, one audit entry, in one tenant transaction.
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { Type } from '@sinclair/typebox'
import { buildPlugin } from '@trellis/plugin-sdk'
import { createKernel } from '../../core/src/kernel.js'
import { loadConfig } from '../../core/src/config.js'
import { benchTenant } from './_tenant.js'
import { orgTx } from '../../core/src/kernel-context.js'
import { PLATFORM_ORG } from '../../core/src/db/database.js'
import { appendAudit } from '../../core/src/audit/audit-log.js'
import { principalOf } from '../../core/src/http/guards.js'

const dir = fileURLToPath(new URL('../fixtures/notes-plugin', import.meta.url))
const kernel = await createKernel({
  config: loadConfig({ ...process.env, PORT: '0', LOG_LEVEL: 'silent' }),
  migrate: true,
  rateLimitPerMinute: 10_000_000,
  poolMax: 10,
  plugins: { sandboxWorkers: Number(process.env.BENCH_SANDBOX_WORKERS ?? 1) },
})
const k = kernel.ctx
const manifest = JSON.parse(await readFile(`${dir}/trellis.plugin.json`, 'utf8'))
const Body = Type.Object({ title: Type.String({ minLength: 1, maxLength: 200 }), qty: Type.Optional(Type.Integer({ minimum: 0 })) }, { additionalProperties: false })
const ref = { plugin: manifest.name, name: 'notes', schema: manifest.collections.notes.schema }
kernel.app.post('/v1/bench/notes', { schema: { body: Body } }, async (request, reply) => {
  const p = principalOf(request)
  const stored = await orgTx(k, p.orgId, async (tx) => {
    const rec = await k.plugins.data.insert(tx, ref, request.body as Record<string, unknown>)
    await appendAudit(tx, p.orgId, { actor: { kind: p.kind, id: p.id }, action: 'bench.note.created', target: { kind: 'note', id: (rec as { id: string }).id } })
    return rec
  })
  reply.code(201)
  return stored
})

const { url, token: tenantToken, tenantId, call } = await benchTenant(kernel)
const tenant = { accessToken: tenantToken, org: { id: tenantId } }
const built = await buildPlugin({ dir, write: false })
await orgTx(k, PLATFORM_ORG, (tx) => k.plugins.versions.register(tx, { manifest, code: built.code, sourceMap: built.sourceMap, status: 'approved' }, (b) => k.plugins.probe(b), 'bench'))
await call('POST', '/v1/installations', { plugin: manifest.name, version: manifest.version, capabilities: manifest.capabilities }, tenant.accessToken)
process.stdout.write(JSON.stringify({ url, token: tenant.accessToken, tenantId: tenant.org.id }) + '\n')
process.on('SIGTERM', async () => {
  await kernel.close()
  process.exit(0)
})
