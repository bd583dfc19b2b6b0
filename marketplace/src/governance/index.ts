import type { Api } from '@trellis/core'
import type { Services } from '../services.js'
import { registerReviewRoutes } from './review-routes.js'
import { registerKillSwitchRoutes } from './kill-switch-routes.js'
import { registerListingRoutes } from './listing-routes.js'
import { registerCatalogRoutes } from './catalog.js'
import { registerClassificationPolicyRoutes } from './classification-policy.js'

/** Review, the kill switch, listings and channel catalogs. */
export function registerGovernanceRoutes(app: Api, k: Services): void {
  registerReviewRoutes(app, k)
  registerKillSwitchRoutes(app, k)
  registerListingRoutes(app, k)
  registerCatalogRoutes(app, k)
  registerClassificationPolicyRoutes(app, k)
}

/** Installs obey the tenant's partner's channel catalog (an install policy). */
export { catalogInstallPolicy } from './catalog.js'
export { decide } from './review-routes.js'
export { MKT_GOVERNANCE } from './errors.js'
