// @ts-check
// Shared by the parent (TypeScript) and the worker (plain ESM, type-checked through JSDoc), hence .mjs.
// Deadlines of the invocations in flight on one Node timer instead of a timer each. Node keeps
// a list of timers per duration and drops the list when its last timer is cleared, so with one
// invocation at a time every call made a list, queued it, cleared it and dropped it again, on
// both sides of the channel. Here an invocation costs a Set entry; the one timer is armed for
// the earliest deadline and is re-armed only when an earlier one arrives or when it fires.

/**
 * @typedef {object} Deadline
 * @property {number} at performance.now() value at which `expire` is called
 * @property {() => void} expire
 */

/**
 * @typedef {object} DeadlineClock
 * @property {() => number} now milliseconds, as performance.now()
 * @property {(fire: () => void, ms: number) => { ref(): unknown, unref(): unknown }} set
 * @property {(timer: any) => void} clear
 */

/** @type {DeadlineClock} */
const SYSTEM_CLOCK = {
  now: () => performance.now(),
  set: (fire, ms) => setTimeout(fire, ms),
  clear: (timer) => clearTimeout(timer),
}

export class Deadlines {
  /** @param {DeadlineClock} [clock] the time and the timer (tests pass their own) */
  constructor(clock = SYSTEM_CLOCK) {
    this.clock = clock
    /** @type {Set<Deadline>} */
    this.pending = new Set()
    /** @type {{ ref(): unknown, unref(): unknown } | undefined} */
    this.timer = undefined
    /** When the timer fires (performance.now()), Infinity when none is armed. */
    this.armedAt = Number.POSITIVE_INFINITY
    this.fire = () => this.onTimer()
  }

  /**
   * Calls `expire` `ms` from now unless `cancel` is called with the returned entry first.
   * @param {number} ms
   * @param {() => void} expire
   * @returns {Deadline}
   */
  add(ms, expire) {
    const entry = { at: this.clock.now() + ms, expire }
    this.pending.add(entry)
    if (entry.at < this.armedAt) this.arm(entry.at)
    // the timer keeps the process alive only while something waits for it
    else if (this.pending.size === 1) this.timer?.ref()
    return entry
  }

  /** @param {Deadline} entry */
  cancel(entry) {
    this.pending.delete(entry)
    if (this.pending.size === 0) this.timer?.unref()
  }

  /** Stops the timer (the owner is closing); pending deadlines never expire. */
  clear() {
    this.pending.clear()
    if (this.timer) this.clock.clear(this.timer)
    this.timer = undefined
    this.armedAt = Number.POSITIVE_INFINITY
  }

  /** @param {number} at */
  arm(at) {
    if (this.timer) this.clock.clear(this.timer)
    this.armedAt = at
    // Node's timers count whole milliseconds and may fire up to one early: onTimer re-arms.
    this.timer = this.clock.set(this.fire, Math.max(1, Math.ceil(at - this.clock.now())))
  }

  onTimer() {
    this.timer = undefined
    this.armedAt = Number.POSITIVE_INFINITY
    const now = this.clock.now()
    /** @type {Deadline[]} */
    const due = []
    let next = Number.POSITIVE_INFINITY
    for (const entry of this.pending) {
      if (entry.at <= now) due.push(entry)
      else if (entry.at < next) next = entry.at
    }
    for (const entry of due) this.pending.delete(entry)
    if (next < Number.POSITIVE_INFINITY) this.arm(next)
    for (const entry of due) entry.expire()
  }
}
