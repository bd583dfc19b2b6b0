/**
 * A clock the test moves, for code that reads `Date.now()` and schedules with `setTimeout` (the
 * audit sealer): while installed, both are replaced; `advance` runs each timer that came due, in
 * order, at its own moment, and lets the promises it started settle before going on. Nothing
 * depends on how fast the machine is. Call `restore` (idempotent) before the test ends.
 */
export function installFakeTimers(start = Date.UTC(2026, 0, 1)) {
  const real = { now: Date.now, setTimeout: globalThis.setTimeout, clearTimeout: globalThis.clearTimeout }
  let now = start
  let seq = 0
  const timers = new Map<number, { at: number; fn: () => void }>()
  const handle = (id: number) => ({
    id,
    unref() {
      return this
    },
    ref() {
      return this
    },
    hasRef: () => false,
  })
  Date.now = () => now
  globalThis.setTimeout = ((fn: () => void, ms = 0) => {
    const id = ++seq
    timers.set(id, { at: now + Math.max(0, ms), fn })
    return handle(id)
  }) as unknown as typeof setTimeout
  globalThis.clearTimeout = ((h: unknown) => {
    if (h && typeof h === 'object' && 'id' in h) timers.delete((h as { id: number }).id)
    else real.clearTimeout(h as NodeJS.Timeout)
  }) as typeof clearTimeout
  // Microtasks (and the promise chains a timer starts against a fake database) run before this resolves.
  const settle = async () => {
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r))
  }
  let restored = false
  return {
    now: () => now,
    async advance(ms: number): Promise<void> {
      const to = now + ms
      for (;;) {
        const next = [...timers.entries()]
          .filter(([, x]) => x.at <= to)
          .sort((a, b) => a[1].at - b[1].at || a[0] - b[0])[0]
        if (!next) break
        timers.delete(next[0])
        now = next[1].at
        next[1].fn()
        await settle()
      }
      now = to
      await settle()
    },
    restore(): void {
      if (restored) return
      restored = true
      Date.now = real.now
      globalThis.setTimeout = real.setTimeout
      globalThis.clearTimeout = real.clearTimeout
    },
  }
}
