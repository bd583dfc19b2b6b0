import type { Api } from './http/types.js'
import type { KernelContext } from './kernel-context.js'

/**
 * A package that adds to the kernel (the marketplace does): it gets the kernel's services once
 * they exist and registers its routes under `/v1`. Packages depend on the kernel, never the
 * other way round, so the kernel finds them at run time.
 */
export interface KernelExtension {
  name: string
  /** Called once the kernel's services exist, before the HTTP API is built. */
  init?(k: KernelContext): void | Promise<void>
  /** Registers routes (under /v1). */
  routes?(app: Api, k: KernelContext): void
  close?(): Promise<void>
  /** `trellis start --demo`: adds what the extension brings to the demo tenant (the marketplace installs the first-party plugins). */
  seedDemo?(k: KernelContext, demo: { tenantId: string; partnerId: string; log: (line: string) => void }): Promise<void>
}

/** Packages known to extend the kernel, loaded when installed. */
const KNOWN = [['@trellis', 'marketplace'].join('/')]

/** The extensions installed next to the kernel. */
export async function loadInstalledExtensions(): Promise<KernelExtension[]> {
  const found: KernelExtension[] = []
  for (const specifier of KNOWN) {
    let mod: { extension?: KernelExtension }
    try {
      mod = (await import(specifier)) as typeof mod
    } catch (err) {
      if (
        (err as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' &&
        String((err as Error).message).includes(specifier)
      )
        continue
      throw err
    }
    if (mod.extension) found.push(mod.extension)
  }
  return found
}
