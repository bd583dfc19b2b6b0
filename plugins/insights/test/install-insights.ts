// The ERP plugins and @trellis/insights, registered with a test kernel and installed in tenants.
import { join } from 'node:path'
import { buildPlugin } from '@trellis/plugin-sdk'
import type { TestKernel } from '../../../core/test/helpers/test-kernel.js'
import { registerVersion } from '../../../core/test/helpers/plugin-versions.js'
import { ERP_PLUGINS, bundleOf } from '../../support/kernel.js'

const insights = await buildPlugin({ dir: join(import.meta.dirname, '..'), write: false })
const { default: insightsManifest } = await import('../trellis.plugin.json', { with: { type: 'json' } })

/** Registers the ERP plugins and the insights plugin, then installs all of them (dependencies first) for each token's tenant. */
export async function installInsights(k: TestKernel, tokens: string[]): Promise<void> {
  const bundles = [
    ...(await Promise.all(ERP_PLUGINS.map((id) => bundleOf(id)))),
    { manifest: insightsManifest as any, code: insights.code, sourceMap: insights.sourceMap },
  ]
  for (const b of bundles)
    await registerVersion(k, { manifest: b.manifest as any, code: b.code, sourceMap: b.sourceMap })
  for (const token of tokens)
    for (const { manifest } of bundles) {
      const res = await k.req('POST', '/v1/installations', {
        token,
        body: { plugin: manifest.name, version: manifest.version, capabilities: manifest.capabilities },
      })
      if (res.status !== 201) throw new Error(`install ${manifest.name}: ${res.status} ${JSON.stringify(res.body)}`)
    }
}
