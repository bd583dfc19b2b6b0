import { EventEmitter } from 'node:events'
import type { Logger } from 'pino'
import { Redis } from 'ioredis'

/**
 * State several kernel processes must agree on: fixed-window counters (rate limits), flags that
 * expire (revoked session families) and broadcasts (a version's status changed, so cached copies
 * are dropped). On Redis when `REDIS_URL` is set; in this process's memory on the embedded
 * default, where there is only one process. PostgreSQL stays the source of truth for everything
 * durable: losing Redis loses only windows, flags that are also in the database, and broadcasts
 * that the caches' own expiry catches up with (docs/operations.md, "What Redis holds").
 */
export interface SharedState {
  readonly kind: 'memory' | 'redis'
  /** Counts one hit on `key` in a fixed window of `windowMs`: the count so far and the ms left. */
  hit(key: string, windowMs: number): Promise<{ count: number; resetMs: number }>
  /** The count of `key`'s current window without adding to it (0 once the window ended). */
  peek(key: string): Promise<{ count: number; resetMs: number }>
  /** Ends `key`'s window (the next hit starts a new one). */
  clear(key: string): Promise<void>
  /** Sets a flag that disappears after `ttlMs`. */
  flag(key: string, ttlMs: number): Promise<void>
  hasFlag(key: string): Promise<boolean>
  /** Sends `message` to every process subscribed to `channel` (this one included). */
  publish(channel: string, message: string): Promise<void>
  subscribe(channel: string, fn: (message: string) => void): void
  /** True when the store answers (readiness). */
  ping(): Promise<boolean>
  close(): Promise<void>
}

/** One process's shared state: nothing to share with, so maps and an emitter. */
export class MemoryState implements SharedState {
  readonly kind = 'memory' as const
  private readonly windows = new Map<string, { count: number; resetAt: number }>()
  private readonly flags = new Map<string, number>()
  private readonly bus = new EventEmitter()

  async hit(key: string, windowMs: number): Promise<{ count: number; resetMs: number }> {
    const now = Date.now()
    let w = this.windows.get(key)
    if (!w || w.resetAt <= now) {
      if (this.windows.size > 100_000) for (const [k, v] of this.windows) if (v.resetAt <= now) this.windows.delete(k)
      w = { count: 0, resetAt: now + windowMs }
      this.windows.set(key, w)
    }
    w.count++
    return { count: w.count, resetMs: w.resetAt - now }
  }

  async peek(key: string): Promise<{ count: number; resetMs: number }> {
    const w = this.windows.get(key)
    const now = Date.now()
    return w && w.resetAt > now ? { count: w.count, resetMs: w.resetAt - now } : { count: 0, resetMs: 0 }
  }

  async clear(key: string): Promise<void> {
    this.windows.delete(key)
  }

  async flag(key: string, ttlMs: number): Promise<void> {
    const now = Date.now()
    if (this.flags.size > 100_000) for (const [k, at] of this.flags) if (at <= now) this.flags.delete(k)
    this.flags.set(key, now + ttlMs)
  }

  async hasFlag(key: string): Promise<boolean> {
    const at = this.flags.get(key)
    if (at === undefined) return false
    if (at > Date.now()) return true
    this.flags.delete(key)
    return false
  }

  async publish(channel: string, message: string): Promise<void> {
    this.bus.emit(channel, message)
  }

  subscribe(channel: string, fn: (message: string) => void): void {
    this.bus.on(channel, fn)
  }

  async ping(): Promise<boolean> {
    return true
  }

  async close(): Promise<void> {
    this.bus.removeAllListeners()
  }
}

// INCR and set the expiry on the first hit, atomically: the window starts with its first request.
const HIT = `local c = redis.call('INCR', KEYS[1])
if c == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {c, ttl}`

/**
 * Shared state on Redis, under `<prefix>:state:`. Commands fail within a second (one retry, a
 * one-second timeout) rather than waiting while Redis is away: callers decide what a failure means
 * (a rate limit lets the request through, a revocation check falls back to the database's
 * session table within the organisation-status TTL), and `/readyz` reports it.
 */
export class RedisState implements SharedState {
  readonly kind = 'redis' as const
  private readonly redis: Redis
  private subscriber: Redis | undefined
  private readonly handlers = new Map<string, Array<(message: string) => void>>()

  constructor(
    private readonly url: string,
    private readonly prefix: string,
    private readonly logger?: Logger,
  ) {
    this.redis = new Redis(url, { maxRetriesPerRequest: 1, commandTimeout: 1000 })
    this.redis.on('error', (err) => this.logger?.warn({ err: err.message }, 'shared state: redis error'))
    this.redis.defineCommand('trellisHit', { numberOfKeys: 1, lua: HIT })
  }

  private key(k: string): string {
    return `${this.prefix}:state:${k}`
  }

  async hit(key: string, windowMs: number): Promise<{ count: number; resetMs: number }> {
    const [count, ttl] = (await (this.redis as any).trellisHit(this.key(`rl:${key}`), windowMs)) as [number, number]
    return { count, resetMs: ttl }
  }

  async peek(key: string): Promise<{ count: number; resetMs: number }> {
    const k = this.key(`rl:${key}`)
    const [count, ttl] = await Promise.all([this.redis.get(k), this.redis.pttl(k)])
    return count === null || ttl <= 0 ? { count: 0, resetMs: 0 } : { count: Number(count), resetMs: ttl }
  }

  async clear(key: string): Promise<void> {
    await this.redis.del(this.key(`rl:${key}`))
  }

  async flag(key: string, ttlMs: number): Promise<void> {
    await this.redis.set(this.key(`flag:${key}`), '1', 'PX', ttlMs)
  }

  async hasFlag(key: string): Promise<boolean> {
    return (await this.redis.exists(this.key(`flag:${key}`))) === 1
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.redis.publish(this.key(`ch:${channel}`), message)
  }

  subscribe(channel: string, fn: (message: string) => void): void {
    if (!this.subscriber) {
      this.subscriber = new Redis(this.url, { maxRetriesPerRequest: null })
      this.subscriber.on('error', (err) => this.logger?.warn({ err: err.message }, 'shared state: redis error'))
      this.subscriber.on('message', (ch: string, message: string) => {
        for (const h of this.handlers.get(ch) ?? []) h(message)
      })
    }
    const ch = this.key(`ch:${channel}`)
    const list = this.handlers.get(ch) ?? []
    if (list.length === 0) void this.subscriber.subscribe(ch).catch(() => {})
    list.push(fn)
    this.handlers.set(ch, list)
  }

  async ping(): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined
    try {
      // Answered within a second or not ready: a command queued while disconnected must not hang readiness.
      const late = new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve('late'), 1000)
      })
      return (await Promise.race([this.redis.ping(), late])) === 'PONG'
    } catch {
      return false
    } finally {
      clearTimeout(timer)
    }
  }

  /** Resolves once both connections are ready (the subscriber subscribed): broadcasts from now on reach this process. */
  async ready(): Promise<void> {
    await this.redis.ping()
    if (this.subscriber) await this.subscriber.ping().catch(() => {})
  }

  async close(): Promise<void> {
    this.subscriber?.disconnect()
    await this.redis.quit().catch(() => this.redis.disconnect())
  }
}

/** Redis when the kernel has `REDIS_URL`, this process's memory otherwise. */
export function openSharedState(redisUrl: string | undefined, prefix: string, logger?: Logger): SharedState {
  return redisUrl ? new RedisState(redisUrl, prefix, logger) : new MemoryState()
}
