// @ts-check
// One invocation inside a worker: takes a context in its tenant's isolate, starts the entry,
// enforces the limits the isolate cannot enforce itself, and reports exactly once. Its stretches
// of plugin code run through stretches.mjs, its host calls go through host-call-relay.mjs.
import { Buffer } from 'node:buffer'
import { performance } from 'node:perf_hooks'
import { classifyIsolateError, heapOf, IsolateFailure } from './tenant-isolate.mjs'
import { PluginContext } from './plugin-context.mjs'
import { LogCollector } from './log-collector.mjs'
import { describeFailure } from './failure.mjs'
import { onHostCall, onHostResult, onHostResults } from './host-call-relay.mjs'
import { endTurn, enterStretch } from './stretches.mjs'
import { Deadlines } from '../deadlines.mjs'

/** @typedef {import('../protocol.js').InvokeMessage} InvokeMessage */
/** @typedef {import('../protocol.js').HostCallResult} HostCallResult */
/** @typedef {import('../protocol.js').WireError} WireError */
/** @typedef {import('../protocol.js').WorkerMetrics} WorkerMetrics */
/** @typedef {import('../limits.js').SandboxLimits} SandboxLimits */
/** @typedef {import('./worker-types.js').WorkerState} WorkerState */
/** @typedef {import('./worker-types.js').CompiledBundle} CompiledBundle */
/** @typedef {import('./fair-scheduler.mjs').Turn} Turn */
/** @typedef {{ code: string, details: Record<string, unknown> }} SandboxFailure */

let nextToken = 1
/** @type {ReadonlyMap<number, WireError>} */
const NO_ERROR_REFS = new Map()
// The invocations' wall-clock deadlines, on one timer for the whole worker.
const deadlines = new Deadlines()

export class Invocation {
  /**
   * @param {WorkerState} worker
   * @param {InvokeMessage} msg
   */
  constructor(worker, msg) {
    this.worker = worker
    this.rid = msg.rid
    this.invocationId = msg.invocationId
    this.tenantId = msg.tenantId
    this.bundleKey = msg.bundleKey
    this.isoKey = msg.isoKey
    this.entry = msg.entry
    this.input = msg.input
    this.context = msg.context
    // CPU time cannot exceed the wall deadline; clamping keeps a synchronous run (which blocks
    // this worker's event loop) inside the time the parent waits before declaring us hung. (The
    // message was parsed for this invocation alone: its limits are ours to clamp.)
    /** @type {SandboxLimits} */
    this.limits = msg.limits
    if (this.limits.cpuMs > this.limits.wallMs) this.limits.cpuMs = this.limits.wallMs
    this.remainingMs = msg.remainingMs
    // Tokens are never reused, so a host object kept by plugin code from an earlier
    // invocation cannot act within a later one.
    this.token = nextToken++
    /** @type {PluginContext | null} */
    this.iso = null
    /** @type {CompiledBundle | undefined} */
    this.bundle = undefined
    this.cold = false
    this.done = false
    /** CPU time of this invocation's stretches so far (ns): the isolate's clock is shared by the
     * tenant's plugins, but runs one stretch at a time. */
    this.cpuNs = 0
    this.hostCalls = 0
    /** @type {Array<{ cid: number, op: string, args: string }>} host calls of the running stretch, not sent yet */
    this.outgoing = []
    /** @type {unknown[]} host-call outcomes (cid, ok, payload) waiting for plugin code's next stretch */
    this.incoming = []
    /** @type {SandboxFailure | null} */
    this.breach = null
    /** @type {Map<number, WireError> | null} what each host error handed to plugin code stands for (made on the first) */
    this.errorRefs = null
    /** @type {LogCollector | null} made when the plugin logged something */
    this.logs = null
    this.logsTaken = false
    this.waiter = { cancelled: false }
    this.sync = !worker.isSlow(msg.isoKey) && this.limits.cpuMs <= worker.syncMaxCpuMs
    /** @type {Turn | null} the scheduler's turn while a stretch of plugin code runs */
    this.turn = null
    this.watching = 0
    this.deadline = 0
    /** @type {import('../deadlines.mjs').Deadline | undefined} */
    this.timer = undefined
  }

  /**
   * Starts the invocation: at once in a free context when its bundle is compiled (a warm call),
   * else once the bundle has loaded and a context is free or made.
   * @returns {Promise<void> | undefined}
   */
  start() {
    this.deadline = Date.now() + this.remainingMs
    this.timer = deadlines.add(this.remainingMs, () => this.onDeadline())
    const bundle = this.worker.compiled.get(this.bundleKey)
    const free = bundle && this.worker.pool.takeIdle(this.isoKey)
    if (!free) return this.startCold()
    this.bundle = bundle
    this.begin(free, false)
  }

