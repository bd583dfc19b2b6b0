// @ts-check
// One isolate holding one bundle for one tenant's installation. Its context lives as long as
// the isolate, so module-level state of the plugin survives between invocations of the same
// tenant, and never reaches another tenant (see docs/adr/0001-sandbox-isolation.md).
import { readFileSync } from 'node:fs'
import ivm from './isolated-vm.mjs'
import { BOOTSTRAP_FILENAME } from './stack-mapper.mjs'

/** @typedef {import('./worker-types.js').CompiledBundle} CompiledBundle */
/** @typedef {import('./cpu-watchdog.mjs').CpuWatchdog} CpuWatchdog */
/** @typedef {import('./invocation.mjs').Invocation} Invocation */
/** @typedef {import('isolated-vm').Reference<Function>} FunctionRef */
/** @typedef {import('isolated-vm').Script & { cachedData?: import('isolated-vm').ExternalCopy<ArrayBuffer> }} CompiledScript V8 gives back its code cache */
/** @typedef {Record<'invoke' | 'settle' | 'poll' | 'drain' | 'load', Function>} BootstrapApi what isolate-bootstrap.js returns */

const BOOTSTRAP_SOURCE = readFileSync(new URL('./isolate-bootstrap.js', import.meta.url), 'utf8')
// V8's code cache for the bootstrap, produced by the first isolate of this process.
/** @type {import('isolated-vm').ExternalCopy<ArrayBuffer> | undefined} */
let bootstrapCache

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
   * @param {string} key
   * @param {CompiledBundle} bundle
   * @param {number} memoryMb
   */
  constructor(key, bundle, memoryMb) {
    this.key = key
    this.bundle = bundle
    this.memoryMb = memoryMb
    /** @type {import('isolated-vm').Isolate | null} */
    this.isolate = null
    this.busy = false
    this.disposed = false
    /** Dispose once the invocation running here ends (its bundle was unloaded meanwhile). */
    this.disposeOnRelease = false
    this.lastUsed = Date.now()
    /** Total heap, external included (for the pool's budget). */
    this.heapBytes = 0
    /** Used heap at the last sample, and when it was taken (performance.now()). */
    this.heapUsed = 0
    /** @type {number | undefined} */
    this.heapAt = undefined
    /** @type {Invocation | null} The invocation currently running here (one at a time, so CPU time is attributable). */
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
  }

  /**
   * Creates the isolate, runs the bootstrap and the bundle; throws IsolateFailure. `watchdog`
   * (with the request id to blame) watches the bundle's top level, which runs asynchronously.
   */
  /**
   * @param {number} loadTimeoutMs
   * @param {CpuWatchdog | undefined} watchdog
   * @param {number} [rid]
   */
  async init(loadTimeoutMs, watchdog, rid = 0) {
    let watching = 0
    const isolate = new ivm.Isolate({
      memoryLimit: this.memoryMb,
      // isolated-vm's advice: a catastrophic error leaves the process unrecoverable. Exiting
      // lets the parent fail what this worker held and start a replacement.
      onCatastrophicError: () => process.exit(70),
    })
    this.isolate = isolate
    try {
      // each of the steps below has the time limit; together they may use a few of it
      if (watchdog) watching = watchdog.watch(rid, () => this.cpuNs(), loadTimeoutMs * 4)
      const context = isolate.createContextSync()
      /** @type {CompiledScript} */
      const boot = isolate.compileScriptSync(
        BOOTSTRAP_SOURCE,
        bootstrapCache
          ? { filename: BOOTSTRAP_FILENAME, cachedData: bootstrapCache }
          : { filename: BOOTSTRAP_FILENAME, produceCachedData: true },
      )
      if (!bootstrapCache && boot.cachedData) bootstrapCache = boot.cachedData
      const bootFn = boot.runSync(context, { reference: true, timeout: loadTimeoutMs })
      const api = /** @type {import('isolated-vm').Reference<BootstrapApi>} */ (
        bootFn.applySync(
          undefined,
          [
            new ivm.Callback(
              /** @type {(token: unknown, cid: unknown, op: unknown, args: unknown) => void} */
              (token, cid, op, args) => this.current?.onHostCall(token, cid, op, args),
              { ignored: true },
            ),
          ],
          { result: { reference: true }, timeout: loadTimeoutMs },
        )
      )
      this.invokeRef = api.getSync('invoke', { reference: true })
      this.settleRef = api.getSync('settle', { reference: true })
      this.pollRef = api.getSync('poll', { reference: true })
      this.drainRef = api.getSync('drain', { reference: true })
      const loadRef = api.getSync('load', { reference: true })
      const script = await isolate.compileScript(this.bundle.code, {
        filename: this.bundle.filename,
        cachedData: this.bundle.cachedData,
      })
      // Plugin code runs from here on: asynchronously, so a hostile top level cannot block
      // this process's event loop while it burns its time limit.
      const factory = await script.run(context, { reference: true, timeout: loadTimeoutMs })
      const result = await loadRef.apply(undefined, [factory.derefInto()], {
        timeout: loadTimeoutMs,
        result: { copy: true },
      })
      if (typeof result !== 'string' || result[0] !== 'O') {
        throw new IsolateFailure('SBX_ERR_BUNDLE_INVALID', {
          id: this.bundle.id,
          version: this.bundle.version,
          reason: describeLoadFailure(result),
        })
      }
      this.entries = JSON.parse(result.slice(1))
      this.heapBytes = heapOf(isolate).total
    } catch (err) {
      const failure = err instanceof IsolateFailure ? err : classifyIsolateError(err, this, loadTimeoutMs, 'load')
      this.dispose()
      throw failure
    } finally {
      if (watching) watchdog?.unwatch(watching)
    }
  }

  /** @returns {bigint | null} the isolate's CPU time so far, null once it is gone */
  cpuNs() {
    try {
      return this.isolate ? this.isolate.cpuTime : null
    } catch {
      return null
    }
  }

  dispose() {
    if (this.disposed) return
    this.disposed = true
    try {
      this.isolate?.dispose()
    } catch {
      /* already gone */
    }
  }
}

/** @param {unknown} result */
function describeLoadFailure(result) {
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
 * @param {TenantIsolate} tenantIsolate
 * @param {number} cpuMs
 * @param {'load' | 'run'} [phase]
 */
export function classifyIsolateError(err, tenantIsolate, cpuMs, phase = 'run') {
  const message = clipText(ownString(err, 'message') ?? (typeof err === 'string' ? err : ''), 500)
  if (/memory limit/i.test(message)) return new IsolateFailure('SBX_ERR_MEMORY', { limitMb: tenantIsolate.memoryMb })
  if (/timed out/i.test(message)) return new IsolateFailure('SBX_ERR_TIMEOUT', { limit: 'cpu', limitMs: cpuMs })
  if (tenantIsolate.isolate?.isDisposed && !tenantIsolate.disposed)
    return new IsolateFailure('SBX_ERR_MEMORY', { limitMb: tenantIsolate.memoryMb })
  const name = clipText(ownString(err, 'name') ?? (err instanceof Error ? err.constructor.name : ''), 200) || 'Error'
  if (phase === 'load') {
    const { id, version } = tenantIsolate.bundle
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
