// Messages between the parent (src/*.ts) and a worker process (src/worker/*.mjs, checked by tsc
// through JSDoc types that import this module): a field changed here fails the type check on
// both sides. Only strings and plain JSON travel; payloads that came from an isolate stay JSON
// text until the parent parses them with parseUntrustedJson.
import type { EntryKind, InvocationMetrics, LogLine, WorkerStats } from './types.js'
import type { SandboxLimits } from './limits.js'

/** What a worker is started with (its only command-line argument, as JSON). */
export interface WorkerConfig {
  maxIsolates: number
  maxIsolatesPerKey: number
  idleMs: number
  isolateHeapBudgetMb: number
  syncMaxCpuMs: number
  /** How far past its CPU limit plugin code may run before its worker ends itself. */
  cpuGraceMs: number
  /**
   * Runs of one tenant's plugin code a worker lets execute at once; beyond that, its ready runs
   * wait in its own queue, and queues are served fairly (see worker/fair-scheduler.mjs).
   */
  maxRunningPerTenant: number
}

/** A failure as the worker reports it: a sandbox code with its details, or a host error by call id. */
export type WireError = { code: string; details?: Record<string, unknown> } | { hostRef: number }

/** A host error as plugin code may see it: the code, status and message only. */
export interface HostCallError {
  code: string
  status: number
  message: string
}

/**
 * A bundle as sent to a worker: its code travels once per worker. Its source map mostly stays
 * with the parent, which maps the plugin's stack frames (worker/stack-mapper.mjs): a map is often
 * twice the code, and sending it cost a cold start more than the code itself. Only a map too
 * long for the parent to parse cheaply travels, and the worker maps the frames (bundles.ts).
 */
export interface WireBundle {
  key: string
  id: string
  version: string
  code: string
  sourceMap?: string
}

/** Metrics as the worker measures them; the parent adds the wall time it saw. */
export type WorkerMetrics = Omit<InvocationMetrics, 'wallMs'>

export interface InvokeMessage {
  t: 'inv'
  rid: number
  invocationId: string
  /** Whose invocation this is: the worker shares its run slots fairly between tenants. */
  tenantId: string
  bundleKey: string
  isoKey: string
  entry: { kind: EntryKind; name: string }
  input: string
  context: string
  limits: SandboxLimits
  remainingMs: number
}

/** A host call's outcome: its result's JSON ('' for undefined), or the error plugin code sees. */
export type HostCallOutcome =
  | { cid: number; ok: true; value: string }
  | { cid: number; ok: false; error: HostCallError }

export type HostCallResult = { t: 'hcr'; rid: number } & HostCallOutcome

/** The outcomes of the host calls that left in one 'hcb' message, together once all are known. */
export interface HostCallResults {
  t: 'hcrb'
  rid: number
  results: HostCallOutcome[]
}

export interface LoadMessage {
  t: 'load'
  rid: number
  bundle: WireBundle
  limits: SandboxLimits
  evaluate: boolean
}

export type ToWorker =
  | InvokeMessage
  | HostCallResult
  | HostCallResults
  | LoadMessage
  | { t: 'unload'; key: string }
  | { t: 'stats'; rid: number; refresh?: boolean }
  | { t: 'shutdown' }

/** What a worker reports of itself (externalCopyBytes: isolated-vm's copies outside any heap). */
export type WireWorkerStats = WorkerStats & { externalCopyBytes?: number }

export type LoadReply =
  | { t: 'loaded'; rid: number; entries: Record<string, string[]> }
  | { t: 'loadFailed'; rid: number; error: { code: string; details: Record<string, unknown> } }

export type FromWorker =
  | { t: 'ready'; pid: number }
  | { t: 'hc'; rid: number; cid: number; op: string; args: string }
  /** Host calls one stretch of plugin code made (a `Promise.all`), in the order it made them. */
  | { t: 'hcb'; rid: number; calls: Array<{ cid: number; op: string; args: string }> }
  | { t: 'ok'; rid: number; output: string; metrics: WorkerMetrics; logs: LogLine[] }
  | { t: 'err'; rid: number; error: WireError; metrics: WorkerMetrics; logs: LogLine[] }
  | LoadReply
  | { t: 'stats'; rid: number; stats: WireWorkerStats }
