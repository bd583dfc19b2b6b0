import { SBX } from './errors.js'

export interface SandboxLimits {
  /** CPU time the plugin may use per invocation (enforced inside the isolate). */
  cpuMs: number
  /** Wall-clock deadline per invocation, awaiting host calls included. */
  wallMs: number
  /** Heap limit of the isolate serving the invocation. */
  memoryMb: number
  maxHostCalls: number
  maxInputBytes: number
  maxOutputBytes: number
  maxLogBytes: number
  maxLogLines: number
}

export const DEFAULT_LIMITS: SandboxLimits = Object.freeze({
  cpuMs: 1_000,
  wallMs: 10_000,
  memoryMb: 64,
  maxHostCalls: 200,
  maxInputBytes: 1024 * 1024,
  maxOutputBytes: 1024 * 1024,
  maxLogBytes: 64 * 1024,
  maxLogLines: 200,
})

// isolated-vm refuses heaps under 8 MB; the upper bounds keep a typo from disabling a limit.
const BOUNDS: Record<keyof SandboxLimits, [number, number]> = {
  cpuMs: [1, 10 * 60_000],
  wallMs: [1, 60 * 60_000],
  memoryMb: [8, 8192],
  maxHostCalls: [0, 1_000_000],
  maxInputBytes: [2, 512 * 1024 * 1024],
  maxOutputBytes: [4, 512 * 1024 * 1024],
  maxLogBytes: [0, 64 * 1024 * 1024],
  maxLogLines: [0, 1_000_000],
}

/** Merges overrides onto a base, refusing values that are not finite numbers within bounds. */
export function resolveLimits(base: SandboxLimits, overrides?: Partial<SandboxLimits>): SandboxLimits {
  if (!overrides) return base
  const out = { ...base }
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) continue
    const bounds = BOUNDS[key as keyof SandboxLimits]
    if (!bounds) throw SBX.INVALID_REQUEST({ reason: `unknown limit "${key}"` })
    if (typeof value !== 'number' || !Number.isFinite(value) || value < bounds[0] || value > bounds[1]) {
      throw SBX.INVALID_REQUEST({ reason: `limit ${key} must be a number in [${bounds[0]}, ${bounds[1]}]` })
    }
    out[key as keyof SandboxLimits] = Math.floor(value)
  }
  return out
}
