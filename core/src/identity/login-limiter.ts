import { AUTH } from '../errors.js'
import { MemoryState, type SharedState } from '../scale/shared-state.js'

/**
 * Counts failed sign-ins per account and per client address in fixed windows; once either is
 * over its limit, further attempts are refused until the window ends — even with the right
 * password, so guessing cannot continue.
 *
 * The windows live in `store`: Redis when `REDIS_URL` is set, so every API process counts the
 * same attempts (N processes do not allow N times the guesses), this process's memory otherwise.
 * When Redis does not answer, this process's own windows count meanwhile: the limit then holds
 * per process rather than not at all. `name` keeps limiters sharing one store apart.
 */
export class LoginLimiter {
  private readonly local = new MemoryState()

  constructor(
    private readonly perAccount = 5,
    private readonly perIp = 20,
    private readonly windowMs = 15 * 60 * 1000,
    private readonly store: SharedState = new MemoryState(),
    private readonly name = 'login',
  ) {}

  private keys(email: string, ip: string): Array<readonly [string, number]> {
    return [
      [`${this.name}:a:${email.toLowerCase()}`, this.perAccount],
      [`${this.name}:i:${ip}`, this.perIp],
    ]
  }

  private async run<T>(use: (store: SharedState) => Promise<T>): Promise<T> {
    if (this.store.kind === 'memory') return use(this.store)
    try {
      return await use(this.store)
    } catch {
      return use(this.local)
    }
  }

  /** Refuses with `AUTH_ERR_LOGIN_RATE_LIMITED` while the account or the address is over its limit. */
  async check(email: string, ip: string): Promise<void> {
    for (const [key, max] of this.keys(email, ip)) {
      const w = await this.run((s) => s.peek(key))
      if (w.count >= max) throw AUTH.LOGIN_RATE_LIMITED({ retryAfterSeconds: Math.max(1, Math.ceil(w.resetMs / 1000)) })
    }
  }

  async failed(email: string, ip: string): Promise<void> {
    for (const [key] of this.keys(email, ip)) await this.run((s) => s.hit(key, this.windowMs))
  }

  async succeeded(email: string): Promise<void> {
    await this.run((s) => s.clear(`${this.name}:a:${email.toLowerCase()}`))
  }
}
