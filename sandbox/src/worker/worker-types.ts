// Types of the worker's own objects, for the JSDoc of src/worker/*.mjs. Type-only: the worker
// never loads this file at run time (it runs as plain ESM, without a TypeScript loader).
import type { ExternalCopy } from 'isolated-vm'
import type { SourceMap } from 'node:module'
import type { FromWorker } from '../protocol.js'
import type { CpuWatchdog } from './cpu-watchdog.mjs'
import type { FairScheduler } from './fair-scheduler.mjs'
import type { Invocation } from './invocation.mjs'
import type { IsolatePool } from './isolate-pool.mjs'

/** A bundle compiled in this worker: the wrapped code, V8's code cache and what it exports. */
export interface CompiledBundle {
  key: string
  id: string
  version: string
  filename: string
  code: string
  /** Lines the CommonJS wrapper adds before the plugin's first line. */
  lineOffset: number
  cachedData: ExternalCopy<ArrayBuffer> | undefined
  /** Its source map, when the parent sent it (a long one: the parent maps the others' frames). */
  sourceMap: () => SourceMap | null
  entries: Record<string, string[]>
}

/** The worker process's state, shared by its invocations. */
export interface WorkerState {
  pool: IsolatePool
  /** bundle key → the compiled bundle (a promise, so invocations can wait for a load in flight). */
  bundles: Map<string, Promise<CompiledBundle>>
  /** bundle key → the compiled bundle, once loaded (what a warm call looks up). */
  compiled: Map<string, CompiledBundle>
  inflight: Map<number, Invocation>
  /** Shares run slots between tenants when more runs are ready than may execute at once. */
  scheduler: FairScheduler
  syncSliceMs: number
  syncMaxCpuMs: number
  isSlow(key: string): boolean
  markSlow(key: string): void
  /**
   * A stretch of the key's code ran long on the event loop (but ended well): the second time soon
   * after, it is marked slow. `ownNs`: this thread's CPU time over it, when timed (see `timed`).
   */
  ranLong(key: string, ownNs?: number): void
  /** Whether the key's stretches on the event loop are timed by this thread's own CPU clock too. */
  timed(key: string): boolean
  /** This thread's CPU time (ns), null where the kernel does not give it. */
  threadCpuNs(): number | null
  watchdog: CpuWatchdog
  send(msg: FromWorker): void
}
