import { PLG } from '../errors.js'

/** How many invocations may run at once in this process: per tenant and per installation. */
export interface InvocationCaps {
  perTenant: number
  perInstallation: number
}

/**
 * Counts running invocations (from the request until the sandbox has let go of them — an
 * invocation the kernel already answered still counts while its code runs) and refuses one
 * more past a cap with `PLG_ERR_TOO_MANY_INVOCATIONS` (429), so one tenant's hung or heavy
 * handlers cannot take every sandbox slot and connection.
 */
export class InvocationLimiter {
  private readonly tenants = new Map<string, number>()
  private readonly installations = new Map<string, number>()

  constructor(readonly caps: InvocationCaps) {}

  /** Takes a slot or throws; the returned function gives it back (once). */
  enter(tenantId: string, installationId: string): () => void {
    const t = this.tenants.get(tenantId) ?? 0
    const i = this.installations.get(installationId) ?? 0
    if (t >= this.caps.perTenant)
      throw PLG.TOO_MANY_INVOCATIONS({ scope: 'tenant', limit: this.caps.perTenant, retryAfterSeconds: 1 })
    if (i >= this.caps.perInstallation)
      throw PLG.TOO_MANY_INVOCATIONS({ scope: 'installation', limit: this.caps.perInstallation, retryAfterSeconds: 1 })
    this.tenants.set(tenantId, t + 1)
    this.installations.set(installationId, i + 1)
    let left = false
    return () => {
      if (left) return
      left = true
      dec(this.tenants, tenantId)
      dec(this.installations, installationId)
    }
  }

  running(tenantId: string): number {
    return this.tenants.get(tenantId) ?? 0
  }
}

function dec(m: Map<string, number>, key: string): void {
  const n = (m.get(key) ?? 1) - 1
  if (n <= 0) m.delete(key)
  else m.set(key, n)
}
