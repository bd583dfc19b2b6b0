// @ts-check
// One plugin of one tenant's installation: a V8 context of its own inside the tenant's isolate,
// holding the bootstrap and the bundle. Its globals live as long as the context, so module-level
// state of the plugin survives between invocations of the same installation; it never reaches
// another plugin's context (nothing but strings ever leaves one) nor another tenant, whose
// plugins live in other isolates (docs/adr/0080-one-isolate-per-tenant.md).
import { performance } from 'node:perf_hooks'
import { bootContext } from './context-bootstrap.mjs'
import { classifyIsolateError, describeLoadFailure, IsolateFailure, releaseBooted } from './tenant-isolate.mjs'

/** @typedef {import('./worker-types.js').CompiledBundle} CompiledBundle */
/** @typedef {import('./cpu-watchdog.mjs').CpuWatchdog} CpuWatchdog */
/** @typedef {import('./invocation.mjs').Invocation} Invocation */
/** @typedef {import('./tenant-isolate.mjs').TenantIsolate} TenantIsolate */
/** @typedef {import('isolated-vm').Reference<Function>} FunctionRef */
/** @typedef {import('./context-bootstrap.mjs').BootedContext} BootedContext */
/** @typedef {import('./spare-isolates.mjs').Spare} Spare */
/** @typedef {import('./spare-isolates.mjs').LoadedContext} LoadedContext */
/** @typedef {import('isolated-vm').Script & { cachedData?: import('isolated-vm').ExternalCopy<ArrayBuffer> }} CompiledScript V8 gives back its code cache */
/**
 * Runs the top level on the worker's thread: the invocation's deadline (a Date.now() value), the
 * slice past which a run counts as long, and what to do when it does.
 * @typedef {{ deadline: number, sliceMs: number, ranLong: () => void }} OnThread
 */

/** A bundle this long (~10 ms of compiling) or longer is compiled on isolated-vm's threads. */
const SYNC_COMPILE_MAX_CHARS = 512 * 1024

export class PluginContext {
  /**
   * @param {string} key the tenant, installation, bundle and memory limit
   * @param {CompiledBundle} bundle
   * @param {TenantIsolate} host the tenant's isolate this context lives in
   */
  constructor(key, bundle, host) {
    this.key = key
    this.bundle = bundle
    this.host = host
    /** @type {import('isolated-vm').Context | null} */
    this.context = null
    this.busy = false
    this.disposed = false
    /** Dispose once the invocation running here ends (its bundle was unloaded meanwhile). */
    this.disposeOnRelease = false
    this.lastUsed = Date.now()
    /** @type {Invocation | null} The invocation currently running here (one at a time: the bootstrap tracks one). */
    this.current = null
    // The bootstrap's entry points (set by init).
    /** @type {FunctionRef} */
    this.invokeRef = /** @type {never} */ (null)
    /** @type {FunctionRef} */
    this.settleRef = /** @type {never} */ (null)
    /** @type {FunctionRef} */
    this.pollRef = /** @type {never} */ (null)
    /** @type {FunctionRef} */
    this.drainRef = /** @type {never} */ (null)
    /** @type {BootedContext | undefined} the context and the bootstrap's entry points (set by init) */
    this.booted = undefined
    /** @type {Record<string, string[]>} what the bundle exports, by entry kind */
    this.entries = {}
    /** CPU time the bundle's top level took here (ms). */
    this.topLevelCpuMs = 0
    host.members.add(this)
  }

  get memoryMb() {
    return this.host.memoryMb
  }

