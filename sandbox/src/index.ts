export { Sandbox } from './sandbox.js'
export type { SandboxOptions } from './sandbox.js'
export { SBX } from './errors.js'
export { DEFAULT_LIMITS, resolveLimits } from './limits.js'
export type { SandboxLimits } from './limits.js'
export type {
  EntryKind,
  HostCallHandler,
  HostCallMeta,
  InvocationContext,
  InvocationError,
  InvocationMetrics,
  InvokeRequest,
  InvokeResult,
  LogLine,
  PluginBundle,
  SandboxStats,
  WorkerStats,
} from './types.js'
