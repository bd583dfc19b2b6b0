// @ts-check
// Fresh isolates made ahead of need, so that a new bundle's probe and a new tenant's first call
// do not wait for V8 to set up a heap and a context. A spare has run nothing but our bootstrap,
// in one context of its own (context-bootstrap.mjs) — the same a plugin context starts from — so
// handing it to a tenant is the same as making it at that moment, and it is handed out once. A few are kept for each of the memory limits asked for lately; they are made
// on the worker's thread (isolated-vm has no asynchronous constructor) when it has nothing in
// flight, so making them never delays a call. Isolates that run nothing any more (a bundle's
// probe, once it loaded) are disposed at such a moment too.
import ivm from './isolated-vm.mjs'
import { bootContext } from './context-bootstrap.mjs'

/** @typedef {import('isolated-vm').Isolate} Isolate */
/** @typedef {import('./context-bootstrap.mjs').BootedContext} BootedContext */
/**
 * A context in which a bundle's top level ran, and nothing else: what a new tenant's first
 * context of that bundle would be once made (`cpuMs`: what its top level took).
 * @typedef {{ bundleKey: string, booted: BootedContext, entries: Record<string, string[]>, cpuMs: number }} LoadedContext
 */
/** @typedef {{ isolate: Isolate, booted: BootedContext | undefined, loaded?: LoadedContext }} Spare */

/** Isolates waiting to be disposed at most; beyond that the oldest goes at once. */
const MAX_RETIRED = 4
/** Probes kept for the first new tenant of their bundle at most; beyond that the oldest goes. */
const MAX_KEPT = 4
/** How long a probe is kept for a new tenant of its bundle. */
const KEEP_MS = 60_000

/** @param {Isolate} isolate */
function dispose(isolate) {
  try {
    isolate.dispose()
  } catch {
    /* already gone */
  }
}

/** @param {number} memoryMb */
export function makeIsolate(memoryMb) {
  return new ivm.Isolate({
    memoryLimit: memoryMb,
    // isolated-vm's advice: a catastrophic error leaves the process unrecoverable. Exiting
    // lets the parent fail what this worker held and start a replacement.
    onCatastrophicError: () => process.exit(70),
  })
}

/**
 * A fresh isolate with a context booted in it (nothing but the bootstrap has run there).
 * @param {number} memoryMb
 * @returns {Spare}
 */
export function makeSpare(memoryMb) {
  const isolate = makeIsolate(memoryMb)
  try {
    return { isolate, booted: bootContext(isolate, 1000) }
  } catch {
    return { isolate, booted: undefined }
  }
}

export class SpareIsolates {
  /**
   * @param {object} options
   * @param {() => boolean} options.busy whether the worker has work in flight or had lately (spares wait for a quiet moment)
   * @param {(memoryMb: number) => Spare} [options.make]
   * @param {number} [options.perLimit] spares kept per memory limit
   * @param {number} [options.maxLimits] memory limits kept spares for (the latest asked for)
   * @param {number} [options.delayMs] how long after a take, or a busy moment, spares are made
   */
  constructor({ busy, make = makeSpare, perLimit = 2, maxLimits = 2, delayMs = 5 }) {
    this.busy = busy
    this.make = make
    this.perLimit = perLimit
    this.maxLimits = maxLimits
    this.delayMs = delayMs
    /** @type {Map<number, Spare[]>} memory limit → its spares (the latest asked for last) */
    this.spares = new Map()
    /** @type {NodeJS.Timeout | undefined} */
    this.timer = undefined
    /** @type {Isolate[]} isolates that run nothing any more, disposed at a quiet moment */
    this.retired = []
    /** @type {Map<string, { spare: Spare, memoryMb: number, at: number }>} probes by bundle key, oldest first */
    this.kept = new Map()
  }