  /**
   * Creates the context, runs the bootstrap and the bundle; throws IsolateFailure. The bundle's
   * top level is plugin code, run under the time limit: on this thread when `onThread` is given
   * (as a stretch is: the CPU watchdog's thread watches it, and the invocation's deadline), else
   * on one of isolated-vm's threads (`watchdog`, with the request id to blame, watches it).
   * Holds the isolate's lock meanwhile: nothing else runs in it.
   * @param {number} loadTimeoutMs
   * @param {CpuWatchdog | undefined} watchdog
   * @param {number} [rid]
   * @param {OnThread} [onThread]
   */
  async init(loadTimeoutMs, watchdog, rid = 0, onThread = undefined) {
    const host = this.host
    await host.locked()
    let watching = 0
    try {
      if (host.disposed) throw new IsolateFailure('SBX_ERR_MEMORY', { limitMb: host.memoryMb })
      const isolate = host.isolate
      // each of the steps below has the time limit; together they may use a few of it
      if (watchdog && !onThread) watching = watchdog.watch(rid, () => host.cpuNs(), loadTimeoutMs * 4)
      // The bundle's probe, when this is the first context of a new tenant's isolate and the probe's
      // top level took no more than this context's limit: it ran there what would run here, and
      // nothing else. Else a context booted ahead of need in a spare isolate (nothing ran in it but
      // the bootstrap), else one booted now.
      const loaded = host.takeLoaded(this.bundle.key)
      const adopted = loaded && loaded.cpuMs <= loadTimeoutMs ? loaded : undefined
      if (loaded && !adopted) releaseBooted(loaded.booted)
      const booted = adopted?.booted ?? host.takeBooted() ?? bootContext(isolate, loadTimeoutMs)
      booted.hostCalls.target = this
      this.booted = booted
      this.context = booted.context
      this.invokeRef = booted.invokeRef
      this.settleRef = booted.settleRef
      this.pollRef = booted.pollRef
      this.drainRef = booted.drainRef
      if (adopted) this.entries = adopted.entries
      else await this.runBundle(booted, loadTimeoutMs, watchdog, rid, onThread)
    } catch (err) {
      // (an isolate disposed while a context was being made in it ran out of memory in a sibling)
      const failure =
        err instanceof IsolateFailure
          ? err
          : host.disposed
            ? new IsolateFailure('SBX_ERR_MEMORY', { limitMb: host.memoryMb })
            : classifyIsolateError(err, this, loadTimeoutMs, 'load')
      this.dispose()
      throw failure
    } finally {
      if (watching) watchdog?.unwatch(watching)
      host.unlock()
    }
  }

  /**
   * Compiles the bundle (from V8's code cache when this worker has one) and runs its top level in
   * `booted`'s context, under the time limit (see init).
   * @param {BootedContext} booted
   * @param {number} loadTimeoutMs
   * @param {CpuWatchdog | undefined} watchdog
   * @param {number} rid
   * @param {OnThread | undefined} onThread
   */
  async runBundle(booted, loadTimeoutMs, watchdog, rid, onThread) {
    const host = this.host
    const isolate = host.isolate
    const bundle = this.bundle
    const onPool = !onThread || bundle.code.length > SYNC_COMPILE_MAX_CHARS
    // From V8's code cache (no plugin code runs while compiling) this thread compiles faster
    // than a trip to isolated-vm's threads and back; so it does a small bundle's first compile.
    const { code, filename, cachedData } = bundle
    /** @type {import('isolated-vm').Script} */
    const script = cachedData
      ? isolate.compileScriptSync(code, { filename, cachedData })
      : onPool
        ? await isolate.compileScript(code, { filename })
        : isolate.compileScriptSync(code, { filename })
    const cpu0 = host.cpuNs()
    const wall0 = performance.now()
    const result = onThread
      ? topLevelOnThread(script, booted.context, booted.loadRef, loadTimeoutMs, watchdog, rid, onThread.deadline)
      : await topLevelOnPool(script, booted.context, booted.loadRef, loadTimeoutMs)
    // One that ran long on this thread (in CPU and wall time) counts against its key as a stretch does.
    const cpu1 = host.cpuNs()
    if (cpu0 !== null && cpu1 !== null) this.topLevelCpuMs = Number(cpu1 - cpu0) / 1e6
    const slice = onThread?.sliceMs ?? Number.POSITIVE_INFINITY
    if (this.topLevelCpuMs > slice && performance.now() - wall0 > slice) onThread?.ranLong()
    if (typeof result !== 'string' || result[0] !== 'O') {
      throw new IsolateFailure('SBX_ERR_BUNDLE_INVALID', {
        id: bundle.id,
        version: bundle.version,
        reason: describeLoadFailure(result),
      })
    }
    this.entries = JSON.parse(result.slice(1))
    // The first context to run a bundle in this worker leaves V8's code cache for the others,
    // made after its top level so that it holds what the top level compiled too (compiled once more, the
    // script comes from V8's compilation cache of this isolate, functions and all): a context
    // made from it runs the top level in half the time.
    // Made on one of isolated-vm's threads while this one answers: whoever needs the isolate
    // meanwhile waits for it at most that long; a context made before it is ready compiles fully.
    if (!bundle.cachedData)
      isolate.compileScript(code, { filename, produceCachedData: true }).then(
        (again) => {
          bundle.cachedData ??= /** @type {CompiledScript} */ (again).cachedData
          again.release()
        },
        () => {},
      )
  }

