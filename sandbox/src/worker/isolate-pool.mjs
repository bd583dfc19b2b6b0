// @ts-check
// Warm plugin contexts of one worker, keyed by (tenant, installation, bundle, memory limit), and
// the tenants' isolates they live in, one per (tenant, memory limit) (ADR 0080). A key may hold a
// few contexts so one installation's concurrent invocations do not queue behind each other; each
// context runs one invocation at a time. Idle contexts leave by LRU order when the count or the
// heap budget is exceeded, and after an idle timeout; an isolate goes with its last context.

import { heapOf, TenantIsolate } from './tenant-isolate.mjs'

/** @typedef {import('./plugin-context.mjs').PluginContext} PluginContext */
/** @typedef {{ iso: PluginContext, cold: boolean }} Acquired */
/**
 * A request queued for an isolate of its key.
 * @typedef {object} Waiter
 * @property {boolean} cancelled set by the invocation's deadline
 * @property {(a: Acquired) => void} [resolve]
 * @property {(err: unknown) => void} [reject]
 * @property {() => void} [retry] lets it build its own isolate once one of its key is gone
 */

export class IsolatePool {
  /**
   * @param {{ maxIsolates: number, maxIsolatesPerKey: number, idleMs: number, heapBudgetBytes: number,
   *   freshIsolate?: (memoryMb: number, bundleKey?: string) => import('./spare-isolates.mjs').Spare }} options
   *   `freshIsolate` gives a new tenant's isolate (the bundle's probe, a spare made ahead of need, or a new one)
   */
  constructor({ maxIsolates, maxIsolatesPerKey, idleMs, heapBudgetBytes, freshIsolate }) {
    this.freshIsolate = freshIsolate
    this.maxIsolates = maxIsolates
    this.maxPerKey = maxIsolatesPerKey
    this.idleMs = idleMs
    this.heapBudgetBytes = heapBudgetBytes
    /** @type {Map<string, PluginContext[]>} */
    this.byKey = new Map()
    /** @type {Map<string, TenantIsolate>} the tenants' isolates, by (tenant, memory limit) */
    this.isolates = new Map()
    /** @type {Map<string, number>} isolates being built, per key */
    this.creating = new Map()
    /** @type {Map<string, Waiter[]>} */
    this.waiters = new Map()
    // Insertion order is recency order: an isolate is re-inserted whenever it is released.
    /** @type {Set<PluginContext>} */
    this.idle = new Set()
    this.count = 0
    // Kept as a running sum: summing a thousand isolates on every release would cost more
    // than the invocation it follows.
    this.totalHeap = 0
  }

  /**
   * The tenant's isolate for `key` (tenant and memory limit), made when it has none (for a first
   * context of `bundleKey`).
   * @param {string} key
   * @param {number} memoryMb
   * @param {string} [bundleKey]
   */
  isolateFor(key, memoryMb, bundleKey) {
    const live = this.isolates.get(key)
    if (live && !live.disposed) return live
    const iso = new TenantIsolate(key, memoryMb, this.freshIsolate?.(memoryMb, bundleKey))
    this.isolates.set(key, iso)
    return iso
  }

  /**
   * Resolves to { iso, cold } once an isolate for `key` is free; `create` builds a new one.
   * `waiter.cancelled` lets a deadline drop a queued request.
   * @param {string} key
   * @param {() => Promise<PluginContext>} create
   * @param {Waiter} [waiter]
   * @returns {Promise<Acquired>}
   */
  async acquire(key, create, waiter = { cancelled: false }) {
    const idle = this.takeIdle(key)
    if (idle) return { iso: idle, cold: false }
    const list = this.byKey.get(key)
    const building = this.creating.get(key) ?? 0
    if ((list?.length ?? 0) + building < this.maxPerKey) {
      this.creating.set(key, building + 1)
      /** @type {PluginContext} */
      let iso
      try {
        iso = await create()
      } catch (err) {
        // A request queued behind this creation would otherwise wait for an isolate that
        // never comes; it gets to try its own.
        const q = this.waiters.get(key)
        const next = q?.shift()
        if (q && !q.length) this.waiters.delete(key)
        if (next && !next.cancelled) queueMicrotask(() => next.retry?.())
        throw err
      } finally {
        const n = (this.creating.get(key) ?? 1) - 1
        if (n > 0) this.creating.set(key, n)
        else this.creating.delete(key)
      }
      if (waiter.cancelled) {
        iso.dispose()
        this.forgetIsolateIfEmpty(iso.host)
        throw new Error('cancelled')
      }
      this.add(iso)
      this.evictOverflow()
      return { iso: this.take(iso), cold: true }
    }
    return new Promise((resolve, reject) => {
      waiter.resolve = resolve
      waiter.reject = reject
      // Called when an isolate of this key is discarded: the request may build its own now.
      waiter.retry = () => {
        /** @type {Waiter} */
        const again = {
          get cancelled() {
            return waiter.cancelled
          },
        }
        this.acquire(key, create, again).then(resolve, reject)
      }
      const q = this.waiters.get(key) ?? []
      q.push(waiter)
      this.waiters.set(key, q)
    })
  }

