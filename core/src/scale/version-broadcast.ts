import type { SharedState } from './shared-state.js'

const CHANNEL = 'plugin-versions'

/**
 * The kill switch's fan-out: a transaction that changed versions' status (block, unblock,
 * approve) announces their ids once it committed, and every process drops its cached copy, so
 * the next request re-reads the status — within milliseconds with Redis. Without Redis there is
 * one process, or the cache's own one-second status TTL catches up.
 */
export async function listenForVersionChanges(shared: SharedState, forget: (id: string) => void): Promise<void> {
  shared.subscribe(CHANNEL, (message) => {
    for (const id of message.split(',')) if (id) forget(id)
  })
  if ('ready' in shared && typeof shared.ready === 'function') await shared.ready()
}

/** Tells every process which versions changed (after the commit); a failure leaves it to the status TTL. */
export function announceVersionChanges(shared: SharedState | undefined, ids: readonly string[]): void {
  if (!shared || ids.length === 0) return
  void shared.publish(CHANNEL, ids.join(',')).catch(() => {})
}
