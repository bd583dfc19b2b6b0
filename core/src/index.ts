// @trellis/core's public entry — the only one. What other packages may use: the kernel and its
// configuration (for the composition root and tests), and the extension API (services and
// extension points, extension-api/). Nothing else of core is reachable from outside it.
import {
  createKernel as createKernelWithContext,
  type Kernel as KernelWithContext,
  type KernelOptions,
} from './kernel.js'

export type { KernelOptions }
/**
 * A kernel as other packages hold it: its HTTP app, its extensions and what they registered,
 * `listen` and `close`. Core's internal record of its services (`ctx`, with writers such as the
 * test-only `PluginVersions.setStatus`) is not part of it: outside core, the extension API's
 * services are the only way in, and the version registry the only writer of version state.
 */
export type Kernel = Omit<KernelWithContext, 'ctx'>
/** Opens the database, brings the schema up to date, registers the extensions, builds the API. */
export const createKernel: (options?: KernelOptions) => Promise<Kernel> = createKernelWithContext
export { loadConfig, type KernelConfig } from './config.js'
export { startDevKernel } from './plugins/dev-kernel.js'
export { runCli, type CliAssembly } from './cli/program.js'
export * from './extension-api/index.js'