  /**
   * Hands this context and its isolate over, as its bundle's probe kept for the first new
   * tenant of the bundle (spare-isolates.mjs); this object lets go of both without releasing them.
   * @returns {Spare & { loaded: LoadedContext }}
   */
  handOver() {
    const booted = /** @type {BootedContext} */ (this.booted)
    booted.hostCalls.target = null
    this.disposed = true
    this.host.members.delete(this)
    this.host.dispose(() => {})
    const loaded = { bundleKey: this.bundle.key, booted, entries: this.entries, cpuMs: this.topLevelCpuMs }
    return { isolate: this.host.isolate, booted: undefined, loaded }
  }

  /** @returns {bigint | null} the CPU time of the tenant's isolate so far, null once it is gone */
  cpuNs() {
    return this.host.cpuNs()
  }

  dispose() {
    if (this.disposed) return
    this.disposed = true
    this.host.members.delete(this)
    // Nothing may keep the context alive once its handles go: the heap it held is reclaimed.
    if (this.booted) releaseBooted(this.booted)
    this.context = null
  }
}

/**
 * Runs the bundle's top level on one of isolated-vm's threads, leaving this thread free.
 * @param {import('isolated-vm').Script} script
 * @param {import('isolated-vm').Context} context
 * @param {FunctionRef} loadRef
 * @param {number} timeoutMs
 */
async function topLevelOnPool(script, context, loadRef, timeoutMs) {
  const factory = await script.run(context, { reference: true, timeout: timeoutMs })
  return loadRef.apply(undefined, [factory.derefInto()], { timeout: timeoutMs, result: { copy: true } })
}

/**
 * Runs the bundle's top level on this thread, as a stretch runs (stretches.mjs): each step under
 * the time limit, the CPU watchdog's thread watching it, blocking the event loop for at most
 * that long.
 * @param {import('isolated-vm').Script} script
 * @param {import('isolated-vm').Context} context
 * @param {FunctionRef} loadRef
 * @param {number} timeoutMs
 * @param {CpuWatchdog | undefined} watchdog
 * @param {number} rid
 * @param {number} deadline a Date.now() value
 */
function topLevelOnThread(script, context, loadRef, timeoutMs, watchdog, rid, deadline) {
  try {
    watchdog?.enterSync(rid, timeoutMs, deadline)
    const factory = script.runSync(context, { reference: true, timeout: timeoutMs })
    watchdog?.enterSync(rid, timeoutMs, deadline)
    return loadRef.applySync(undefined, [factory.derefInto()], { timeout: timeoutMs, result: { copy: true } })
  } finally {
    watchdog?.leaveSync()
  }
}
