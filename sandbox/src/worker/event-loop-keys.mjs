// @ts-check
// Which keys run their plugin code on the worker's own thread (ADR 0080 decision 7, ADR 0108).
// A key leaves the event loop for isolated-vm's threads (about 80 µs more per call) when its code
// failed there, or ran long there twice within ten minutes. "Ran long" is first read from the
// isolate's CPU clock and the wall clock, which cost nothing more per call but also count what
// is not the plugin's: the isolate's clock counts V8's tasks for the isolate run by isolated-vm's
// threads while this thread waits for the isolate's lock (seen at 2–65 ms around an echo on a
// loaded machine). So after a first long stretch the key's stretches are also timed by this
// thread's own CPU clock for ten minutes, and only one that this clock too finds long counts again.
import { openSync, readSync } from 'node:fs'

/** How long one long stretch is remembered, and the key's stretches timed by this thread's clock (ms). */
const WINDOW_MS = 10 * 60_000
/** How long a key stays off the event loop (ms). */
const SLOW_MS = 30 * 60_000
/** Keys remembered in each map at most (the oldest goes first). */
const MAX_KEYS = 100_000

/** @type {number | null | undefined} */
let statFd
const statBuf = Buffer.alloc(64)

/**
 * CPU time this process's main thread has run (ns), from the scheduler's account of it
 * (/proc/<pid>/task/<pid>/schedstat, Linux): a read costs about 2 µs alone; for the thread reading it,
 * it is brought up to date at scheduler ticks only, so it may lag by one tick (1–4 ms). Null
 * where the kernel does not give it.
 * @returns {number | null}
 */
export function mainThreadCpuNs() {
  try {
    statFd ??= openSync(`/proc/${process.pid}/task/${process.pid}/schedstat`, 'r')
    const n = readSync(statFd, statBuf, 0, statBuf.length, 0)
    // Its first field, read digit by digit (a string and its split cost as much as the read).
    let ns = 0
    let i = 0
    for (; i < n && statBuf[i] >= 0x30 && statBuf[i] <= 0x39; i++) ns = ns * 10 + statBuf[i] - 0x30
    return i > 0 ? ns : null
  } catch {
    statFd = null
    return null
  }
}

export class EventLoopKeys {
  /**
   * @param {{ sliceMs: number, now?: () => number, threadCpuNs?: () => number | null }} options
   */
  constructor({ sliceMs, now = Date.now, threadCpuNs = mainThreadCpuNs }) {
    this.sliceMs = sliceMs
    this.now = now
    this.threadCpuNs = threadCpuNs
    /** @type {Map<string, number>} keys off the event loop, until when */
    this.slow = new Map()
    /** @type {Map<string, number>} keys whose code ran long once lately, and when */
    this.longOnce = new Map()
  }

  /** @param {string} key */
  isSlow(key) {
    const until = this.slow.get(key)
    if (until === undefined) return false
    if (until > this.now()) return true
    this.slow.delete(key)
    return false
  }

  /** @param {string} key */
  markSlow(key) {
    remember(this.slow, key, this.now() + SLOW_MS)
  }

  /**
   * Whether the key's stretches on this thread are to be timed by its own CPU clock too (its code
   * ran long once within the window). Nothing but a size check for most calls.
   * @param {string} key
   */
  timed(key) {
    if (this.longOnce.size === 0) return false
    const first = this.longOnce.get(key)
    return first !== undefined && this.now() - first < WINDOW_MS
  }

  /**
   * A run of the key's code on this thread ended well but ran long by the isolate's CPU clock and
   * the wall clock. `ownNs`: this thread's CPU time over it, when it was timed. Returns whether
   * the key is now off the event loop.
   * @param {string} key
   * @param {number} [ownNs]
   */
  ranLong(key, ownNs) {
    // This thread ran less than the slice: the isolate's clock counted work that was not the plugin's.
    if (ownNs !== undefined && ownNs / 1e6 <= this.sliceMs) return false
    const now = this.now()
    const first = this.longOnce.get(key)
    if (first !== undefined && now - first < WINDOW_MS) {
      this.longOnce.delete(key)
      this.markSlow(key)
      return true
    }
    remember(this.longOnce, key, now)
    return false
  }
}

/**
 * @param {Map<string, number>} map
 * @param {string} key
 * @param {number} value
 */
function remember(map, key, value) {
  map.delete(key)
  const oldest = map.keys().next()
  if (map.size >= MAX_KEYS && !oldest.done) map.delete(oldest.value)
  map.set(key, value)
}
