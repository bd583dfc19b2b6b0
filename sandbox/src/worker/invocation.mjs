// One invocation inside a worker: takes an isolate, runs the entry, relays host calls and
// logs, enforces the limits the isolate cannot enforce itself, and reports exactly once.
import { Buffer } from 'node:buffer'
import { performance } from 'node:perf_hooks'
import { parseUntrustedJson } from '../safe-json.mjs'
import { classifyIsolateError, heapOf, IsolateFailure, TenantIsolate } from './tenant-isolate.mjs'
import { mapPluginStack } from './stack-mapper.mjs'

const LEVELS = new Set(['debug', 'info', 'warn', 'error'])
let nextToken = 1

export class Invocation {
  constructor(worker, msg) {
    this.worker = worker
    this.rid = msg.rid
    this.invocationId = msg.invocationId
    this.bundleKey = msg.bundleKey
    this.isoKey = msg.isoKey
    this.entry = msg.entry
    this.input = msg.input
    this.context = msg.context
    // CPU time cannot exceed the wall deadline; clamping keeps a synchronous run (which blocks
    // this worker's event loop) inside the time the parent waits before declaring us hung.
    this.limits = { ...msg.limits, cpuMs: Math.min(msg.limits.cpuMs, msg.limits.wallMs) }
    this.remainingMs = msg.remainingMs
    // Tokens are never reused, so a host object kept by plugin code from an earlier
    // invocation cannot act within a later one.
    this.token = nextToken++
    this.iso = null
    this.cold = false
    this.done = false
    this.startCpu = 0n
    this.hostCalls = 0
    this.breach = null
    this.errorRefs = new Map()
    this.logs = []
    this.logBytes = 0
    this.logsTruncated = false
    this.waiter = { cancelled: false }
    this.sync = !worker.isSlow(msg.isoKey) && this.limits.cpuMs <= worker.syncMaxCpuMs
  }

  async start() {
    this.deadline = Date.now() + this.remainingMs
    this.timer = setTimeout(() => this.onDeadline(), this.remainingMs)
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
          const iso = new TenantIsolate(this.isoKey, bundle, this.limits.memoryMb)
          await iso.init(this.limits.cpuMs, this.worker.watchdog, this.rid)
          return iso
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
    this.iso = acquired.iso
    this.cold = acquired.cold
    this.iso.current = this
    this.startCpu = this.iso.cpuNs()
    const e = this.entry
    const args = [this.token, e.kind, e.name, this.input, this.context, JSON.stringify(this.limits), !this.sync]
    if (this.sync) {
      this.enterSync(this.iso.invokeRef, args, this.limits.cpuMs)
      return
    }
    this.watching = this.worker.watchdog.watch(this.rid, () => this.iso.cpuNs(), this.limits.cpuMs)
    this.iso.invokeRef
      .apply(undefined, args, { timeout: this.limits.cpuMs, result: { promise: true, copy: true } })
      .then(
        (r) => this.onResult(r),
        (err) => this.onIsolateError(err),
      )
  }

  /**
   * Runs plugin code on this thread: about 80 µs cheaper per entry than handing the isolate to
   * a pool thread, at the price of blocking this worker's event loop for as long as the code
   * runs (bounded by the CPU limit). A key whose code once runs long here is sent to the
   * asynchronous path from then on, so a hostile tenant can stall a worker once, not always.
   */
  enterSync(ref, args, timeoutMs) {
    const t0 = performance.now()
    const watchdog = this.worker.watchdog
    let result
    watchdog.enterSync(this.rid, timeoutMs, this.deadline)
    try {
      ref.applySync(undefined, args, { timeout: timeoutMs })
      result = this.iso.pollRef.applySync(undefined, [this.token])
    } catch (err) {
      watchdog.leaveSync()
      this.worker.markSlow(this.isoKey)
      return this.onIsolateError(err)
    }
    watchdog.leaveSync()
    if (performance.now() - t0 > this.worker.syncSliceMs) this.worker.markSlow(this.isoKey)
    if (result !== undefined) this.onResult(result)
  }

