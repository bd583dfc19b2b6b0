// @trellis/marketplace: the governed path by which a partner's plugin version reaches a tenant.
// It extends the kernel through core's extension API only; the composition root
// (@trellis/platform) creates one per kernel and passes it to createKernel.
import { defineExtension, KRN, type AuditRecord, type Extension, type Principal } from '@trellis/core'
import { marketplaceDeps, type Services } from './services.js'
import { catalogInstallPolicy, registerGovernanceRoutes } from './governance/index.js'
import { ChecksWorker, createPublishing, type ChecksWorkerOptions, type Publishing } from './publishing/index.js'
import { seedFirstPartyPlugins, type FirstPartyResult } from './first-party.js'
import type { PublishedVersion, Upload } from './publishing/index.js'

export interface MarketplaceOptions {
  /**
   * The automated checks worker of this process: its tuning, or `false` to leave the checks to
   * other processes. Default: on, unless `TRELLIS_MARKETPLACE_CHECKS=off`.
   */
  checks?: false | ChecksWorkerOptions
  /** Plugin package folders `--demo` publishes, approves and installs for the demo tenant (dependencies first). */
  firstParty?: string[]
}

/** The marketplace of one kernel. */
export interface Marketplace extends Extension {
  /** The kernel's checks worker, once registered (undefined before, or when the checks are off). */
  readonly checks: ChecksWorker | undefined
  /** Publishes a package as the upload route does (see `publishVersion` in publish-routes.ts). */
  publishVersion(
    p: Principal,
    plugin: string,
    upload: Upload,
    meta: Pick<AuditRecord, 'actor' | 'ip' | 'requestId'>,
  ): Promise<PublishedVersion>
  /** Another checks worker over this kernel's services, as a second process runs one (not started). */
  createChecksWorker(opts?: ChecksWorkerOptions): ChecksWorker
  /** Publishes, approves and installs first-party plugins for a tenant (the way every partner's plugin goes). */
  seedFirstParty(opts: Parameters<typeof seedFirstPartyPlugins>[2]): Promise<FirstPartyResult[]>
}

/**
 * A marketplace for one kernel: its routes under /v1/marketplace, the channel-catalog install
 * policy, the checks worker as a background job, and the demo's first-party plugins. All its
 * state lives in the returned object — two kernels in one process each get their own.
 */
export function createMarketplace(options: MarketplaceOptions = {}): Marketplace {
  let bound: { services: Services; publishing: Publishing } | undefined
  const ready = () => {
    if (!bound)
      throw KRN.CONFIG_INVALID({ variable: 'extensions', reason: 'the marketplace is not registered with a kernel' })
    return bound
  }
  const checks = options.checks ?? (process.env.TRELLIS_MARKETPLACE_CHECKS === 'off' ? false : {})
  const extension = defineExtension({
    name: 'marketplace',
    deps: marketplaceDeps,
    register(services, points) {
      if (bound)
        throw KRN.CONFIG_INVALID({
          variable: 'extensions',
          reason: 'a marketplace serves one kernel: create another with createMarketplace()',
        })
      const publishing = createPublishing(services, { checks })
      bound = { services, publishing }
      points.installPolicies.add(catalogInstallPolicy(services))
      points.routes.add((app) => {
        registerGovernanceRoutes(app, services)
        publishing.routes(app)
      })
      const worker = publishing.worker
      if (worker)
        points.jobs.add({ name: 'marketplace-checks', start: () => worker.start(), stop: () => worker.stop() })
      const dirs = options.firstParty ?? []
      if (dirs.length)
        points.demo.add(async (demo) => {
          await seedFirstPartyPlugins(services, publishing, { tenantId: demo.tenantId, dirs, log: demo.log })
          return undefined
        })
    },
  })
  return {
    ...extension,
    get checks() {
      return bound?.publishing.worker
    },
    publishVersion: (p, plugin, upload, meta) => ready().publishing.publish(p, plugin, upload, meta),
    createChecksWorker: (opts) => new ChecksWorker(ready().services, opts),
    seedFirstParty: (opts) => seedFirstPartyPlugins(ready().services, ready().publishing, opts),
  }
}

export { MKT } from './errors.js'
export { MKT_GOVERNANCE } from './governance/index.js'
export { ChecksWorker, type ChecksWorkerOptions, type PublishedVersion, type Upload } from './publishing/index.js'
export type { FirstPartyResult } from './first-party.js'
