import { AUTH } from '../errors.js'

interface Window {
  count: number
  resetAt: number
}

/**
 * Counts failed sign-ins per account and per client address in fixed windows; once either is
 * over its limit, further attempts are refused until the window ends — even with the right
 * password, so guessing cannot continue.
 */
export class LoginLimiter {
  private windows = new Map<string, Window>()

  constructor(
    private readonly perAccount = 5,
    private readonly perIp = 20,
    private readonly windowMs = 15 * 60 * 1000,
  ) {}

  check(email: string, ip: string): void {
    const now = Date.now()
    for (const [key, max] of [
      [`a:${email.toLowerCase()}`, this.perAccount],
      [`i:${ip}`, this.perIp],
    ] as const) {
      const w = this.windows.get(key)
      if (w && w.resetAt > now && w.count >= max)
        throw AUTH.LOGIN_RATE_LIMITED({ retryAfterSeconds: Math.ceil((w.resetAt - now) / 1000) })
    }
  }

  failed(email: string, ip: string): void {
    const now = Date.now()
    for (const key of [`a:${email.toLowerCase()}`, `i:${ip}`]) {
      const w = this.windows.get(key)
      if (!w || w.resetAt <= now) this.windows.set(key, { count: 1, resetAt: now + this.windowMs })
      else w.count++
    }
    if (this.windows.size > 100_000) for (const [k, w] of this.windows) if (w.resetAt <= now) this.windows.delete(k)
  }

  succeeded(email: string): void {
    this.windows.delete(`a:${email.toLowerCase()}`)
  }
}
