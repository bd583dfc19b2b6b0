// @trellis/core's public entry: what other packages and tools embed.
export { createKernel, type Kernel, type KernelOptions } from './kernel.js'
export { loadConfig, type KernelConfig } from './config.js'
export { startDevKernel } from './plugins/dev-kernel.js'
