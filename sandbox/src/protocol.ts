// Messages between the parent and a worker process (worker side: src/worker/*.mjs). Only
// strings and plain JSON travel; payloads that came from an isolate stay JSON text until the
// parent parses them with parseUntrustedJson.
import type { EntryKind, InvocationMetrics, LogLine } from './types.js'
import type { SandboxLimits } from './limits.js'

/** A failure as the worker reports it: a sandbox code with its details, or a host error by call id. */
export type WireError = { code: string; details?: Record<string, unknown> } | { hostRef: number }

export type ToWorker =
  | {
      t: 'inv'
      rid: number
      invocationId: string
      bundleKey: string
      isoKey: string
      entry: { kind: EntryKind; name: string }
      input: string
      context: string
      limits: SandboxLimits
      remainingMs: number
    }
  | { t: 'hcr'; rid: number; cid: number; ok: true; value: string }
  | { t: 'hcr'; rid: number; cid: number; ok: false; error: { code: string; status: number; message: string } }
  | {
      t: 'load'
      rid: number
      bundle: { key: string; id: string; version: string; code: string; sourceMap?: string }
      limits: SandboxLimits
      evaluate: boolean
    }
  | { t: 'unload'; key: string }
  | { t: 'stats'; rid: number; refresh?: boolean }
  | { t: 'shutdown' }

export type FromWorker =
  | { t: 'ready'; pid: number }
  | { t: 'hc'; rid: number; cid: number; op: string; args: string }
  | { t: 'ok'; rid: number; output: string; metrics: Omit<InvocationMetrics, 'wallMs'>; logs: LogLine[] }
  | { t: 'err'; rid: number; error: WireError; metrics: Omit<InvocationMetrics, 'wallMs'>; logs: LogLine[] }
  | { t: 'loaded'; rid: number; entries: Record<string, string[]> }
  | { t: 'loadFailed'; rid: number; error: { code: string; details: Record<string, unknown> } }
  | {
      t: 'stats'
      rid: number
      stats: {
        pid: number
        rssBytes: number
        isolates: number
        isolateHeapBytes: number
        inflight: number
        bundles: number
      }
    }
