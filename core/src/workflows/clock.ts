/**
 * Time as the workflow runtime sees it: when timers, event timeouts, task SLAs and schedules
 * are due, and when its sweeper looks at them. The kernel uses the system clock; tests pass a
 * {@link ManualClock} (`createKernel({ workflows: { clock } })`) so nothing they assert depends
 * on how fast the machine is.
 */
export interface WorkflowClock {
  /** Milliseconds since the epoch. */
  now(): number
  /** Calls `fn` every `ms` until the returned function is called. */
  every(ms: number, fn: () => Promise<void>): () => void
}

/** The wall clock and real timers (unref'd: they never keep the process alive). */
export const systemClock: WorkflowClock = {
  now: () => Date.now(),
  every(ms, fn) {
    const timer = setInterval(() => void fn().catch(() => undefined), ms)
    timer.unref()
    return () => clearInterval(timer)
  },
}

interface Periodic {
  ms: number
  fn: () => Promise<void>
  due: number
}

/**
 * A clock that moves only when told. Moving it runs each periodic callback that came due —
 * once, however many periods were skipped — and resolves when they have all finished, so a
 * test that awaits `advance` knows the sweep it caused is over.
 */
export class ManualClock implements WorkflowClock {
  private t: number
  private readonly periodic = new Set<Periodic>()

  constructor(start: number | Date = Date.now()) {
    this.t = typeof start === 'number' ? start : start.getTime()
  }

  now(): number {
    return this.t
  }

  every(ms: number, fn: () => Promise<void>): () => void {
    const p: Periodic = { ms, fn, due: this.t + ms }
    this.periodic.add(p)
    return () => this.periodic.delete(p)
  }

  /** Moves the clock forward by `ms` and runs what came due. */
  advance(ms: number): Promise<void> {
    return this.set(this.t + ms)
  }

  /** Moves the clock to `to` (never backwards) and runs what came due. */
  async set(to: number | Date): Promise<void> {
    const at = typeof to === 'number' ? to : to.getTime()
    if (at < this.t) throw new Error(`a manual clock does not go back (${new Date(at).toISOString()})`)
    this.t = at
    const due = [...this.periodic].filter((p) => p.due <= at)
    for (const p of due) p.due = at + p.ms
    await Promise.all(due.map((p) => p.fn()))
  }

  /** Runs every periodic callback now, due or not (a sweep on demand), without moving the clock. */
  async tick(): Promise<void> {
    await Promise.all([...this.periodic].map((p) => p.fn()))
  }
}
