// @ts-check
// The isolate of one tenant (per memory limit) in a worker, holding each of the tenant's plugins
// in a V8 context of its own (plugin-context.mjs). Tenants never share an isolate; a tenant's
// plugins share its heap limit, CPU clock and fate, and only one stretch of plugin code runs in
// it at a time, so its CPU clock measures exactly that stretch (docs/adr/0080-one-isolate-per-tenant.md).
import { makeIsolate } from './spare-isolates.mjs'

/** @typedef {import('./plugin-context.mjs').PluginContext} PluginContext */
/** @typedef {import('./context-bootstrap.mjs').BootedContext} BootedContext */
/** @typedef {import('./spare-isolates.mjs').Spare} Spare */
/** @typedef {import('./spare-isolates.mjs').LoadedContext} LoadedContext */

export class IsolateFailure extends Error {
  /**
   * @param {string} code a sandbox error code
   * @param {Record<string, unknown>} details
   */
  constructor(code, details) {
    super(code)
    this.code = code
    this.details = details
  }
}

export class TenantIsolate {
  /**
   * @param {string} key the tenant and memory limit
   * @param {number} memoryMb
   * @param {Spare} [spare] a fresh isolate with this memory limit, maybe with a context booted in it
   */
  constructor(key, memoryMb, spare = { isolate: makeIsolate(memoryMb), booted: undefined }) {
    this.key = key
    this.memoryMb = memoryMb
    this.isolate = spare.isolate
    /** @type {BootedContext | undefined} a context booted ahead of need, for the first plugin context */
    this.booted = spare.booted
    /** @type {LoadedContext | undefined} a bundle's probe, for the first plugin context of that bundle */
    this.loaded = spare.loaded
    this.disposed = false
    /** @type {Set<PluginContext>} the plugin contexts living here */
    this.members = new Set()
    /** Total heap, external included (for the pool's budget). */
    this.heapBytes = 0
    /** Used heap at the last sample, and when it was taken (performance.now()). */
    this.heapUsed = 0
    /** @type {number | undefined} */
    this.heapAt = undefined
    /** Its heap is in the pool's running sum. */
    this.counted = false
    this.running = false
    /** A stretch runs on one of isolated-vm's threads (reading the isolate would wait for it). */
    this.onPool = false
    /** @type {unknown} who holds the lock (null: nobody, or a context being made) */
    this.owner = null
    /** @type {Array<{ start: () => void, owner: unknown }>} stretches waiting for the one running here */
    this.waiting = []
  }

  /**
   * Calls `start` once no other stretch of plugin code runs in this isolate (at once when none
   * does); whoever `start` begins must call `unlock()` when its stretch ends.
   * @param {() => void} start
   * @param {unknown} [owner] the invocation that will hold it
   */
  lock(start, owner = null) {
    if (this.running) this.waiting.push({ start, owner })
    else {
      this.running = true
      this.owner = owner
      start()
    }
  }

  unlock() {
    this.owner = null
    const next = this.waiting.shift()
    if (!next) {
      this.running = false
      return
    }
    queueMicrotask(() => {
      this.owner = next.owner
      next.start()
    })
  }

  /**
   * Whether `who` may read this isolate from the worker's thread without waiting for plugin
   * code running on a pool thread (heap statistics and log drains wait for the isolate).
   * @param {unknown} who
   */
  idleFor(who) {
    return !this.running || (this.owner === who && !this.onPool)
  }

  /** @returns {Promise<void>} resolves holding the lock */
  locked() {
    return new Promise((resolve) => this.lock(resolve))
  }

  /** A context booted ahead of need, once. */
  takeBooted() {
    const booted = this.booted
    this.booted = undefined
    return booted
  }

  /**
   * The context where `bundleKey`'s top level ran (its probe), once; one of another bundle is
   * released (nothing of it can run any more) and none is given.
   * @param {string} bundleKey
   */
  takeLoaded(bundleKey) {
    const loaded = this.loaded
    this.loaded = undefined
    if (!loaded || loaded.bundleKey === bundleKey) return loaded
    releaseBooted(loaded.booted)
    return undefined
  }

  /** @returns {bigint | null} the isolate's CPU time so far, null once it is gone */
  cpuNs() {
    try {
      return this.disposed ? null : this.isolate.cpuTime
    } catch {
      return null
    }
  }

