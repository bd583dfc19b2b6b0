// Errors as they cross the process boundary: a worker reports a sandbox code with details, or
// refers to a host error by its call id; the parent rebuilds the TrellisError the caller sees.
import { TrellisError, isTrellisError } from '@trellis/plugin-sdk'
import { SBX } from './errors.js'
import type { WireError } from './protocol.js'

const SBX_BY_CODE = new Map<string, (d?: never) => TrellisError>(
  SBX.entries.map((e) => [
    e.code,
    (SBX as unknown as Record<string, (d?: never) => TrellisError>)[e.code.slice('SBX_ERR_'.length)]!,
  ]),
)
const CODE = /^[A-Z][A-Z0-9]*_ERR_[A-Z0-9_]+$/

/** The error a worker reported, with a plugin error's own stack; `hostErrors` by call id. */
export function rebuildError(wire: WireError, hostErrors: ReadonlyMap<number, TrellisError>): TrellisError {
  if ('hostRef' in wire) {
    const original = hostErrors.get(wire.hostRef)
    if (original)
      return new TrellisError(original.code, original.status, original.title, original.message, original.details, {
        cause: original,
      })
    return SBX.PLUGIN_ERROR({ message: 'plugin rethrew an unknown host error' })
  }
  const factory = SBX_BY_CODE.get(wire.code)
  const details = (wire.details ?? {}) as never
  const err: TrellisError = factory ? factory(details) : SBX.PLUGIN_ERROR({ message: 'unknown failure' })
  if (err.code === SBX.PLUGIN_ERROR.code) {
    // The caller sees the plugin's own stack (mapped to its sources), never ours.
    const d = err.details as { name?: string; message?: string; stack?: string }
    err.stack = `${d.name ?? 'Error'}: ${d.message ?? ''}${d.stack ? `\n${d.stack}` : ''}`
  }
  return err
}

/**
 * SBX_ERR_WORKER_LOST, saying whether the invocation may run again once on another worker:
 * `retryable` is in its details and on the error itself (see InvocationError).
 */
export function workerLost(reason: string, retryable: boolean): TrellisError {
  const err = SBX.WORKER_LOST({ reason, retryable })
  Object.defineProperty(err, 'retryable', { value: retryable, enumerable: true })
  return err
}

// A kernel may hold a second copy of the SDK (bundled, linked), whose TrellisError fails
// instanceof; the shape is what the contract is about.
export function asTrellisError(err: unknown): TrellisError | undefined {
  if (isTrellisError(err)) return err
  if (!(err instanceof Error)) return undefined
  const e = err as Error & Partial<Pick<TrellisError, 'code' | 'status' | 'title' | 'details'>>
  if (typeof e.code === 'string' && CODE.test(e.code) && typeof e.status === 'number') {
    return new TrellisError(e.code, e.status, typeof e.title === 'string' ? e.title : e.code, e.message, e.details, {
      cause: err,
    })
  }
  return undefined
}
