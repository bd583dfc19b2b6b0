import type { TrellisError } from '@trellis/plugin-sdk'
import type { SandboxLimits } from './limits.js'

/** The single JavaScript file the SDK builds, with its identity and digest. */
export interface PluginBundle {
  id: string
  version: string
  code: string
  /** Hex sha256 of `code`; a bundle whose code does not hash to it is refused. */
  sha256: string
  /** Source map (JSON text) of `code`, used to map plugin stacks to the plugin's own source. */
  sourceMap?: string
}

export type EntryKind = 'route' | 'event' | 'action' | 'workflowStep'

export interface InvocationContext {
  invocationId: string
  tenantId: string
  installationId: string
  caller: { kind: 'user' | 'api_key' | 'system' | 'event' | 'plugin'; id: string; permissions: string[] }
  capabilities: string[]
  [k: string]: unknown
}

/** What the handler learns about the call beyond op and args. */
export interface HostCallMeta {
  invocationId: string
  /** Aborted when the invocation ends (finished, failed or timed out) before the call settles. */
  signal: AbortSignal
}

/**
 * Runs one host call for a plugin. Throw a TrellisError to give the plugin a catchable error
 * with that code; any other throw reaches the plugin as SBX_ERR_HOST_CALL_FAILED.
 */
export type HostCallHandler = (op: string, args: unknown, meta: HostCallMeta) => Promise<unknown>

export interface InvokeRequest {
  bundle: { id: string; version: string }
  entry: { kind: EntryKind; name: string }
  input: unknown
  context: InvocationContext
  onHostCall: HostCallHandler
  /** Per-installation overrides of the sandbox's default limits. */
  limits?: Partial<SandboxLimits>
}

export interface InvocationMetrics {
  wallMs: number
  cpuMs: number
  heapUsedBytes: number
  hostCalls: number
  /** `ok`, or the error code the invocation ended with. */
  outcome: 'ok' | 'error' | string
  /** True when the invocation needed a new isolate (first call of this tenant and bundle in its worker). */
  coldStart?: boolean
  workerPid?: number
}

export interface LogLine {
  invocationId: string
  level: string
  message: string
  fields?: Record<string, unknown>
  time: string
}

export interface InvokeResult {
  output: unknown
  metrics: InvocationMetrics
  logs: LogLine[]
}

/**
 * A rejected invocation: a TrellisError that also carries what is known of the run.
 * `retryable` is set on SBX_ERR_WORKER_LOST (and mirrored in `details.retryable`): true when the
 * invocation was a bystander of a worker that died (another tenant's code killed it, or the cause
 * is unknown) — it never committed anything in the sandbox and may run again once, on another
 * worker; false when the invocation's own tenant is held responsible (it is then cordoned, and
 * running it again would only repeat the damage).
 */
export type InvocationError = TrellisError & { metrics?: InvocationMetrics; logs?: LogLine[]; retryable?: boolean }

export interface WorkerStats {
  pid: number
  rssBytes: number
  /** Tenants' isolates (one per tenant and memory limit, ADR 0080). */
  isolates: number
  /** Plugin contexts in them (one per installation's bundle, more while one runs concurrently). */
  contexts: number
  isolateHeapBytes: number
  inflight: number
  bundles: number
}

export interface SandboxStats {
  /** The shared workers (cordon workers and retiring ones are not among them). */
  workers: WorkerStats[]
  /** Workers taken out of service because their memory passed the recycle ceiling, or whose cordon ended. */
  recycles: number
  /** Tenants running in a worker of their own, until when, and that worker's pid once started. */
  cordons: Array<{ tenantId: string; until: string; workerPid?: number }>
  restarts: number
}
