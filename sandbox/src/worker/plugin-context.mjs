// @ts-check
// One plugin of one tenant's installation: a V8 context of its own inside the tenant's isolate,
// holding the bootstrap and the bundle. Its globals live as long as the context, so module-level
// state of the plugin survives between invocations of the same installation; it never reaches
// another plugin's context (nothing but strings ever leaves one) nor another tenant, whose
// plugins live in other isolates (docs/adr/0080-one-isolate-per-tenant.md).
import { bootContext } from './context-bootstrap.mjs'
import { classifyIsolateError, describeLoadFailure, heapOf, IsolateFailure } from './tenant-isolate.mjs'

/** @typedef {import('./worker-types.js').CompiledBundle} CompiledBundle */
/** @typedef {import('./cpu-watchdog.mjs').CpuWatchdog} CpuWatchdog */
/** @typedef {import('./invocation.mjs').Invocation} Invocation */
/** @typedef {import('./tenant-isolate.mjs').TenantIsolate} TenantIsolate */
/** @typedef {import('isolated-vm').Reference<Function>} FunctionRef */
/** @typedef {import('isolated-vm').Script & { cachedData?: import('isolated-vm').ExternalCopy<ArrayBuffer> }} CompiledScript V8 gives back its code cache */

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
    /** @type {Record<string, string[]>} what the bundle exports, by entry kind */
    this.entries = {}
    host.members.add(this)
  }

  get memoryMb() {
    return this.host.memoryMb
  }

  /**
   * Creates the context, runs the bootstrap and the bundle; throws IsolateFailure. `watchdog`
   * (with the request id to blame) watches the bundle's top level, which runs asynchronously.
   * Holds the isolate's lock meanwhile: nothing else runs in it.
   * @param {number} loadTimeoutMs
   * @param {CpuWatchdog | undefined} watchdog
   * @param {number} [rid]
   */
  async init(loadTimeoutMs, watchdog, rid = 0) {
    const host = this.host
    await host.locked()
    let watching = 0
    try {
      if (host.disposed) throw new IsolateFailure('SBX_ERR_MEMORY', { limitMb: host.memoryMb })
      const isolate = host.isolate
      // each of the steps below has the time limit; together they may use a few of it
      if (watchdog) watching = watchdog.watch(rid, () => host.cpuNs(), loadTimeoutMs * 4)
      // A context booted ahead of need in a spare isolate (nothing ran in it but the bootstrap),
      // else one booted now.
      const booted = host.takeBooted() ?? bootContext(isolate, loadTimeoutMs)
      booted.hostCalls.target = this
      const context = booted.context
      this.context = context
      this.invokeRef = booted.invokeRef
      this.settleRef = booted.settleRef
      this.pollRef = booted.pollRef
      this.drainRef = booted.drainRef
      const loadRef = booted.loadRef
      const bundle = this.bundle
      // The first context to compile a bundle in this worker leaves V8's code cache for the others;
      // from the cache (no plugin code runs while compiling) this thread does it faster than a
      // trip to isolated-vm's threads and back.
      /** @type {CompiledScript} */
      const script = bundle.cachedData
        ? isolate.compileScriptSync(bundle.code, { filename: bundle.filename, cachedData: bundle.cachedData })
        : await isolate.compileScript(bundle.code, { filename: bundle.filename, produceCachedData: true })
      if (!bundle.cachedData && script.cachedData) bundle.cachedData = script.cachedData
      // Plugin code runs from here on: asynchronously, so a hostile top level cannot block
      // this process's event loop while it burns its time limit.
      const factory = await script.run(context, { reference: true, timeout: loadTimeoutMs })
      const result = await loadRef.apply(undefined, [factory.derefInto()], {
        timeout: loadTimeoutMs,
        result: { copy: true },
      })
      if (typeof result !== 'string' || result[0] !== 'O') {
        throw new IsolateFailure('SBX_ERR_BUNDLE_INVALID', {
          id: bundle.id,
          version: bundle.version,
          reason: describeLoadFailure(result),
        })
      }
      this.entries = JSON.parse(result.slice(1))
      // (an isolate already in the pool's sum is re-measured by the invocation's metrics)
      if (!host.counted) host.heapBytes = heapOf(isolate).total
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

  /** @returns {bigint | null} the CPU time of the tenant's isolate so far, null once it is gone */
  cpuNs() {
    return this.host.cpuNs()
  }

  dispose() {
    if (this.disposed) return
    this.disposed = true
    this.host.members.delete(this)
    // Nothing may keep the context alive once its handles go: the heap it held is reclaimed.
    for (const handle of [this.invokeRef, this.settleRef, this.pollRef, this.drainRef, this.context]) {
      try {
        handle?.release()
      } catch {
        /* its isolate is gone */
      }
    }
    this.context = null
  }
}
