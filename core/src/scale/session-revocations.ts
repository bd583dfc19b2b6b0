import { ACCESS_TOKEN_TTL_SECONDS } from '../identity/tokens.js'
import type { SharedState } from './shared-state.js'

/** A session ended longer ago than an access token lives (plus clock slack) has no token left to refuse. */
export const REVOCATION_TTL_MS = (ACCESS_TOKEN_TTL_SECONDS + 120) * 1000

/**
 * Session families signed out (or ended because a refresh token was replayed): their access
 * tokens are refused until they would have expired anyway, after which the entry goes.
 *
 * This process remembers what it ended; with Redis (`shared`) every process also asks Redis,
 * so a sign-out on one API process is refused on every other one at once. Without Redis there
 * is one process, or the organisation-status cache's one-second re-read of the session table
 * catches it.
 */
export class SessionRevocations {
  private readonly local = new Map<string, number>()

  constructor(
    private readonly state?: SharedState,
    private readonly ttlMs = REVOCATION_TTL_MS,
  ) {}

  /** True when other processes must be asked (`isRevoked`), not only this one's memory (`has`). */
  get shared(): boolean {
    return this.state?.kind === 'redis'
  }

  /** Ends a family here at once and, with Redis, everywhere once this resolves. */
  async add(family: string): Promise<void> {
    const now = Date.now()
    if (this.local.size > 100_000) this.prune(now)
    this.local.set(family, now + this.ttlMs)
    if (this.shared) await this.state!.flag(`revoked:${family}`, this.ttlMs)
  }

  /** What this process knows, without waiting. */
  has(family: string): boolean {
    const at = this.local.get(family)
    if (at === undefined) return false
    if (at > Date.now()) return true
    this.local.delete(family)
    return false
  }

  /** This process's memory, then Redis; a Redis failure answers false (the session table still decides within a second). */
  async isRevoked(family: string): Promise<boolean> {
    if (this.has(family)) return true
    if (!this.shared) return false
    return this.state!.hasFlag(`revoked:${family}`).catch(() => false)
  }

  /** Forgets everything this process knows (tests). */
  clear(): void {
    this.local.clear()
  }

  get size(): number {
    return this.local.size
  }

  private prune(now: number): void {
    for (const [f, at] of this.local) if (at <= now) this.local.delete(f)
  }
}