  async startCold() {
    /** @type {CompiledBundle | undefined} */
    let bundle
    try {
      bundle = await this.worker.bundles.get(this.bundleKey)
    } catch {
      bundle = undefined
    }
    if (this.done) return
    if (!bundle) return this.fail({ code: 'SBX_ERR_BUNDLE_NOT_LOADED', details: bundleIdentity(this.bundleKey) })
    this.bundle = bundle
    let acquired
    try {
      acquired = await this.worker.pool.acquire(
        this.isoKey,
        async () => {
          const pool = this.worker.pool
          // A tenant's plugins share one isolate per memory limit (ADR 0080); the limit is fixed
          // when the isolate is made.
          const host = pool.isolateFor(
            JSON.stringify([this.tenantId, this.limits.memoryMb]),
            this.limits.memoryMb,
            this.bundleKey,
          )
          const ctx = new PluginContext(this.isoKey, bundle, host)
          try {
            // (the top level on this thread when the invocation's stretches run there)
            const onThread = this.sync
              ? {
                  deadline: this.deadline,
                  sliceMs: this.worker.syncSliceMs,
                  ranLong: () => this.worker.ranLong(this.isoKey),
                }
              : undefined
            await ctx.init(this.limits.cpuMs, this.worker.watchdog, this.rid, onThread)
          } catch (err) {
            if (host.isolate.isDisposed) pool.discardIsolate(host, (c) => c.current?.isolateLost())
            else pool.forgetIsolateIfEmpty(host)
            throw err
          }
          return ctx
        },
        this.waiter,
      )
    } catch (err) {
      if (this.done) return
      const f =
        err instanceof IsolateFailure
          ? err
          : new IsolateFailure('SBX_ERR_WORKER_LOST', { reason: 'isolate could not be created' })
      return this.fail({ code: f.code, details: f.details })
    }
    if (this.done) {
      this.worker.pool.release(acquired.iso)
      return
    }
    this.begin(acquired.iso, acquired.cold)
  }

  /**
   * Runs the entry in `iso`, taken for this invocation.
   * @param {PluginContext} iso
   * @param {boolean} cold
   */
  begin(iso, cold) {
    this.iso = iso
    this.cold = cold
    iso.current = this
    const e = this.entry
    // The entry starts the plugin's promise and returns; its result is collected with `poll`.
    const l = this.limits
    const args = [
      this.token,
      e.kind,
      e.name,
      this.input,
      this.context,
      l.maxHostCalls,
      l.maxInputBytes,
      l.maxOutputBytes,
      l.maxLogLines,
      l.maxLogBytes,
    ]
    enterStretch(this, () => (this.done ? undefined : { ref: iso.invokeRef, args, timeoutMs: this.limits.cpuMs }))
  }

  cpuUsedMs() {
    return this.cpuNs / 1e6
  }

  /**
   * A host call from plugin code (see host-call-relay.mjs).
   * @param {unknown} token
   * @param {unknown} cid
   * @param {unknown} op
   * @param {unknown} args
   */
  onHostCall(token, cid, op, args) {
    onHostCall(this, token, cid, op, args)
  }

  /**
   * A host-call outcome from the parent.
   * @param {HostCallResult} msg
   */
  onHostResult(msg) {
    onHostResult(this, msg)
  }

  /**
   * The outcomes of host calls that left together.
   * @param {import('../protocol.js').HostCallOutcome[]} results
   */
  onHostResults(results) {
    onHostResults(this, results)
  }

  /** Its tenant's isolate ran out of memory in another invocation: its context is gone too. */
  isolateLost() {
    if (this.done) return
    this.fail({ code: 'SBX_ERR_MEMORY', details: { limitMb: this.limits.memoryMb } })
  }

  onDeadline() {
    if (this.done) return
    this.waiter.cancelled = true
    this.fail({ code: 'SBX_ERR_TIMEOUT', details: { limit: 'wall', limitMs: this.limits.wallMs } }, true)
  }

  /** After a timeout, keeps what the plugin logged before it was stopped (sync path only: the isolate is idle then). */
  drainLogs() {
    if (!this.sync || !this.iso || this.iso.disposed || this.logsTaken || !this.iso.host.idleFor(this)) return
    this.logsTaken = true
    try {
      const text = this.iso.drainRef.applySync(undefined, [this.token], { timeout: 20 })
      if (typeof text === 'string' && text !== '') this.takeLogs(text)
    } catch {
      // isolate unusable: the lines are lost
    }
  }

  /**
   * The isolate's composite result: its buffered logs, a newline, then 'O' + output JSON or
   * 'E' + error JSON (all of it text plugin code could shape).
   * @param {unknown} composite
   */
  onResult(composite) {
    if (this.done) return
    const nl = typeof composite === 'string' ? composite.indexOf('\n') : -1
    if (typeof composite !== 'string' || nl < 0)
      return this.fail({ code: 'SBX_ERR_OUTPUT_INVALID', details: { reason: 'no result' } })
    this.logsTaken = true
    this.takeLogs(composite.slice(0, nl))
    const result = composite.slice(nl + 1)
    if (this.breach) return this.fail(this.breach)
    if (result.length === 0) return this.fail({ code: 'SBX_ERR_OUTPUT_INVALID', details: { reason: 'no result' } })
    if (result[0] === 'O') {
      const json = result.slice(1)
      const max = this.limits.maxOutputBytes
      // (a UTF-16 unit is at most 3 bytes of UTF-8: short text needs no count)
      if (json.length > max || (json.length * 3 > max && Buffer.byteLength(json) > max)) {
        return this.fail({
          code: 'SBX_ERR_PAYLOAD_TOO_LARGE',
          details: { what: 'output', limitBytes: max },
        })
      }
      return this.succeed(json)
    }
    this.fail(describeFailure(result.slice(1), this.limits, this.errorRefs ?? NO_ERROR_REFS, this.bundle))
  }

