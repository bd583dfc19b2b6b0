import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { buildPlugin } from '@trellis/plugin-sdk'
import { orgTx } from '../../src/kernel-context.js'
import { PLATFORM_ORG } from '../../src/db/database.js'
import type { VersionStatus, VersionUpload } from '../../src/plugins/versions.js'
import type { TestKernel } from './test-kernel.js'

/**
 * Registers a plugin version the way the marketplace does after its checks (tests of the plugin
 * host do not go through publishing; the marketplace's own tests do).
 */
export async function registerVersion(k: TestKernel, upload: VersionUpload, status: VersionStatus = 'approved') {
  const ctx = k.kernel.ctx
  return orgTx(ctx, PLATFORM_ORG, (tx) =>
    ctx.plugins.versions.register(tx, { ...upload, status }, (b) => ctx.plugins.probe(b), 'test'),
  )
}

/** Moves a version to another status, as a marketplace decision would. */
export async function setVersionStatus(k: TestKernel, id: string, status: VersionStatus) {
  const ctx = k.kernel.ctx
  return orgTx(ctx, PLATFORM_ORG, (tx) => ctx.plugins.versions.setStatus(tx, id, status))
}

/** The test fixture plugin `name` (core/test/fixtures/plugins/<name>), built: what registerVersion takes. */
export async function builtFixture(name: string) {
  const dir = join(import.meta.dirname, '..', 'fixtures', 'plugins', name)
  const manifest = JSON.parse(await readFile(join(dir, 'trellis.plugin.json'), 'utf8'))
  const b = await buildPlugin({ dir, write: false })
  return { manifest, code: b.code, sourceMap: b.sourceMap, sha256: b.sha256 }
}
