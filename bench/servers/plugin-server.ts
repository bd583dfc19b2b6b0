// The kernel with the benchmark plugin installed for a tenant, and — for the baseline — a
// native kernel route doing the same work: the same body schema, one record inserted through
// the same data service, one audit entry, in one tenant transaction.
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { Type } from '@sinclair/typebox'
import { announce, benchKernel, benchTenant, installBuilt } from './_tenant.js'
import { orgTx } from '../../core/src/kernel-context.js'
import { appendAudit } from '../../core/src/audit/audit-log.js'
import { principalOf } from '../../core/src/http/guards.js'

const dir = fileURLToPath(new URL('../fixtures/notes-plugin', import.meta.url))
const kernel = await benchKernel({ plugins: { sandboxWorkers: Number(process.env.BENCH_SANDBOX_WORKERS ?? 1) } })
const k = kernel.ctx
const manifest = JSON.parse(await readFile(`${dir}/trellis.plugin.json`, 'utf8'))
const Body = Type.Object(
  { title: Type.String({ minLength: 1, maxLength: 200 }), qty: Type.Optional(Type.Integer({ minimum: 0 })) },
  { additionalProperties: false },
)
const ref = { plugin: manifest.name, name: 'notes', schema: manifest.collections.notes.schema }
kernel.app.post('/v1/bench/notes', { schema: { body: Body } }, async (request, reply) => {
  const p = principalOf(request)
  const stored = await orgTx(k, p.orgId, async (tx) => {
    const rec = await k.plugins.data.insert(tx, ref, request.body as Record<string, unknown>)
    await appendAudit(tx, p.orgId, {
      actor: { kind: p.kind, id: p.id },
      action: 'bench.note.created',
      target: { kind: 'note', id: (rec as { id: string }).id },
    })
    return rec
  })
  reply.code(201)
  return stored
})

const { url, token, tenantId, call } = await benchTenant(kernel)
await installBuilt(kernel, dir, call, token)
announce(kernel, { url, token, tenantId })
