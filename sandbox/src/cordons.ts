// Cordons: a tenant whose invocations crashed or exhausted a worker runs, for a while, in a
// worker process of its own, so its next invocations can take nobody else down (the idea of
// Cloudflare's cordons for Workers). The worker is started when the tenant next invokes and
// ends once the cordon has expired and the worker is idle.
import type { WorkerProcess } from './worker-process.js'

export interface Cordon {
  tenantId: string
  until: number
  /** Crashes and exhaustions blamed on the tenant, this cordon included. */
  offences: number
  worker?: WorkerProcess
}

export class Cordons {
  private readonly byTenant = new Map<string, Cordon>()

  constructor(
    private readonly durationMs: number,
    private readonly maxWorkers: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Cordons the tenant (again: a repeat offence lengthens the stay). */
  add(tenantId: string): Cordon {
    const existing = this.byTenant.get(tenantId)
    const offences = (existing?.offences ?? 0) + 1
    const cordon: Cordon = {
      tenantId,
      until: this.now() + this.durationMs * Math.min(offences, 8),
      offences,
      worker: existing?.worker,
    }
    this.byTenant.set(tenantId, cordon)
    return cordon
  }

  /** The tenant's cordon while it lasts. */
  active(tenantId: string): Cordon | undefined {
    const c = this.byTenant.get(tenantId)
    return c && c.until > this.now() ? c : undefined
  }

  /** Whether another cordon may get a worker of its own (beyond that, cordoned tenants share one). */
  mayStartWorker(): boolean {
    return this.workers().length < this.maxWorkers
  }

  /** A live cordon worker to share when no new one may start: the least busy. */
  leastBusyWorker(): WorkerProcess | undefined {
    let best: WorkerProcess | undefined
    for (const w of this.workers()) if (!best || w.inflight.size < best.inflight.size) best = w
    return best
  }

  workers(): WorkerProcess[] {
    const seen = new Set<WorkerProcess>()
    for (const c of this.byTenant.values()) if (c.worker && !c.worker.dead && !c.worker.draining) seen.add(c.worker)
    return [...seen]
  }

  list(): Cordon[] {
    return [...this.byTenant.values()]
  }

  /** Forgets expired cordons; returns the workers no active cordon uses any more. */
  expire(): WorkerProcess[] {
    const now = this.now()
    const inUse = new Set<WorkerProcess>()
    const candidates = new Set<WorkerProcess>()
    for (const [tenant, c] of this.byTenant) {
      if (c.until > now) {
        if (c.worker) inUse.add(c.worker)
        continue
      }
      if (c.worker) candidates.add(c.worker)
      // kept a while after expiry so a repeat offence counts as one
      if (c.until + this.durationMs * 4 < now) this.byTenant.delete(tenant)
      else c.worker = undefined
    }
    return [...candidates].filter((w) => !inUse.has(w))
  }

  /** Detaches a dead or retiring worker from the cordons that used it. */
  detach(worker: WorkerProcess): void {
    for (const c of this.byTenant.values()) if (c.worker === worker) c.worker = undefined
  }
}
