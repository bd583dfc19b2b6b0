import type { Api } from './http/types.js'
import type { KernelContext } from './kernel-context.js'

/**
 * Routes mounted under `/v1` next to the kernel's own (http/app.ts). Extensions do not implement
 * this: they contribute routes through the extension API (extension-api/), and the kernel mounts
 * what they contributed in this form.
 */
export interface KernelExtension {
  name: string
  routes?(app: Api, k: KernelContext): void
  /** Routes outside `/v1` (the console's pages and assets). */
  pages?(app: Api, k: KernelContext): void | Promise<void>
}
