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
] as const

/** Their folders (manifest and sources), found by package resolution: they are dependencies of this package. */
export function firstPartyDirs(): string[] {
  return FIRST_PARTY_PACKAGES.map((name) => dirname(require.resolve(`${name}/package.json`)))
}
