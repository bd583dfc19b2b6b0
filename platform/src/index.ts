// @trellis/platform — the composition root: the one place that knows the kernel, the marketplace
// and the first-party plugins, and assembles them. `trellis` (bin/trellis.js → src/cli.ts) and
// the SDK's `trellis-plugin dev/test` (startDevKernel) start kernels through it.
import { startDevKernel as startKernelForDev, type Extension } from '@trellis/core'
import { createMarketplace, type MarketplaceOptions } from '@trellis/marketplace'
import type { StartDevKernel } from '@trellis/plugin-sdk'
import { consoleExtension } from './console.js'
import { firstPartyDirs } from './first-party.js'
import { northwindDemo } from './northwind-demo.js'

export { CONSOLE_CSP, consoleDist, consoleExtension } from './console.js'
export { FIRST_PARTY_PACKAGES, firstPartyDirs } from './first-party.js'
export { northwindDemo } from './northwind-demo.js'

/**
 * The extensions of one kernel, created fresh for it (each holds that kernel's state): the
 * marketplace (with the first-party plugins for `--demo`), then the Northwind demo data.
 */
export function platformExtensions(opts: { marketplace?: MarketplaceOptions } = {}): Extension[] {
  return [createMarketplace({ firstParty: firstPartyDirs(), ...opts.marketplace }), northwindDemo(), consoleExtension()]
}

/** A dev kernel (see @trellis/plugin-sdk's StartDevKernel) with the platform's marketplace. */
export const startDevKernel: StartDevKernel = (options) =>
  startKernelForDev(options, { extensions: [createMarketplace()] })
