// @ts-check
// Shares a worker's CPU between tenants. A run is one stretch of plugin code in an isolate: an
// invocation's entry, or its continuation after a host-call result, up to the next host call
// or the end. Runs cannot be preempted, so nobody may wait for a slot behind another tenant's
// long run: instead one tenant runs at most `maxPerTenant` at once (by default one core fewer
// than the machine has), which leaves a core to everyone else, and its further runs wait in its
// own queue. When several tenants have runs ready, the one that has used the least run time
// lately goes first (start-time fair queuing over a virtual clock of run time), so a light
// tenant is served before a heavy tenant's backlog.
//
// Runs on the worker's main thread execute synchronously, so a burst of messages read in one
// go would otherwise run in arrival order: once a run has started, new runs queue until the
// burst has been read (Node emits the messages of one read as one batch of ticks, and runs the
// microtasks after all of them), and the queues are served on the next turn of the event loop,
// after every message that has arrived meanwhile has been read.

/**
 * @typedef {object} Turn the right to run, held from the grant until `end()`
 * @property {() => void} end gives the slot back (idempotent)
 */

/**
 * @typedef {object} TenantQueue
 * @property {string} key
 * @property {number} vt virtual time: run time used, in ms, relative to the others'
 * @property {Array<(turn: Turn) => void>} waiting
 * @property {number} running
 */

/** Smallest cost a run is charged, so tenants whose runs take no measurable time still take turns. */
const MIN_COST_MS = 0.001
/** Runs granted per turn of the event loop before reading what has arrived meanwhile. */
const GRANTS_PER_TURN = 2
const RESOLVED = Promise.resolve()

export class FairScheduler {
  /**
   * @param {object} options
   * @param {number} options.maxPerTenant runs of one tenant executing at once
   * @param {number} [options.maxRunning] runs executing at once in all (default: no limit)
   * @param {() => number} [options.now] a clock in ms (injectable for tests)
   * @param {(fn: () => void) => void} [options.defer] runs `fn` on a later turn of the event loop
   */
  constructor({
    maxPerTenant,
    maxRunning = Number.POSITIVE_INFINITY,
    now = () => performance.now(),
    defer = setImmediate,
  }) {
    this.maxPerTenant = Math.max(1, maxPerTenant)
    this.maxRunning = Math.max(1, maxRunning)
    this.now = now
    this.defer = defer
    /** @type {Map<string, TenantQueue>} tenants that have runs waiting or running, or owe run time */
    this.tenants = new Map()
    /** @type {Set<TenantQueue>} tenants with runs waiting, in the order they started waiting */
    this.ready = new Set()
    this.running = 0
    this.queued = 0
    /** The virtual time of the latest run granted from a queue: where a newly waiting tenant starts. */
    this.floor = 0
    /** A run was granted in this burst of messages: new runs queue until it has been read. */
    this.hot = false
    this.scheduled = false
    this.cool = () => {
      this.hot = false
    }
  }

  /**
   * Calls `run` with a turn now, when a slot is free and nobody waits, or later in fair order.
   * `run` must end its turn when its stretch of plugin code ends.
   * @param {string} key the tenant
   * @param {(turn: Turn) => void} run
   */
  submit(key, run) {
    const q = this.tenants.get(key) ?? this.track(key)
    if (!this.hot && q.waiting.length === 0 && this.mayRun(q) && this.next() === undefined) return this.grant(q, run)
    if (q.waiting.length === 0) {
      // A tenant that was idle starts level with whoever is being served: it cannot save up turns.
      if (q.running === 0) q.vt = Math.max(q.vt, this.floor)
      this.ready.add(q)
    }
    q.waiting.push(run)
    this.queued++
    this.later()
  }

  /** @param {TenantQueue} q */
  mayRun(q) {
    return q.running < this.maxPerTenant && this.running < this.maxRunning
  }

  /** @param {string} key */
  track(key) {
    /** @type {TenantQueue} */
    const q = { key, vt: this.floor, waiting: [], running: 0 }
    this.tenants.set(key, q)
    return q
  }

  /**
   * @param {TenantQueue} q
   * @param {(turn: Turn) => void} run
   */
  grant(q, run) {
    this.running++
    q.running++
    // A microtask rather than a turn of the event loop: this runs for every invocation, and a
    // turn (an immediate) cost more than the rest of the scheduling.
    if (!this.hot) {
      this.hot = true
      RESOLVED.then(this.cool)
    }
    const started = this.now()
    let ended = false
    run({
      end: () => {
        if (ended) return
        ended = true
        this.running--
        q.running--
        q.vt += Math.max(MIN_COST_MS, this.now() - started)
        this.forget(q)
        if (this.queued > 0) this.later()
      },
    })
  }

  /**
   * Drops what is known of a tenant once nobody waits and it has nothing running.
   * @param {TenantQueue} q
   */
  forget(q) {
    if (q.running > 0 || q.waiting.length > 0) return
    // With others waiting its debt still matters; without, it never will again.
    if (this.queued === 0 || q.vt <= this.floor) this.tenants.delete(q.key)
  }

  later() {
    if (this.scheduled) return
    this.scheduled = true
    this.defer(() => this.tick())
  }

  tick() {
    this.scheduled = false
    this.hot = false
    // A few grants per turn: runs on this thread end at once, and the next turn must see
    // what arrived meanwhile.
    for (let n = 0; n < GRANTS_PER_TURN; n++) {
      const q = this.next()
      if (!q) break
      const run = /** @type {(turn: Turn) => void} */ (q.waiting.shift())
      this.queued--
      if (q.waiting.length === 0) this.ready.delete(q)
      this.floor = Math.max(this.floor, q.vt)
      this.grant(q, run)
    }
    // Contention is over: what tenants owe no longer matters.
    if (this.queued === 0) for (const q of this.tenants.values()) this.forget(q)
    // More may run now (runs on this thread have ended); the rest wait for a turn to end.
    else if (this.next() !== undefined) this.later()
  }

  /** The waiting tenant that may run with the least virtual time (the earliest to wait on a tie). */
  next() {
    /** @type {TenantQueue | undefined} */
    let best
    for (const q of this.ready) if (this.mayRun(q) && (best === undefined || q.vt < best.vt)) best = q
    return best
  }

  /** Runs waiting, per tenant (for tests and stats). */
  waiting() {
    return [...this.ready].map((q) => ({ key: q.key, waiting: q.waiting.length }))
  }
}
