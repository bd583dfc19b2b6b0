// @ts-check
// isolated-vm for the Node that runs this worker. Each isolated-vm line supports only some Node
// lines: 5.0.x is the last for Node 20, 6.2 ships prebuilt binaries for Node 22 and 24, 7.x for
// Node 24 and 26. The sandbox's package.json lists each as an optional dependency under its own
// alias (`isolated-vm`, `isolated-vm-6`, `isolated-vm-7`); npm skips an optional package whose
// `engines` this Node does not satisfy, so an install holds what this Node can load, and this
// module picks it by `process.versions.node` (docs/adr/0038-isolated-vm-per-node-line.md).
import { createRequire } from 'node:module'

/** The supported Node major lines, as `engines` and the README state them. */
export const SUPPORTED_NODE_LINES = [20, 22, 24]

/**
 * The packages to try for a Node major version, best first.
 * @param {number} major
 * @returns {string[]}
 */
export function isolatedVmCandidates(major) {
  if (major >= 24) return ['isolated-vm-7', 'isolated-vm-6']
  if (major >= 22) return ['isolated-vm-6']
  return ['isolated-vm']
}

const require = createRequire(import.meta.url)

/**
 * Each candidate loaded by a literal `require`, so the dependency is visible to whoever reads
 * the source (and to test/boundaries.test.ts): the module, and its package.json for the version.
 * @type {Record<string, () => { ivm: typeof import('isolated-vm'), version: string }>}
 */
const LOADERS = {
  'isolated-vm': () => ({ ivm: require('isolated-vm'), version: require('isolated-vm/package.json').version }),
  'isolated-vm-6': () => ({ ivm: require('isolated-vm-6'), version: require('isolated-vm-6/package.json').version }),
  'isolated-vm-7': () => ({ ivm: require('isolated-vm-7'), version: require('isolated-vm-7/package.json').version }),
}

/**
 * Loads the isolated-vm that fits `nodeVersion`, or throws one line saying what to do.
 * @param {string} nodeVersion e.g. `process.versions.node`
 * @returns {{ ivm: typeof import('isolated-vm'), name: string, version: string }}
 */
export function loadIsolatedVm(nodeVersion) {
  const major = Number(nodeVersion.split('.')[0])
  const tried = []
  for (const name of isolatedVmCandidates(major)) {
    try {
      return { name, ...LOADERS[name]() }
    } catch (err) {
      const code = /** @type {{ code?: string }} */ (err).code
      if (code !== 'MODULE_NOT_FOUND') throw err
      tried.push(name)
    }
  }
  throw new Error(
    `isolated-vm for Node ${nodeVersion} is not installed (looked for ${tried.join(', ')}): ` +
      `run \`npm ci\` with this Node; Trellis supports Node ${SUPPORTED_NODE_LINES.join(', ')}`,
  )
}

const loaded = loadIsolatedVm(process.versions.node)
/** Which package was loaded, e.g. `{ name: 'isolated-vm-6', version: '6.2.0' }`. */
export const ISOLATED_VM = { name: loaded.name, version: loaded.version }
export default loaded.ivm
