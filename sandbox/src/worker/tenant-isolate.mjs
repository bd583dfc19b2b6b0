// One isolate holding one bundle for one tenant's installation. Its context lives as long as
// the isolate, so module-level state of the plugin survives between invocations of the same
// tenant, and never reaches another tenant (see docs/adr/0001-sandbox-isolation.md).
import { readFileSync } from 'node:fs'
import ivm from 'isolated-vm'
import { BOOTSTRAP_FILENAME } from './stack-mapper.mjs'

const BOOTSTRAP_SOURCE = readFileSync(new URL('./isolate-bootstrap.js', import.meta.url), 'utf8')
// V8's code cache for the bootstrap, produced by the first isolate of this process.
let bootstrapCache

export class IsolateFailure extends Error {
  constructor(code, details) {
    super(code)
    this.code = code
    this.details = details
  }
}

export class TenantIsolate {
  constructor(key, bundle, memoryMb) {
    this.key = key
    this.bundle = bundle
    this.memoryMb = memoryMb
    this.isolate = null
    this.busy = false
    this.disposed = false
    this.lastUsed = Date.now()
    this.heapBytes = 0
    /** The invocation currently running here (one at a time, so CPU time is attributable). */
    this.current = null
    this.invokeRef = null
    this.settleRef = null
  }

  /** Creates the isolate, runs the bootstrap and the bundle; throws IsolateFailure. */
  async init(loadTimeoutMs) {
    const isolate = new ivm.Isolate({
      memoryLimit: this.memoryMb,
      // isolated-vm's advice: a catastrophic error leaves the process unrecoverable. Exiting
      // lets the parent fail what this worker held and start a replacement.
      onCatastrophicError: () => process.exit(70),
    })
    this.isolate = isolate
    try {
      const context = isolate.createContextSync()
      const boot = isolate.compileScriptSync(BOOTSTRAP_SOURCE, bootstrapCache
        ? { filename: BOOTSTRAP_FILENAME, cachedData: bootstrapCache }
        : { filename: BOOTSTRAP_FILENAME, produceCachedData: true })
      if (!bootstrapCache && boot.cachedData) bootstrapCache = boot.cachedData
      const bootFn = boot.runSync(context, { reference: true, timeout: loadTimeoutMs })
      const api = bootFn.applySync(undefined, [
        new ivm.Callback((token, cid, op, args) => this.current?.onHostCall(token, cid, op, args), { ignored: true }),
      ], { result: { reference: true }, timeout: loadTimeoutMs })
      this.invokeRef = api.getSync('invoke', { reference: true })
      this.settleRef = api.getSync('settle', { reference: true })
      this.pollRef = api.getSync('poll', { reference: true })
      this.drainRef = api.getSync('drain', { reference: true })
      const loadRef = api.getSync('load', { reference: true })
      const script = await isolate.compileScript(this.bundle.code, { filename: this.bundle.filename, cachedData: this.bundle.cachedData })
      // Plugin code runs from here on: asynchronously, so a hostile top level cannot block
      // this process's event loop while it burns its time limit.
      const factory = await script.run(context, { reference: true, timeout: loadTimeoutMs })
      const result = await loadRef.apply(undefined, [factory.derefInto()], { timeout: loadTimeoutMs, result: { copy: true } })
      if (typeof result !== 'string' || result[0] !== 'O') {
        throw new IsolateFailure('SBX_ERR_BUNDLE_INVALID', { reason: describeLoadFailure(result) })
      }
      this.entries = JSON.parse(result.slice(1))
      this.heapBytes = heapOf(isolate).total
    } catch (err) {
      const failure = err instanceof IsolateFailure ? err : classifyIsolateError(err, this, loadTimeoutMs)
      this.dispose()
      throw failure
    }
  }

  cpuNs() {
    try { return this.isolate.cpuTime } catch { return null }
  }

  dispose() {
    if (this.disposed) return
    this.disposed = true
    try { this.isolate?.dispose() } catch { /* already gone */ }
  }
}

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

/** { used, total }: used heap for metrics; total (with external memory) for eviction budgets. */
export function heapOf(isolate) {
  try {
    const s = isolate.getHeapStatisticsSync()
    return { used: s.used_heap_size + s.externally_allocated_size, total: s.total_heap_size + s.externally_allocated_size }
  } catch {
    return { used: 0, total: 0 }
  }
}

/** Maps an error thrown by isolated-vm itself (not by plugin code) to a sandbox error code. */
export function classifyIsolateError(err, tenantIsolate, cpuMs) {
  const message = String(err?.message ?? err)
  if (/memory limit/i.test(message)) return new IsolateFailure('SBX_ERR_MEMORY', { limitMb: tenantIsolate.memoryMb })
  if (/timed out/i.test(message)) return new IsolateFailure('SBX_ERR_TIMEOUT', { limit: 'cpu', limitMs: cpuMs })
  if (tenantIsolate.isolate?.isDisposed && !tenantIsolate.disposed) return new IsolateFailure('SBX_ERR_MEMORY', { limitMb: tenantIsolate.memoryMb })
  if (err instanceof SyntaxError || /SyntaxError/.test(message)) return new IsolateFailure('SBX_ERR_BUNDLE_INVALID', { reason: message.slice(0, 500) })
  return new IsolateFailure('SBX_ERR_PLUGIN_ERROR', { message: `isolate failed: ${message.slice(0, 500)}`, name: 'Error', stack: '' })
}