  /**
   * The log lines the isolate buffered, as text ('[[],0]' when there are none).
   * @param {string} text
   */
  takeLogs(text) {
    if (text === '[[],0]') return
    ;(this.logs ??= new LogCollector(this.invocationId, this.limits)).take(text)
  }

  /** @param {unknown} err what isolated-vm threw or rejected with */
  onIsolateError(err) {
    if (this.done || !this.iso) return
    const f = classifyIsolateError(err, this.iso, this.limits.cpuMs)
    this.fail({ code: f.code, details: f.details }, true)
  }

  /**
   * @param {string} outcome
   * @returns {WorkerMetrics}
   */
  metrics(outcome) {
    const cpuMs = this.cpuUsedMs()
    const host = this.iso?.host
    const heap = host && !host.disposed ? host.heapUsed : 0
    return {
      cpuMs: Math.round(cpuMs * 1000) / 1000,
      heapUsedBytes: heap,
      hostCalls: this.hostCalls,
      outcome,
      coldStart: this.cold,
      workerPid: process.pid,
    }
  }

  /**
   * Heap statistics cost as much as running a small entry: sampled at most every 20 ms per
   * isolate, which is as fresh as an invocation's metrics need. The heap is the tenant's
   * isolate's, shared by its plugins.
   */
  sampleHeap() {
    const host = this.iso?.host
    if (!host || host.disposed || !host.idleFor(this)) return
    const now = performance.now()
    if (host.heapAt !== undefined && now - host.heapAt <= 20 && !this.cold) return
    // (the isolate's heap in the pool's budget is refreshed with it)
    const h = heapOf(host.isolate)
    host.heapUsed = h.used
    this.worker.pool.setHeap(host, h.total)
    host.heapAt = now
  }

  /** @param {string} json the output, measured */
  succeed(json) {
    this.done = true
    if (this.timer) deadlines.cancel(this.timer)
    // A warm call's answer carries the isolate's latest sample, refreshed once the answer is sent
    // (its heap changes only while plugin code runs in it); a cold one's, a fresh sample.
    const warm = !this.cold && this.iso?.host.heapAt !== undefined
    if (!warm) this.sampleHeap()
    this.worker.send({
      t: 'ok',
      rid: this.rid,
      output: json,
      metrics: this.metrics('ok'),
      logs: this.logs ? this.logs.finish() : [],
    })
    // What nobody waits for comes after the answer: the parent reads it meanwhile, and nothing
    // else runs on this thread before it is done.
    if (warm) this.sampleHeap()
    this.end(false)
  }

  /**
   * `poisoned`: the isolate was stopped mid-run (or may still be running) and is discarded.
   * @param {WireError} error
   */
  fail(error, poisoned = false) {
    this.done = true
    if (this.timer) deadlines.cancel(this.timer)
    const outcome = 'code' in error ? error.code : 'error'
    if (outcome !== 'SBX_ERR_MEMORY') this.drainLogs()
    if (outcome === 'SBX_ERR_TIMEOUT' || outcome === 'SBX_ERR_MEMORY') this.worker.markSlow(this.isoKey)
    this.sampleHeap()
    const metrics = this.metrics(outcome)
    // A memory failure leaves the tenant's isolate unusable (or over its limit); a timeout
    // stopped plugin code mid-way in this context only.
    this.end(outcome === 'SBX_ERR_MEMORY' ? 'isolate' : poisoned || outcome === 'SBX_ERR_TIMEOUT')
    this.worker.send({ t: 'err', rid: this.rid, error, metrics, logs: this.logs ? this.logs.finish() : [] })
  }

  /**
   * `discard`: the context is not reused; 'isolate': the tenant's whole isolate goes (its heap
   * ran out), failing the invocations running in its other contexts.
   * @param {boolean | 'isolate'} discard
   */
  end(discard) {
    endTurn(this)
    this.worker.inflight.delete(this.rid)
    // (a stretch still running on a pool thread stays watched until it returns)
    const iso = this.iso
    if (!iso) return
    iso.current = null
    const pool = this.worker.pool
    if (discard === 'isolate') pool.discardIsolate(iso.host, (c) => c.current?.isolateLost())
    else if (discard) pool.discard(iso)
    else pool.release(iso)
  }
}

/** @param {string} key */
function bundleIdentity(key) {
  const at = key.lastIndexOf('@')
  return { id: key.slice(0, at), version: key.slice(at + 1) }
}