  /**
   * Keeps a bundle's probe, whose isolate holds a context where the bundle's top level ran and
   * nothing else, for the first new tenant of that bundle in this worker: its first context would
   * start from exactly that. It is handed out once, or disposed (after KEEP_MS, on unload, when
   * more are kept than MAX_KEPT).
   * @param {number} memoryMb
   * @param {Spare & { loaded: LoadedContext }} spare
   */
  keep(memoryMb, spare) {
    this.drop(spare.loaded.bundleKey)
    this.kept.set(spare.loaded.bundleKey, { spare, memoryMb, at: Date.now() })
    for (const [key, old] of this.kept) {
      if (this.kept.size <= MAX_KEPT) break
      this.kept.delete(key)
      this.retire(old.spare.isolate)
    }
  }

  /**
   * Disposes the probe kept for a bundle (it was unloaded), or every probe kept longer than KEEP_MS.
   * @param {string} [bundleKey]
   */
  drop(bundleKey, now = Date.now()) {
    for (const [key, k] of this.kept) {
      if (bundleKey === undefined ? now - k.at < KEEP_MS : key !== bundleKey) continue
      this.kept.delete(key)
      this.retire(k.spare.isolate)
    }
  }

  /**
   * Disposes an isolate that runs nothing any more once the worker is quiet (disposing a heap
   * takes a while, which a call waiting for this worker need not wait for).
   * @param {Isolate} isolate
   */
  retire(isolate) {
    this.retired.push(isolate)
    // a worker that is never quiet still lets them go
    while (this.retired.length > MAX_RETIRED) dispose(/** @type {Isolate} */ (this.retired.shift()))
    this.schedule()
  }

  /**
   * A fresh isolate with this memory limit for a new tenant's first context (of `bundleKey`):
   * the bundle's probe when one is kept with this limit, else a spare when there is one, else a
   * new one.
   * @param {number} memoryMb
   * @param {string} [bundleKey]
   * @returns {Spare}
   */
  take(memoryMb, bundleKey) {
    const probe = bundleKey === undefined ? undefined : this.kept.get(bundleKey)
    if (probe && probe.memoryMb === memoryMb) {
      this.kept.delete(/** @type {string} */ (bundleKey))
      if (!probe.spare.isolate.isDisposed) return probe.spare
    }
    const list = this.spares.get(memoryMb) ?? []
    this.spares.delete(memoryMb)
    this.spares.set(memoryMb, list)
    for (const [mb, old] of this.spares) {
      if (this.spares.size <= this.maxLimits) break
      this.spares.delete(mb)
      for (const spare of old) dispose(spare.isolate)
    }
    this.schedule()
    let spare = list.pop()
    while (spare?.isolate.isDisposed) spare = list.pop()
    return spare ?? { isolate: makeIsolate(memoryMb), booted: undefined }
  }

  schedule() {
    if (this.timer) return this.timer.refresh()
    this.timer = setTimeout(() => this.refill(), this.delayMs)
    this.timer.unref()
  }

  /**
   * Disposes a retired isolate or makes a spare, one a turn of the event loop, so that a message
   * arriving meanwhile waits for one of them at most (and makes the worker busy again).
   */
  refill() {
    this.timer = undefined
    if (this.busy()) return this.schedule()
    const retired = this.retired.pop()
    if (retired) dispose(retired)
    else {
      const [mb, list] = [...this.spares].find(([, l]) => l.length < this.perLimit) ?? []
      if (mb === undefined || !list) return
      list.push(this.make(mb))
    }
    setImmediate(() => this.timer === undefined && this.refill())
  }

  /** How many spares are ready (for stats). */
  get count() {
    let n = 0
    for (const list of this.spares.values()) n += list.length
    return n
  }

  disposeAll() {
    clearTimeout(this.timer)
    this.timer = undefined
    for (const iso of this.retired.splice(0)) dispose(iso)
    for (const list of this.spares.values()) for (const spare of list) dispose(spare.isolate)
    this.spares.clear()
    for (const k of this.kept.values()) dispose(k.spare.isolate)
    this.kept.clear()
  }
}
