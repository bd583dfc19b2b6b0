// Worker memory: a worker over its process budget is killed; one holding more than a ceiling
// beyond its live isolates' heaps (memory plugin runs left behind) is drained and replaced
// between invocations; cordon workers whose cordons ended are drained too (ADR 0010).
import type { Cordons } from './cordons.js'
import type { WorkerStats } from './types.js'
import type { WorkerProcess } from './worker-process.js'

/** How often a worker over its recycle ceiling has its isolates' heaps counted. */
const RECYCLE_CHECK_MS = 2_000

export interface WorkerMemoryDeps {
  budgetBytes: number
  recycleBytes: number
  cordons: Cordons
  /** Every live worker: shared, cordon and retiring. */
  workers(): WorkerProcess[]
  /** Puts a fresh worker in a draining worker's shared slot (no-op for other workers). */
  replace(w: WorkerProcess): void
  /** The worker's own figures (isolate heaps refreshed), or undefined if it is gone. */
  stats(w: WorkerProcess): Promise<WorkerStats | undefined>
  closed(): boolean
}

export class WorkerMemory {
  /** Workers taken out of service so far. */
  recycles = 0

  constructor(private readonly deps: WorkerMemoryDeps) {}

  check(): void {
    const { budgetBytes, recycleBytes } = this.deps
    for (const w of this.deps.workers()) {
      const rss = w.rssBytes()
      if (rss === undefined) continue
      if (rss > budgetBytes) {
        w.exhausted = true
        w.kill(`exceeded its process memory budget (${Math.round(rss / 1048576)} MB)`)
      } else if (rss > recycleBytes && !w.draining) void this.maybeRecycle(w)
    }
    for (const w of this.deps.cordons.expire()) this.drain(w)
  }

  /**
   * Memory a worker holds beyond its live isolates' heaps is what plugin runs left behind (freed
   * heap the allocator keeps, fragments): past the ceiling, the worker is recycled. Warm isolates
   * are not counted — they are bounded by the isolate heap budget and evicted by it.
   */
  private async maybeRecycle(w: WorkerProcess): Promise<void> {
    const now = Date.now()
    if (w.recycleCheckedAt !== undefined && now - w.recycleCheckedAt < RECYCLE_CHECK_MS) return
    w.recycleCheckedAt = now
    const s = await this.deps.stats(w)
    if (s && s.rssBytes - s.isolateHeapBytes > this.deps.recycleBytes) this.drain(w)
    else w.recycleCheckedAt = Date.now()
  }

  /**
   * Takes a worker out of service without failing anything: it gets no new work, a shared slot
   * gets a fresh worker at once, and the old one ends when what it holds has finished.
   */
  drain(w: WorkerProcess): void {
    if (this.deps.closed() || w.draining || w.dead) return
    w.draining = true
    this.recycles++
    this.deps.cordons.detach(w)
    this.deps.replace(w)
    if (w.inflight.size === 0) this.retire(w)
  }

  /** Once a draining worker holds nothing: asks it to shut down, and kills it if it does not. */
  retire(w: WorkerProcess): void {
    const force = setTimeout(() => w.kill('did not shut down when retired'), 2000)
    force.unref()
    w.child.once('close', () => clearTimeout(force))
    w.send({ t: 'shutdown' })
  }
}