  /**
   * A free context of `key`, taken, when there is one (a warm call needs nothing else).
   * @param {string} key
   * @returns {PluginContext | undefined}
   */
  takeIdle(key) {
    const list = this.byKey.get(key)
    if (list) for (const iso of list) if (!iso.busy && !iso.disposed) return this.take(iso)
    return undefined
  }

  /** @param {PluginContext} iso */
  take(iso) {
    iso.busy = true
    this.idle.delete(iso)
    return iso
  }

  /** @param {PluginContext} iso */
  add(iso) {
    const list = this.byKey.get(iso.key) ?? []
    list.push(iso)
    this.byKey.set(iso.key, list)
    this.count++
    const host = iso.host
    if (!host.counted) {
      host.counted = true
      // (an isolate running plugin code elsewhere is measured by that invocation's metrics)
      if (!host.running) host.heapBytes = heapOf(host.isolate).total
      this.totalHeap += host.heapBytes
    }
  }

  /**
   * Records a tenant isolate's latest heap size (total, external included).
   * @param {TenantIsolate} host
   * @param {number} bytes
   */
  setHeap(host, bytes) {
    if (host.counted) this.totalHeap += bytes - host.heapBytes
    host.heapBytes = bytes
  }

  /**
   * Disposes a tenant's isolate once no context lives in it any more.
   * @param {TenantIsolate} host
   */
  forgetIsolateIfEmpty(host) {
    if (host.members.size > 0 && !host.disposed) return
    host.dispose()
    if (this.isolates.get(host.key) === host) this.isolates.delete(host.key)
    if (host.counted) {
      host.counted = false
      this.totalHeap -= host.heapBytes
    }
  }

  /**
   * Disposes a tenant's isolate with every context in it (its heap ran out: none can be
   * trusted); `onLost` is told of each context that had an invocation running.
   * @param {TenantIsolate} host
   * @param {(ctx: PluginContext) => void} onLost
   */
  discardIsolate(host, onLost) {
    host.dispose()
    for (const ctx of [...host.members]) {
      if (ctx.current) onLost(ctx)
      this.discard(ctx)
    }
    this.forgetIsolateIfEmpty(host)
  }

  /**
   * Returns a context after an invocation; hands it straight to a queued request if any.
   * @param {PluginContext} iso
   */
  release(iso) {
    iso.busy = false
    iso.lastUsed = Date.now()
    if (iso.disposed || iso.disposeOnRelease) return this.discard(iso)
    const q = this.waiters.get(iso.key)
    while (q?.length) {
      const w = /** @type {Waiter} */ (q.shift())
      if (w.cancelled) continue
      if (!q.length) this.waiters.delete(iso.key)
      w.resolve?.({ iso: this.take(iso), cold: false })
      return
    }
    this.waiters.delete(iso.key)
    this.idle.add(iso)
    this.evictOverflow()
  }

  /**
   * Disposes a context whose state can no longer be trusted (timeout, failure), or that is idle
   * too long; its isolate goes with its last context.
   * @param {PluginContext} iso
   */
  discard(iso) {
    iso.dispose()
    this.remove(iso)
    this.forgetIsolateIfEmpty(iso.host)
  }

  /** @param {PluginContext} iso */
  remove(iso) {
    this.idle.delete(iso)
    const list = this.byKey.get(iso.key)
    if (!list) return
    const i = list.indexOf(iso)
    if (i < 0) return
    list.splice(i, 1)
    this.count--
    if (!list.length) this.byKey.delete(iso.key)
    // A queued request for this key may now create its own isolate.
    const q = this.waiters.get(iso.key)
    if (q?.length) {
      const w = /** @type {Waiter} */ (q.shift())
      if (!q.length) this.waiters.delete(iso.key)
      if (!w.cancelled) w.retry?.()
    }
  }

  heapBytes() {
    return this.totalHeap
  }

  evictOverflow() {
    for (const iso of this.idle) {
      if (this.count <= this.maxIsolates && this.totalHeap <= this.heapBudgetBytes) break
      this.discard(iso)
    }
  }

  sweep(now = Date.now()) {
    for (const iso of this.idle) {
      if (now - iso.lastUsed < this.idleMs) break
      this.discard(iso)
    }
    this.evictOverflow()
  }

  /**
   * Drops every context of a bundle (on unload); busy ones go when released.
   * @param {(iso: PluginContext) => boolean} predicate
   */
  dropWhere(predicate) {
    for (const list of [...this.byKey.values()]) {
      for (const iso of [...list]) {
        if (!predicate(iso)) continue
        if (iso.busy) iso.disposeOnRelease = true
        else this.discard(iso)
      }
    }
  }

  disposeAll() {
    for (const list of [...this.byKey.values()]) for (const iso of [...list]) this.discard(iso)
  }
}
