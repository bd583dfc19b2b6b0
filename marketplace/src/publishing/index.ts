/** The publishing half of the marketplace: publishers, publish, automated checks. */
import type { Api } from '@trellis/core/http/types.js'
import type { KernelContext } from '@trellis/core/kernel-context.js'
import { ChecksWorker, type ChecksWorkerOptions } from './checks-worker.js'
import { registerPublisherRoutes } from './publisher-routes.js'
import {
  publishVersion as publishWith,
  registerPublishRoutes,
  type PublishedVersion,
  type Upload,
} from './publish-routes.js'
import type { Principal } from '@trellis/core/identity/principal.js'
import type { AuditRecord } from '@trellis/core/audit/audit-log.js'

export { ChecksWorker } from './checks-worker.js'
export { PUBLISH_LIMITS, RESERVED_SCOPES } from './limits.js'
export { CHECK_NAMES, capabilityDiff, staticScan, type CapabilityDiff, type CheckResult } from './checks.js'

// One checks worker per kernel in this process (tests run several kernels, one after another).
const workers = new Map<KernelContext, ChecksWorker>()

/** The checks worker of a kernel (tests use it to wait for the checks). */
export function checksWorkerOf(k: KernelContext): ChecksWorker | undefined {
  return workers.get(k)
}

/** Starts the checks worker (`TRELLIS_MARKETPLACE_CHECKS=off` leaves the checks to other processes). */
export function initPublishing(k: KernelContext, opts: ChecksWorkerOptions = {}): void {
  if (workers.has(k) || process.env.TRELLIS_MARKETPLACE_CHECKS === 'off') return
  const worker = new ChecksWorker(k, opts)
  workers.set(k, worker)
  worker.start()
}

export function registerPublishing(app: Api, k: KernelContext): void {
  registerPublisherRoutes(app, k)
  registerPublishRoutes(app, k, { published: () => workers.get(k)?.nudge() })
  // This kernel's worker stops with its HTTP API (before the sandbox it uses closes).
  app.addHook('onClose', async () => {
    const w = workers.get(k)
    workers.delete(k)
    await w?.stop()
  })
}

/**
 * Publishes a package exactly as the upload route does (every check, audit, events; status
 * `checking`), for code that has the package in hand — e.g. seeding first-party plugins. `p` is
 * the publishing partner's principal (with plugins.publish); the checks worker is woken.
 */
export function publishVersion(
  k: KernelContext,
  p: Principal,
  plugin: string,
  upload: Upload,
  meta: Pick<AuditRecord, 'actor' | 'ip' | 'requestId'>,
): Promise<PublishedVersion> {
  return publishWith(k, p, plugin, upload, meta, () => workers.get(k)?.nudge())
}
export type { PublishedVersion, Upload }

export async function closePublishing(): Promise<void> {
  const all = [...workers.values()]
  workers.clear()
  await Promise.all(all.map((w) => w.stop()))
}
