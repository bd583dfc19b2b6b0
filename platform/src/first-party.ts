import { createRequire } from 'node:module'
import { dirname } from 'node:path'

const require = createRequire(import.meta.url)

/** The first-party plugin packages the demo installs, dependencies first. */
export const FIRST_PARTY_PACKAGES = [
  '@trellis/catalog',
  '@trellis/pricing',
  '@trellis/inventory',
  '@trellis/orders',
  '@trellis/partner-onboarding',
  '@trellis/procurement',
  '@trellis/returns',
  '@trellis/copilot',
] as const

/**
 * Their folders (manifest and sources), found by package resolution — they are dependencies of
 * this package — with literal specifiers, so the boundary test sees each one.
 */
export function firstPartyDirs(): string[] {
  return [
    require.resolve('@trellis/catalog/package.json'),
    require.resolve('@trellis/pricing/package.json'),
    require.resolve('@trellis/inventory/package.json'),
    require.resolve('@trellis/orders/package.json'),
    require.resolve('@trellis/partner-onboarding/package.json'),
    require.resolve('@trellis/procurement/package.json'),
    require.resolve('@trellis/returns/package.json'),
    require.resolve('@trellis/copilot/package.json'),
  ].map((file) => dirname(file))
}
