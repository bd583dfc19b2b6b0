// @ts-check
// One invocation inside a worker: takes an isolate, runs the entry, relays host calls and
// logs, enforces the limits the isolate cannot enforce itself, and reports exactly once. Each
// stretch of plugin code (the entry, then each continuation after a host-call result) runs
// when the worker's fair scheduler gives its tenant a turn.
import { Buffer } from 'node:buffer'
import { performance } from 'node:perf_hooks'
import { classifyIsolateError, heapOf, IsolateFailure } from './tenant-isolate.mjs'
import { PluginContext } from './plugin-context.mjs'
import { LogCollector } from './log-collector.mjs'
import { describeFailure } from './failure.mjs'

/** @typedef {import('../protocol.js').InvokeMessage} InvokeMessage */
/** @typedef {import('../protocol.js').HostCallResult} HostCallResult */
/** @typedef {import('../protocol.js').HostCallError} HostCallError */
/** @typedef {import('../protocol.js').WireError} WireError */
/** @typedef {import('../protocol.js').WorkerMetrics} WorkerMetrics */
/** @typedef {import('../limits.js').SandboxLimits} SandboxLimits */
/** @typedef {import('./worker-types.js').WorkerState} WorkerState */
/** @typedef {import('./worker-types.js').CompiledBundle} CompiledBundle */
/** @typedef {import('./fair-scheduler.mjs').Turn} Turn */
/** @typedef {{ code: string, details: Record<string, unknown> }} SandboxFailure */
/** @typedef {import('isolated-vm').Reference<Function>} FunctionRef */

