import type { SharedState } from './shared-state.js'

/** Tells the other processes that something they cache changed, and hears when they changed it. */
export interface ChangeFeed {
  /** After the change committed: every other process drops its copy. A lost message leaves it to the cache's own expiry. */
  announce(): void
  /** `fn` runs when any process (this one included) announced a change. */
  listen(fn: () => void): void
}

/**
 * A change feed on the Redis channel `channel` — the way the kill switch fans out — or none
 * without Redis, where there is one process and its own change already dropped its copy.
 * Subscribed once the kernel awaits the shared state's readiness (`listenForVersionChanges`).
 */
export function changeFeed(shared: SharedState | undefined, channel: string): ChangeFeed | undefined {
  if (shared?.kind !== 'redis') return undefined
  return {
    announce() {
      void shared.publish(channel, String(Date.now())).catch(() => {})
    },
    listen(fn) {
      shared.subscribe(channel, () => fn())
    },
  }
}
