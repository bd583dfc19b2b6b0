import type { Api } from '@trellis/core/http/types.js'
import type { KernelContext } from '@trellis/core/kernel-context.js'
import { registerReviewRoutes } from './review-routes.js'
import { registerKillSwitchRoutes } from './kill-switch-routes.js'
import { registerListingRoutes } from './listing-routes.js'
import { registerCatalogRoutes, catalogInstallPolicy } from './catalog.js'

/** Review, the kill switch, listings and channel catalogs. */
export function registerGovernanceRoutes(app: Api, k: KernelContext): void {
  registerReviewRoutes(app, k)
  registerKillSwitchRoutes(app, k)
  registerListingRoutes(app, k)
  registerCatalogRoutes(app, k)
}

/** Installs obey the tenant's partner's channel catalog. */
export function installGovernance(k: KernelContext): void {
  k.plugins.installPolicy = catalogInstallPolicy
}

export { MKT_GOVERNANCE } from './errors.js'
