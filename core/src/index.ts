// @trellis/core's public entry — the only one. What other packages may use: the kernel and its
// configuration (for the composition root and tests), and the extension API (services and
// extension points, extension-api/). Nothing else of core is reachable from outside it.
export { createKernel, type Kernel, type KernelOptions } from './kernel.js'
export { loadConfig, type KernelConfig } from './config.js'
export { startDevKernel } from './plugins/dev-kernel.js'
export { runCli, type CliAssembly } from './cli/program.js'
export * from './extension-api/index.js'
