// The options of a sandbox, and what each part of it is configured with.
import { availableParallelism } from 'node:os'
import type { SandboxLimits } from './limits.js'
import type { WorkerConfig } from './protocol.js'

export interface SandboxOptions {
  /** Worker processes; default: number of cores. */
  workers?: number
  /** Defaults for every invocation; a request's `limits` override them. */
  limits?: Partial<SandboxLimits>
  /** Process budget: a worker whose resident memory exceeds it is killed and replaced. */
  workerMemoryMb?: number
  /**
   * Memory ceiling between invocations: a worker whose resident memory, beyond what its live
   * isolates' heaps account for, passes it takes no new work, finishes what it holds and is
   * replaced (default 256, or `TRELLIS_SANDBOX_WORKER_RECYCLE_MB`). Heap freed by plugin runs is
   * not always given back to the system; a fresh process gives it back.
   */
  workerRecycleMb?: number
  /** Sum of the memory limits of the isolates one worker runs invocations in at once (default 4096). */
  workerIsolateMemoryMb?: number
  /** Sum of the memory limits of one tenant's isolates with invocations in flight on the shared workers (default 1024). */
  tenantIsolateMemoryMb?: number
  /**
   * How long a tenant whose invocations crashed or exhausted a worker runs in a worker of its
   * own (default 15 minutes, or `TRELLIS_SANDBOX_CORDON_MINUTES`; a repeat offence multiplies it).
   */
  cordonMs?: number
  /** Cordon workers at most; beyond that, cordoned tenants share them (default 4). */
  maxCordonWorkers?: number
  /** How far past its CPU limit plugin code may run before its worker ends itself (default 250). */
  cpuGraceMs?: number
  /**
   * How long after an invocation's wall deadline a silent worker is declared hung and killed
   * (default 2000). Plugin code whose CPU limit fits in it may run on the worker's event loop.
   */
  hangGraceMs?: number
  /** Idle isolates are disposed after this long. */
  idleMs?: number
  /**
   * Warm plugin contexts kept per worker (LRU beyond that); a tenant's contexts share its
   * isolate, which goes with the last of them (ADR 0080).
   */
  maxIsolatesPerWorker?: number
  /** Contexts one (tenant, installation, bundle) may use at once in a worker, for concurrency. */
  maxIsolatesPerKey?: number
  /**
   * Runs of one tenant's plugin code a worker executes at once (default: one fewer than the
   * cores, at least 1), so a tenant with CPU-heavy handlers leaves a core to the others; its
   * further runs wait in its own queue, and when several tenants have runs waiting the one that
   * used the least run time lately goes first (ADR 0021). A run awaiting host calls holds none.
   */
  maxRunningPerTenant?: number
  /** Heap of warm isolates per worker beyond which idle ones are evicted (LRU). */
  isolateHeapBudgetMb?: number
  /** How often worker memory is checked. */
  monitorIntervalMs?: number
  maxBundleBytes?: number
  /** Extra node flags for workers (e.g. --max-old-space-size). */
  workerExecArgv?: string[]
  /** Successful invocations after which a (tenant, installation, bundle) leaves probation. */
  probationInvocations?: number
  /** Drop workers' stderr instead of passing it on (V8 prints a heap report when a worker dies of OOM). */
  quietWorkers?: boolean
}

/** How long after an invocation's wall deadline a silent worker is declared hung. */
export function hangGraceMs(options: SandboxOptions): number {
  return options.hangGraceMs ?? 2000
}

/** What each worker process is started with. */
export function workerConfig(options: SandboxOptions): WorkerConfig {
  return {
    maxIsolates: options.maxIsolatesPerWorker ?? 1000,
    maxIsolatesPerKey: options.maxIsolatesPerKey ?? 4,
    idleMs: options.idleMs ?? 5 * 60_000,
    isolateHeapBudgetMb: options.isolateHeapBudgetMb ?? 1024,
    // A synchronous run blocks the worker's event loop for up to its CPU limit; kept within
    // the grace so that it can never get the worker declared hung.
    syncMaxCpuMs: Math.max(0, hangGraceMs(options) - 200),
    cpuGraceMs: options.cpuGraceMs ?? 250,
    maxRunningPerTenant: options.maxRunningPerTenant ?? Math.max(1, availableParallelism() - 1),
  }
}
