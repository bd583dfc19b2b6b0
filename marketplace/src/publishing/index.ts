/** The publishing half of the marketplace: publishers, publish, automated checks. */
import type { Api, AuditRecord, Principal } from '@trellis/core'
import type { Services } from '../services.js'
import { ChecksWorker, type ChecksWorkerOptions } from './checks-worker.js'
import { registerPublisherRoutes } from './publisher-routes.js'
import { registerPublishedVersionsRoutes } from './published-versions-routes.js'
import { publishVersion as publishWith, registerPublishRoutes, type PublishedVersion } from './publish-routes.js'
import type { Upload } from './upload.js'

export { ChecksWorker, type ChecksWorkerOptions } from './checks-worker.js'
export { PUBLISH_LIMITS, RESERVED_SCOPES } from './limits.js'
export { CHECK_NAMES, capabilityDiff, staticScan, type CapabilityDiff, type CheckResult } from './checks.js'
export type { PublishedVersion, Upload }

/** Publishing for one kernel: its routes, and its checks worker (none when the checks run in other processes). */
export interface Publishing {
  readonly worker: ChecksWorker | undefined
  routes(app: Api): void
  /**
   * Publishes a package exactly as the upload route does (every check, audit, events; status
   * `checking`), for code that has the package in hand — e.g. seeding first-party plugins. `p` is
   * the publishing partner's principal (with plugins.publish); the checks worker is woken.
   */
  publish(
    p: Principal,
    plugin: string,
    upload: Upload,
    meta: Pick<AuditRecord, 'actor' | 'ip' | 'requestId'>,
  ): Promise<PublishedVersion>
}

export function createPublishing(k: Services, opts: { checks: false | ChecksWorkerOptions }): Publishing {
  const worker = opts.checks === false ? undefined : new ChecksWorker(k, opts.checks)
  const published = () => worker?.nudge()
  return {
    worker,
    routes(app) {
      registerPublisherRoutes(app, k)
      registerPublishedVersionsRoutes(app, k)
      registerPublishRoutes(app, k, { published })
    },
    publish: (p, plugin, upload, meta) => publishWith(k, p, plugin, upload, meta, published),
  }
}