  /**
   * @param {(isolate: import('isolated-vm').Isolate) => void} [later] disposes the isolate at a
   * quieter moment (one that runs nothing any more)
   */
  dispose(later) {
    if (this.disposed) return
    this.disposed = true
    if (later) return later(this.isolate)
    try {
      this.isolate.dispose()
    } catch {
      /* already gone */
    }
  }
}

/**
 * Releases a context's handles: nothing keeps it alive any more, and its heap is reclaimed.
 * @param {Partial<BootedContext>} booted
 */
export function releaseBooted(booted) {
  for (const handle of [
    booted.invokeRef,
    booted.settleRef,
    booted.pollRef,
    booted.drainRef,
    booted.loadRef,
    booted.context,
  ]) {
    try {
      handle?.release()
    } catch {
      /* its isolate is gone */
    }
  }
}

/** @param {unknown} result */
export function describeLoadFailure(result) {
  if (typeof result !== 'string') return 'bootstrap returned no result'
  try {
    const d = JSON.parse(result.slice(1))
    const msg = typeof d.message === 'string' ? d.message.slice(0, 500) : 'unknown error'
    return d.kind === 'plugin' ? `evaluation threw: ${msg}` : msg
  } catch {
    return 'bootstrap returned a malformed result'
  }
}

/**
 * { used, total }: used heap for metrics; total (with external memory) for eviction budgets.
 * @param {import('isolated-vm').Isolate} isolate
 */
export function heapOf(isolate) {
  try {
    const s = isolate.getHeapStatisticsSync()
    return {
      used: s.used_heap_size + s.externally_allocated_size,
      total: s.total_heap_size + s.externally_allocated_size,
    }
  } catch {
    return { used: 0, total: 0 }
  }
}

/**
 * Maps an error that came out of isolated-vm (not through the bootstrap's own reporting) to a
 * sandbox error code. `phase` says what was running: while the bundle loads ('load'), an error
 * of the code itself means the bundle is invalid; once a handler runs ('run'), any error of the
 * code (a SyntaxError from JSON.parse or new Function in a detached promise, say) is the plugin's.
 * Every value read here is a copy isolated-vm made; only its own string properties are read,
 * each clipped.
 * @param {unknown} err
 * @param {PluginContext} pluginContext where the code ran
 * @param {number} cpuMs
 * @param {'load' | 'run'} [phase]
 */
export function classifyIsolateError(err, pluginContext, cpuMs, phase = 'run') {
  const message = clipText(ownString(err, 'message') ?? (typeof err === 'string' ? err : ''), 500)
  const host = pluginContext.host
  if (/memory limit/i.test(message)) return new IsolateFailure('SBX_ERR_MEMORY', { limitMb: host.memoryMb })
  if (/timed out/i.test(message)) return new IsolateFailure('SBX_ERR_TIMEOUT', { limit: 'cpu', limitMs: cpuMs })
  if (host.isolate.isDisposed && !host.disposed) return new IsolateFailure('SBX_ERR_MEMORY', { limitMb: host.memoryMb })
  const name = clipText(ownString(err, 'name') ?? (err instanceof Error ? err.constructor.name : ''), 200) || 'Error'
  if (phase === 'load') {
    const { id, version } = pluginContext.bundle
    return new IsolateFailure('SBX_ERR_BUNDLE_INVALID', { id, version, reason: `${name}: ${message}`.slice(0, 500) })
  }
  return new IsolateFailure('SBX_ERR_PLUGIN_ERROR', { message: message || 'plugin error', name, stack: '' })
}

/**
 * @param {unknown} obj
 * @param {'name' | 'message'} key
 */
function ownString(obj, key) {
  if (obj === null || typeof obj !== 'object') return undefined
  try {
    const d =
      Object.getOwnPropertyDescriptor(obj, key) ??
      (key === 'name' ? undefined : Object.getOwnPropertyDescriptor(Object.getPrototypeOf(obj) ?? {}, key))
    return d && typeof d.value === 'string' ? d.value : undefined
  } catch {
    return undefined
  }
}

/**
 * @param {unknown} s
 * @param {number} max
 */
function clipText(s, max) {
  return typeof s === 'string' ? s.slice(0, max) : ''
}
