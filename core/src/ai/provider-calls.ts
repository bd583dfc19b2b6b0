import { TrellisError } from '@trellis/plugin-sdk'
import { AI } from './errors.js'

/** How long one provider attempt may take, and how many further attempts a retryable failure gets. */
export interface ProviderLimits {
  timeoutMs: number
  retries: number
}

/** Why a provider call failed, before it becomes an `AI_ERR_PROVIDER_*` error. */
export class ProviderError extends Error {
  constructor(
    readonly kind: 'unavailable' | 'timeout' | 'failed',
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(kind, options)
  }
}

/** What a provider's or the HTTP client's error means: the endpoint down, or the call failed (with its status). */
export function classify(err: unknown): ProviderError {
  const e = err as { code?: string; httpResponse?: { status?: number }; cause?: unknown; name?: string }
  const status = e?.httpResponse?.status
  if (typeof status === 'number')
    return new ProviderError(status === 503 ? 'unavailable' : 'failed', status, { cause: err })
  const code = e?.code ?? (e?.cause as { code?: string } | undefined)?.code
  if (
    code === 'ECONNREFUSED' ||
    code === 'ECONNRESET' ||
    code === 'ENOTFOUND' ||
    code === 'EHOSTUNREACH' ||
    code === 'EAI_AGAIN' ||
    code === 'EGRESS_HOST' ||
    code === 'EVT_ERR_EGRESS_DENIED' ||
    (err instanceof TrellisError && err.code === 'EVT_ERR_EGRESS_DENIED')
  )
    return new ProviderError('unavailable', undefined, { cause: err })
  return new ProviderError('failed', undefined, { cause: err })
}

/** One provider call with a deadline and bounded retries; errors become ProviderError. */
export async function attemptProvider<T>(
  limits: ProviderLimits,
  run: (signal: AbortSignal) => Promise<T>,
  outer?: AbortSignal,
): Promise<T> {
  let last: ProviderError | undefined
  for (let i = 0; i <= limits.retries; i++) {
    const timeout = AbortSignal.timeout(limits.timeoutMs)
    const signal = outer ? AbortSignal.any([timeout, outer]) : timeout
    try {
      return await run(signal)
    } catch (err) {
      if (timeout.aborted) throw new ProviderError('timeout', undefined, { cause: err })
      if (outer?.aborted) throw new ProviderError('unavailable', undefined, { cause: err })
      last = classify(err)
      const retryable = last.kind === 'unavailable' || last.status === 429 || (last.status ?? 0) >= 500
      if (!retryable) throw last
    }
  }
  throw last!
}

/** The typed error a failed provider call ends in, whatever it threw. */
export function providerError(err: unknown, alias: string, timeoutMs: number): TrellisError {
  if (!(err instanceof ProviderError)) return AI.PROVIDER_FAILED({ model: alias }, { cause: err })
  if (err.kind === 'timeout') return AI.PROVIDER_TIMEOUT({ model: alias, ms: timeoutMs }, { cause: err })
  if (err.kind === 'unavailable') return AI.PROVIDER_UNAVAILABLE({ model: alias }, { cause: err })
  return AI.PROVIDER_FAILED({ model: alias, status: err.status }, { cause: err })
}