  cpuUsedMs() {
    const now = this.iso && !this.iso.disposed ? this.iso.cpuNs() : null
    return now === null || this.startCpu === null ? 0 : Number(now - this.startCpu) / 1e6
  }

  onDeadline() {
    if (this.done) return
    this.waiter.cancelled = true
    this.fail({ code: 'SBX_ERR_TIMEOUT', details: { limit: 'wall', limitMs: this.limits.wallMs } }, true)
  }

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
    this.worker.send({ t: 'hc', rid: this.rid, cid, op, args })
  }

  /** A host-call outcome from the parent: { ok, value } or { ok: false, error: {code,status,message} }. */
  onHostResult(msg) {
    if (this.done) return
    if (msg.ok) return this.settle(msg.cid, true, typeof msg.value === 'string' ? msg.value : '')
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

  settleError(cid, error, origin) {
    this.errorRefs.set(cid, origin)
    this.settle(
      cid,
      false,
      JSON.stringify({ code: error.code, status: error.status, message: error.message, ref: cid }),
    )
  }

  settle(cid, ok, payload) {
    if (this.done || !this.iso) return
    const remaining = this.limits.cpuMs - this.cpuUsedMs()
    if (remaining <= 0)
      return this.fail({ code: 'SBX_ERR_TIMEOUT', details: { limit: 'cpu', limitMs: this.limits.cpuMs } }, true)
    if (this.sync)
      return this.enterSync(this.iso.settleRef, [this.token, cid, ok, payload], Math.max(1, Math.ceil(remaining)))
    this.iso.settleRef
      .apply(undefined, [this.token, cid, ok, payload], { timeout: Math.max(1, Math.ceil(remaining)) })
      .catch((err) => this.onIsolateError(err))
  }

  /** Takes the log lines the isolate buffered: '[[[level, message, fieldsJson, time], ...], dropped]'. */
  takeLogs(text) {
    let parsed
    try {
      parsed = JSON.parse(text)
    } catch {
      return
    }
    if (!Array.isArray(parsed) || !Array.isArray(parsed[0])) return
    if (parsed[1] !== 0) this.logsTruncated = true
    for (const entry of parsed[0]) {
      if (!Array.isArray(entry)) continue
      const [level, message, fields, time] = entry
      if (typeof message !== 'string' || typeof fields !== 'string') continue
      // The isolate limits lines too, but its counters live where plugin code runs.
      const size = Buffer.byteLength(message) + fields.length
      if (this.logs.length >= this.limits.maxLogLines || this.logBytes + size > this.limits.maxLogBytes) {
        this.logsTruncated = true
        return
      }
      this.logBytes += size
      const at = typeof time === 'number' && Number.isFinite(time) ? new Date(time) : new Date()
      const line = {
        invocationId: this.invocationId,
        level: LEVELS.has(level) ? level : 'info',
        message,
        time: (Number.isNaN(at.getTime()) ? new Date() : at).toISOString(),
      }
      if (fields !== '') {
        try {
          const value = parseUntrustedJson(fields)
          line.fields = value !== null && typeof value === 'object' && !Array.isArray(value) ? value : { value }
        } catch {
          // unparseable fields are dropped, the line is kept
        }
      }
      this.logs.push(line)
    }
  }

  /** After a timeout, keeps what the plugin logged before it was stopped (sync path only: the isolate is idle then). */
  drainLogs() {
    if (!this.sync || !this.iso || this.iso.disposed || this.logsTaken) return
    this.logsTaken = true
    try {
      const text = this.iso.drainRef.applySync(undefined, [this.token], { timeout: 20 })
      if (typeof text === 'string' && text !== '') this.takeLogs(text)
    } catch {
      // isolate unusable: the lines are lost
    }
  }

  onResult(composite) {
    if (this.done) return
    const nl = typeof composite === 'string' ? composite.indexOf('\n') : -1
    if (nl < 0) return this.fail({ code: 'SBX_ERR_OUTPUT_INVALID', details: { reason: 'no result' } })
    this.logsTaken = true
    this.takeLogs(composite.slice(0, nl))
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
    let d
    try {
      d = JSON.parse(result.slice(1))
    } catch {
      d = {}
    }
    switch (d?.kind) {
      case 'host': {
        if (d.ref === -1)
          return this.fail({
            code: 'SBX_ERR_PAYLOAD_TOO_LARGE',
            details: { what: 'host-call args', limitBytes: this.limits.maxInputBytes },
          })
        const origin = this.errorRefs.get(d.ref)
        if (origin) return this.fail(origin)
        break
      }
      case 'output':
        return this.fail({
          code: 'SBX_ERR_OUTPUT_INVALID',
          details: { reason: str(d.message, 500) || 'not serialisable' },
        })
      case 'output-size':
        return this.fail({
          code: 'SBX_ERR_PAYLOAD_TOO_LARGE',
          details: { what: 'output', limitBytes: this.limits.maxOutputBytes },
        })
      case 'host-call-limit':
        return this.fail({ code: 'SBX_ERR_HOST_CALL_LIMIT', details: { limit: this.limits.maxHostCalls } })
    }
    const details = {
      message: str(d?.message, 8192) || 'plugin error',
      name: str(d?.name, 200) || 'Error',
      stack: mapPluginStack(d?.stack, this.bundle),
    }
    if (str(d?.code, 200)) details.pluginCode = d.code
    if (typeof d?.status === 'number' && d.status >= 400 && d.status <= 599) details.pluginStatus = d.status
    this.fail({ code: 'SBX_ERR_PLUGIN_ERROR', details })
  }

  onIsolateError(err) {
    if (this.done) return
    const f = classifyIsolateError(err, this.iso, this.limits.cpuMs)
    this.fail({ code: f.code, details: f.details }, true)
  }

  metrics(outcome) {
    const cpuMs = this.cpuUsedMs()
    let heap = 0
    if (this.iso && !this.iso.disposed) {
      // Heap statistics cost as much as running a small entry: sampled at most every 20 ms
      // per isolate, which is as fresh as an invocation's metrics need.
      const now = performance.now()
      if (this.iso.heapAt === undefined || now - this.iso.heapAt > 20 || this.cold) {
        const h = heapOf(this.iso.isolate)
        this.iso.heapUsed = h.used
        this.worker.pool.setHeap(this.iso, h.total)
        this.iso.heapAt = now
      }
      heap = this.iso.heapUsed
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

  finishLogs() {
    if (this.logsTruncated) {
      this.logs.push({
        invocationId: this.invocationId,
        level: 'warn',
        message: 'log limit reached; later lines of this invocation were dropped',
        time: new Date().toISOString(),
      })
    }
    return this.logs
  }

  succeed(json) {
    this.done = true
    clearTimeout(this.timer)
    const metrics = this.metrics('ok')
    this.end(false)
    this.worker.send({ t: 'ok', rid: this.rid, output: json, metrics, logs: this.finishLogs() })
  }

  /** `poisoned`: the isolate was stopped mid-run (or may still be running) and is discarded. */
  fail(error, poisoned = false) {
    this.done = true
    clearTimeout(this.timer)
    const outcome = error.code ?? 'error'
    if (error.code !== 'SBX_ERR_MEMORY') this.drainLogs()
    if (error.code === 'SBX_ERR_TIMEOUT' || error.code === 'SBX_ERR_MEMORY') this.worker.markSlow(this.isoKey)
    const metrics = this.metrics(outcome)
    this.end(poisoned || error.code === 'SBX_ERR_MEMORY' || error.code === 'SBX_ERR_TIMEOUT')
    this.worker.send({ t: 'err', rid: this.rid, error, metrics, logs: this.finishLogs() })
  }

  end(discard) {
    this.worker.inflight.delete(this.rid)
    if (this.watching) this.worker.watchdog.unwatch(this.watching)
    const iso = this.iso
    if (!iso) return
    iso.current = null
    if (discard) this.worker.pool.discard(iso)
    else this.worker.pool.release(iso)
  }
}

function str(v, max) {
  return typeof v === 'string' ? v.slice(0, max) : ''
}

function bundleIdentity(key) {
  const at = key.lastIndexOf('@')
  return { id: key.slice(0, at), version: key.slice(at + 1) }
}
