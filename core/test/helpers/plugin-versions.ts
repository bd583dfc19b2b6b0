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
