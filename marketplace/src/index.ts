// @trellis/marketplace: the governed path by which a partner's plugin version reaches a tenant.
// The kernel loads it at start (see core/src/extensions.ts) and calls `extension`.
import type { KernelExtension } from '@trellis/core/extensions.js'
import { installGovernance, registerGovernanceRoutes } from './governance/index.js'
import { closePublishing, initPublishing, registerPublishing } from './publishing/index.js'
import { seedFirstPartyPlugins } from './first-party.js'
import { fileURLToPath } from 'node:url'

/** The first-party plugins the demo installs, dependencies first. */
const FIRST_PARTY = ['catalog', 'pricing', 'inventory', 'orders', 'partner-onboarding'].map((p) =>
  fileURLToPath(new URL(`../../plugins/${p}`, import.meta.url)),
)

/** The marketplace as a kernel extension: its routes live under /v1/marketplace. */
export const extension: KernelExtension = {
  name: 'marketplace',
  init(k) {
    installGovernance(k)
    initPublishing(k)
  },
  routes(app, k) {
    registerGovernanceRoutes(app, k)
    registerPublishing(app, k)
  },
  async close() {
    await closePublishing()
  },
  async seedDemo(k, demo) {
    await seedFirstPartyPlugins(k, { tenantId: demo.tenantId, dirs: FIRST_PARTY, log: demo.log })
  },
}