let nextToken = 1

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
    // A tenant's plugins share one isolate per memory limit (ADR 0080); the limit is fixed when
    // the isolate is made.
    this.hostKey = JSON.stringify([msg.tenantId, msg.limits.memoryMb])
    this.entry = msg.entry
    this.input = msg.input
    this.context = msg.context
    // CPU time cannot exceed the wall deadline; clamping keeps a synchronous run (which blocks
    // this worker's event loop) inside the time the parent waits before declaring us hung.
    /** @type {SandboxLimits} */
    this.limits = { ...msg.limits, cpuMs: Math.min(msg.limits.cpuMs, msg.limits.wallMs) }
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
    /** @type {SandboxFailure | null} */
    this.breach = null
    /** @type {Map<number, WireError>} */
    this.errorRefs = new Map()
    this.logs = new LogCollector(this.invocationId, this.limits)
    this.logsTaken = false
    this.waiter = { cancelled: false }
    this.sync = !worker.isSlow(msg.isoKey) && this.limits.cpuMs <= worker.syncMaxCpuMs
    /** @type {Turn | null} the scheduler's turn while a stretch of plugin code runs */
    this.turn = null
    this.watching = 0
    this.deadline = 0
    /** @type {NodeJS.Timeout | undefined} */
    this.timer = undefined
  }

  async start() {
    this.deadline = Date.now() + this.remainingMs
    this.timer = setTimeout(() => this.onDeadline(), this.remainingMs)
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
          const host = pool.isolateFor(this.hostKey, this.limits.memoryMb)
          const ctx = new PluginContext(this.isoKey, bundle, host)
          try {
            await ctx.init(this.limits.cpuMs, this.worker.watchdog, this.rid)
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
    const iso = acquired.iso
    this.iso = iso
    this.cold = acquired.cold
    iso.current = this
    const e = this.entry
    // The entry starts the plugin's promise and returns; its result is collected with `poll`.
    const args = [this.token, e.kind, e.name, this.input, this.context, JSON.stringify(this.limits), false]
    this.enter(() => (this.done ? undefined : { ref: iso.invokeRef, args, timeoutMs: this.limits.cpuMs }))
  }

  /**
   * Runs one stretch of plugin code when the tenant's turn comes. `what` is asked then (the
   * CPU left may have changed while waiting); undefined means nothing is left to run.
   * @param {() => { ref: FunctionRef, args: unknown[], timeoutMs: number } | undefined} what
   */
  enter(what) {
    this.worker.scheduler.submit(this.tenantId, (turn) => {
      const host = this.iso?.host
      if (!host) return turn.end()
      // One stretch at a time in the tenant's isolate (only a stretch on a pool thread can be
      // running when another is granted).
      host.lock(() => {
        const run = this.done || !this.iso || this.iso.disposed || host.disposed ? undefined : what()
        if (!run) {
          host.unlock()
          return turn.end()
        }
        this.turn = turn
        if (this.sync) {
          this.enterSync(run.ref, run.args, run.timeoutMs)
          this.endTurn()
          host.unlock()
        } else this.enterAsync(run.ref, run.args, run.timeoutMs)
      }, this)
    })
  }

  endTurn() {
    const turn = this.turn
    this.turn = null
    turn?.end()
  }

  /**
   * Runs plugin code on this thread: about 80 µs cheaper per entry than handing the isolate to
   * a pool thread, at the price of blocking this worker's event loop for as long as the code
   * runs (bounded by the CPU limit). A key whose code runs long here (in CPU time) twice within
   * ten minutes, or fails, is sent to the asynchronous path from then on, so a hostile tenant can
   * stall a worker twice, not always.
   * @param {FunctionRef} ref
   * @param {unknown[]} args
   * @param {number} timeoutMs
   */
  enterSync(ref, args, timeoutMs) {
    const iso = /** @type {PluginContext} */ (this.iso)
    const cpu0 = iso.cpuNs()
    const wall0 = performance.now()
    const watchdog = this.worker.watchdog
    let result
    watchdog.enterSync(this.rid, timeoutMs, this.deadline)
    try {
      ref.applySync(undefined, args, { timeout: timeoutMs })
      result = iso.pollRef.applySync(undefined, [this.token])
    } catch (err) {
      watchdog.leaveSync()
      this.worker.markSlow(this.isoKey)
      this.countCpu(cpu0)
      return this.onIsolateError(err)
    }
    watchdog.leaveSync()
    // Long means both the isolate's CPU time and the wall clock: on a busy machine the OS may
    // pause this thread in the middle of a short run, and the isolate's clock also counts V8's
    // own tasks for it (GC, compilation) running on other threads meanwhile; neither says
    // anything about the code (and either sent keys to the slower path on a loaded machine).
    const ran = this.countCpu(cpu0)
    const slice = this.worker.syncSliceMs
    if (ran === null || (ran / 1e6 > slice && performance.now() - wall0 > slice)) this.worker.ranLong(this.isoKey)
    if (result !== undefined) this.onResult(result)
  }

  /**
   * Runs plugin code on one of isolated-vm's threads, leaving this thread free; the turn ends
   * when the stretch does (the call returns once the isolate has nothing left to run until the
   * next host-call result), so an invocation awaiting its host calls holds no slot.
   * @param {FunctionRef} ref
   * @param {unknown[]} args
   * @param {number} timeoutMs
   */
  enterAsync(ref, args, timeoutMs) {
    const iso = /** @type {PluginContext} */ (this.iso)
    const host = iso.host
    const cpu0 = iso.cpuNs()
    // Watched per stretch: the isolate's clock counts only this stretch while it holds the lock.
    const watchdog = this.worker.watchdog
    this.watching = watchdog.watch(this.rid, () => host.cpuNs(), timeoutMs)
    const done = () => {
      host.onPool = false
      if (this.watching) watchdog.unwatch(this.watching)
      this.watching = 0
      this.countCpu(cpu0)
      this.endTurn()
    }
    // Until it returns, this thread must not read the isolate: an invocation failed on its
    // deadline meanwhile (its stretch stuck in a builtin) would block here on its heap statistics,
    // and the watchdog's timer with it, until the parent gave up on the silent worker.
    host.onPool = true
    ref.apply(undefined, args, { timeout: timeoutMs }).then(
      () => {
        if (this.done) {
          done()
          return host.unlock()
        }
        let result
        try {
          result = iso.pollRef.applySync(undefined, [this.token])
        } catch (err) {
          done()
          host.unlock()
          return this.onIsolateError(err)
        }
        done()
        host.unlock()
        if (result !== undefined) this.onResult(result)
      },
      (err) => {
        done()
        host.unlock()
        this.onIsolateError(err)
      },
    )
  }

  /**
   * Adds the isolate's CPU time since `cpu0` to this invocation's; returns it (ns), or null when
   * the isolate is gone.
   * @param {bigint | null} cpu0
   */
  countCpu(cpu0) {
    const cpu1 = this.iso ? this.iso.cpuNs() : null
    if (cpu0 === null || cpu1 === null) return null
    const ran = Number(cpu1 - cpu0)
    this.cpuNs += ran
    return ran
  }

  cpuUsedMs() {
    return this.cpuNs / 1e6
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

  /**
   * A host call from plugin code (through the isolate's only callback: every argument is
   * whatever plugin code passed).
   * @param {unknown} token
   * @param {unknown} cid
   * @param {unknown} op
   * @param {unknown} args
   */
  onHostCall(token, cid, op, args) {
    if (this.done || token !== this.token) return
    if (cid === -1)
      return this.fail({ code: 'SBX_ERR_HOST_CALL_LIMIT', details: { limit: this.limits.maxHostCalls } }, true)
    if (
      typeof cid !== 'number' ||
      typeof op !== 'string' ||
      typeof args !== 'string' ||
      op.length === 0 ||
      op.length > 256
    )
      return
    this.hostCalls++
    if (this.hostCalls > this.limits.maxHostCalls) {
      const details = { limit: this.limits.maxHostCalls }
      this.breach = { code: 'SBX_ERR_HOST_CALL_LIMIT', details }
      return this.settleError(
        cid,
        { code: 'SBX_ERR_HOST_CALL_LIMIT', status: 429, message: 'host call limit reached' },
        { code: 'SBX_ERR_HOST_CALL_LIMIT', details },
      )
    }
    if (args.length > this.limits.maxInputBytes || Buffer.byteLength(args) > this.limits.maxInputBytes) {
      const details = { what: 'host-call args', limitBytes: this.limits.maxInputBytes }
      return this.settleError(
        cid,
        {
          code: 'SBX_ERR_PAYLOAD_TOO_LARGE',
          status: 413,
          message: `host-call args exceed ${details.limitBytes} bytes`,
        },
        { code: 'SBX_ERR_PAYLOAD_TOO_LARGE', details },
      )
    }
    // Calls made in one stretch of plugin code (a `Promise.all` of host calls) leave together,
    // in one message, once the stretch has returned. isolated-vm delivers each call of the
    // stretch as a task of its own, with microtasks run after each: the flush waits for the
    // event loop's next check phase, after all of them.
    this.outgoing.push({ cid, op, args })
    if (this.outgoing.length === 1) setImmediate(() => this.flushHostCalls())
  }

  flushHostCalls() {
    const calls = this.outgoing
    this.outgoing = []
    if (this.done || calls.length === 0) return
    const only = calls.length === 1 ? calls[0] : undefined
    if (only) this.worker.send({ t: 'hc', rid: this.rid, cid: only.cid, op: only.op, args: only.args })
    else this.worker.send({ t: 'hcb', rid: this.rid, calls })
  }

  /**
   * A host-call outcome from the parent.
   * @param {HostCallResult} msg
   */
  onHostResult(msg) {
    if (this.done) return
    if (msg.ok) return this.settle(msg.cid, true, typeof msg.value === 'string' ? msg.value : '')
    /** @type {Partial<HostCallError>} */
    const e = msg.error ?? {}
    this.settleError(
      msg.cid,
      {
        code: String(e.code ?? 'SBX_ERR_HOST_CALL_FAILED'),
        status: Number(e.status ?? 500),
        message: String(e.message ?? 'host call failed'),
      },
      { hostRef: msg.cid },
    )
  }

  /**
   * @param {number} cid
   * @param {HostCallError} error what plugin code sees
   * @param {WireError} origin what the parent learns if plugin code rethrows it
   */
  settleError(cid, error, origin) {
    this.errorRefs.set(cid, origin)
    this.settle(
      cid,
      false,
      JSON.stringify({ code: error.code, status: error.status, message: error.message, ref: cid }),
    )
  }

  /**
   * Delivers a host-call outcome to plugin code, which runs on from there.
   * @param {number} cid
   * @param {boolean} ok
   * @param {string} payload
   */
  settle(cid, ok, payload) {
    if (this.done || !this.iso) return
    const iso = this.iso
    this.enter(() => {
      const remaining = this.limits.cpuMs - this.cpuUsedMs()
      if (remaining <= 0) {
        this.fail({ code: 'SBX_ERR_TIMEOUT', details: { limit: 'cpu', limitMs: this.limits.cpuMs } }, true)
        return undefined
      }
      return { ref: iso.settleRef, args: [this.token, cid, ok, payload], timeoutMs: Math.max(1, Math.ceil(remaining)) }
    })
  }

  /** After a timeout, keeps what the plugin logged before it was stopped (sync path only: the isolate is idle then). */
  drainLogs() {
    if (!this.sync || !this.iso || this.iso.disposed || this.logsTaken || !this.iso.host.idleFor(this)) return
    this.logsTaken = true
    try {
      const text = this.iso.drainRef.applySync(undefined, [this.token], { timeout: 20 })
      if (typeof text === 'string' && text !== '') this.logs.take(text)
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
    this.logs.take(composite.slice(0, nl))
    const result = composite.slice(nl + 1)
    if (this.breach) return this.fail(this.breach)
    if (result.length === 0) return this.fail({ code: 'SBX_ERR_OUTPUT_INVALID', details: { reason: 'no result' } })
    if (result[0] === 'O') {
      const json = result.slice(1)
      if (json.length > this.limits.maxOutputBytes || Buffer.byteLength(json) > this.limits.maxOutputBytes) {
        return this.fail({
          code: 'SBX_ERR_PAYLOAD_TOO_LARGE',
          details: { what: 'output', limitBytes: this.limits.maxOutputBytes },
        })
      }
      return this.succeed(json)
    }
    this.fail(describeFailure(result.slice(1), this.limits, this.errorRefs, this.bundle))
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
    let heap = 0
    const host = this.iso?.host
    if (host && !host.disposed) {
      // Heap statistics cost as much as running a small entry: sampled at most every 20 ms
      // per isolate, which is as fresh as an invocation's metrics need. The heap is the
      // tenant's isolate's, shared by its plugins.
      const now = performance.now()
      if ((host.heapAt === undefined || now - host.heapAt > 20 || this.cold) && host.idleFor(this)) {
        const h = heapOf(host.isolate)
        host.heapUsed = h.used
        this.worker.pool.setHeap(host, h.total)
        host.heapAt = now
      }
      heap = host.heapUsed
    }
    return {
      cpuMs: Math.round(cpuMs * 1000) / 1000,
      heapUsedBytes: heap,
      hostCalls: this.hostCalls,
      outcome,
      coldStart: this.cold,
      workerPid: process.pid,
    }
  }

  /** @param {string} json the output, measured */
  succeed(json) {
    this.done = true
    clearTimeout(this.timer)
    const metrics = this.metrics('ok')
    this.end(false)
    this.worker.send({ t: 'ok', rid: this.rid, output: json, metrics, logs: this.logs.finish() })
  }

  /**
   * `poisoned`: the isolate was stopped mid-run (or may still be running) and is discarded.
   * @param {WireError} error
   */
  fail(error, poisoned = false) {
    this.done = true
    clearTimeout(this.timer)
    const outcome = 'code' in error ? error.code : 'error'
    if (outcome !== 'SBX_ERR_MEMORY') this.drainLogs()
    if (outcome === 'SBX_ERR_TIMEOUT' || outcome === 'SBX_ERR_MEMORY') this.worker.markSlow(this.isoKey)
    const metrics = this.metrics(outcome)
    // A memory failure leaves the tenant's isolate unusable (or over its limit); a timeout
    // stopped plugin code mid-way in this context only.
    this.end(outcome === 'SBX_ERR_MEMORY' ? 'isolate' : poisoned || outcome === 'SBX_ERR_TIMEOUT')
    this.worker.send({ t: 'err', rid: this.rid, error, metrics, logs: this.logs.finish() })
  }

  /**
   * `discard`: the context is not reused; 'isolate': the tenant's whole isolate goes (its heap
   * ran out), failing the invocations running in its other contexts.
   * @param {boolean | 'isolate'} discard
   */
  end(discard) {
    this.endTurn()
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
