import { join } from 'node:path'
import { readFile } from 'node:fs/promises'
import type { Test } from 'tap'
import { buildPlugin } from '@trellis/plugin-sdk'
import type { KernelOptions } from '../../src/kernel.js'
import { type DbKind, type TestSetup, createTenantWithAdmin, startTestKernel, type TestKernel } from './test-kernel.js'
import { startInferenceServer } from './inference-server.js'
import { registerVersion } from './plugin-versions.js'
import { eventually } from './receiver.js'

const dir = join(import.meta.dirname, '..', 'fixtures', 'plugins', 'ai-generator')
export const generatorManifest = JSON.parse(await readFile(join(dir, 'trellis.plugin.json'), 'utf8'))
const built = await buildPlugin({ dir, write: false })

export interface GenerationEventRow {
  id: string
  type: string
  source: string
  data: { generationId: string; answer?: { text: string; recordId: string; model: string }; error?: { code: string } }
}

/**
 * A kernel with the long-generation fixture plugin (`@acme/ai-generator`) installed in a tenant
 * whose chat model is a local inference server (`slow-chat`); `call` posts to the plugin's routes.
 */
export async function startGeneratorKernel(t: Test, setup: DbKind | TestSetup, options: Partial<KernelOptions> = {}) {
  const server = await startInferenceServer()
  t.teardown(() => server.close())
  const k = await startTestKernel(t, setup, { events: { egressAllow: ['127.0.0.1'] }, ...options })
  await registerVersion(k, { manifest: generatorManifest, code: built.code, sourceMap: built.sourceMap })
  const a = await createTenantWithAdmin(k, `gen-${typeof setup === 'string' ? setup : setup.name.replace(/\W+/g, '-')}`)
  const inst = await k.req('POST', '/v1/installations', {
    token: a.token,
    body: {
      plugin: generatorManifest.name,
      version: generatorManifest.version,
      capabilities: generatorManifest.capabilities,
    },
  })
  if (inst.status !== 201) throw new Error(`install: ${JSON.stringify(inst.body)}`)
  const reg = await k.req('POST', '/v1/ai/models', {
    token: k.adminToken,
    body: { alias: 'slow-chat', kind: 'chat', provider: 'huggingface', endpointUrl: server.url, modelId: 'acme/slow' },
  })
  if (reg.status !== 201) throw new Error(`model: ${JSON.stringify(reg.body)}`)
  await k.req('PUT', '/v1/ai/settings', { token: a.token, body: { chatModel: 'slow-chat' } })
  const call = (path: string, body: unknown) =>
    k.req('POST', `/v1/x/@acme/ai-generator${path}`, { token: a.token, body })
  return { k, a, inst, server, call }
}

/** The generation's events, once the worker has written one. */
export const generationEvents = (k: TestKernel, tenantId: string, generationId: string) =>
  eventually(async () => {
    const rows = await k.ownerSql<GenerationEventRow>(
      `select id, type, source, data from events where tenant_id = ?::uuid and data->>'generationId' = ?`,
      [tenantId, generationId],
    )
    return rows.length ? rows : undefined
  }, 60_000)
