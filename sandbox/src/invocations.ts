// Invocations in flight: sent to a worker, their host calls relayed to the kernel, settled
// exactly once (by the worker's answer, a missed deadline, or the worker's end), with their
// isolate memory and reputation accounted for.
import { performance } from 'node:perf_hooks'
import type { TrellisError } from '@trellis/plugin-sdk'
import { SBX } from './errors.js'
import type { SandboxLimits } from './limits.js'
import type { Placement } from './placement.js'
import type { FromWorker, HostCallOutcome, InvokeMessage, WorkerMetrics } from './protocol.js'
import { type Deadline, Deadlines } from './deadlines.mjs'
import { parseUntrustedJson } from './safe-json.mjs'
import type { InvocationError, InvocationMetrics, InvokeRequest, InvokeResult, LogLine } from './types.js'
import { asTrellisError, rebuildError, workerLost } from './wire-errors.js'
import type { WorkerMemory } from './worker-memory.js'
import { attributeLoss } from './worker-loss.js'
import type { WorkerProcess } from './worker-process.js'

const NO_HOST_ERRORS: ReadonlyMap<number, TrellisError> = new Map()

interface Pending {
  rid: number
  req: InvokeRequest
  worker: WorkerProcess
  limits: SandboxLimits
  started: number
  timer: Deadline
  /** Made on the first host call: an AbortController costs more than a whole warm invocation's bookkeeping. */
  abort?: AbortController
  /** Made on the first failed host call. */
  hostErrors?: Map<number, TrellisError>
  /** Host calls the handler is still working on: while > 0 the isolate is idle, awaiting. */
  outstanding: number
  trusted: boolean
  isoKey: string
  /** The tenant's isolate (tenant and memory limit): what its memory is counted by. */
  isolateKey: string
  bundleKey: string
  tenantId: string
  /** Counted against the worker's (and on a shared worker, the tenant's) isolate memory. */
  memoryMb: number
  resolve: (r: InvokeResult) => void
  reject: (e: InvocationError) => void
}

/** An invocation checked and placed, ready to be sent. */
export interface Placed {
  rid: number
  req: InvokeRequest
  worker: WorkerProcess
  limits: SandboxLimits
  started: number
  trusted: boolean
  isoKey: string
  isolateKey: string
  bundleKey: string
  /** The message for the worker (made for this call), but for the time left, measured when it is sent. */
  message: Omit<InvokeMessage, 'remainingMs'>
}

export interface InvocationsDeps {
  placement: Placement
  memory: WorkerMemory
  hangGraceMs: number
  closed(): boolean
}

export class Invocations {
  private readonly pending = new Map<number, Pending>()
  /** Every invocation's hang deadline, on one timer. */
  private readonly deadlines = new Deadlines()

  constructor(private readonly deps: InvocationsDeps) {}

  start(placed: Placed): Promise<InvokeResult> {
    const { rid, req, worker, limits, started, message } = placed
    const tenantId = req.context.tenantId
    return new Promise<InvokeResult>((resolve, reject) => {
      const p: Pending = {
        rid,
        req,
        worker,
        limits,
        started,
        outstanding: 0,
        trusted: placed.trusted,
        isoKey: placed.isoKey,
        isolateKey: placed.isolateKey,
        bundleKey: placed.bundleKey,
        tenantId,
        memoryMb: limits.memoryMb,
        resolve,
        reject,
        // The worker enforces wallMs itself; this later timer is for a worker too stuck to.
        timer: this.deadlines.add(limits.wallMs + this.deps.hangGraceMs, () => this.onHung(rid)),
      }
      this.pending.set(rid, p)
      worker.inflight.add(rid)
      this.deps.placement.commit(worker, tenantId, p.isolateKey, p.memoryMb)
      if (!p.trusted) worker.untrusted++
      // (the message was made for this call alone: it is completed in place, not copied)
      const full = message as InvokeMessage
      full.remainingMs = Math.max(1, limits.wallMs - (performance.now() - started))
      worker.send(full)
    })
  }

  onMessage(worker: WorkerProcess, msg: FromWorker): void {
    switch (msg?.t) {
      case 'hc': {
        const p = this.pending.get(msg.rid)
        if (p && p.worker === worker) void this.relayHostCall(p, msg.cid, msg.op, msg.args)
        return
      }
      case 'hcb': {
        const p = this.pending.get(msg.rid)
        if (!p || p.worker !== worker || !Array.isArray(msg.calls)) return
        void this.relayHostCalls(p, msg.calls)
        return
      }
      case 'ok': {
        const p = this.pending.get(msg.rid)
        if (!p || p.worker !== worker) return
        let output: unknown
        try {
          output = parseUntrustedJson(msg.output)
        } catch {
          return this.settle(p, SBX.OUTPUT_INVALID({ reason: 'not JSON' }), msg.metrics, msg.logs)
        }
        return this.settle(p, undefined, msg.metrics, msg.logs, output)
      }
      case 'err': {
        const p = this.pending.get(msg.rid)
        if (!p || p.worker !== worker) return
        return this.settle(p, rebuildError(msg.error, p.hostErrors ?? NO_HOST_ERRORS), msg.metrics, msg.logs)
      }
    }
  }

  /** Fails everything in flight (the sandbox is closing). */
  failAll(error: () => TrellisError): void {
    for (const p of [...this.pending.values()]) this.settle(p, error())
    this.deadlines.clear()
  }

  /**
   * A worker ended: whoever crashed or exhausted it is cordoned and fails for good; the
   * bystanders fail with a retryable SBX_ERR_WORKER_LOST (ADR 0010).
   */
  onWorkerExit(worker: WorkerProcess): void {
    const { placement } = this.deps
    const held = [...worker.inflight].map((rid) => this.pending.get(rid)).filter((p): p is Pending => p !== undefined)
    // An invocation awaiting its host calls had an idle isolate: it cannot have caused this.
    const suspects = held.filter((p) => p.outstanding === 0)
    placement.blame(suspects)
    const verdict = attributeLoss(worker, held)
    if (!this.deps.closed() && !(worker.draining && held.length === 0))
      for (const tenant of verdict.culprits) placement.cordons.add(tenant)
    for (const p of held) {
      if (p.rid === verdict.culpritRid) {
        const wall = worker.overranLimit === 'wall'
        this.settle(p, SBX.TIMEOUT({ limit: wall ? 'wall' : 'cpu', limitMs: wall ? p.limits.wallMs : p.limits.cpuMs }))
      } else if (verdict.culprits.has(p.tenantId)) {
        const oom = worker.sawOutOfMemory && suspects.length === 1 && suspects[0] === p
        this.settle(p, oom ? SBX.MEMORY({ limitMb: p.limits.memoryMb }) : workerLost(worker.deathReason, false))
      } else this.settle(p, workerLost(worker.deathReason, true))
    }
    placement.cordons.detach(worker)
  }

  private async relayHostCall(p: Pending, cid: number, op: string, argsJson: string): Promise<void> {
    const outcome = await this.runHostCall(p, cid, op, argsJson)
    if (this.pending.get(p.rid) === p) p.worker.send({ t: 'hcr', rid: p.rid, ...outcome })
  }

  /**
   * The calls of one stretch (a `Promise.all`) answer in one message once all are done: they
   * run one after another on the invocation's transaction anyway, and the worker then resumes
   * plugin code once for all of them instead of once per call (ADR 0107).
   */
  private async relayHostCalls(p: Pending, calls: Array<{ cid: number; op: string; args: string }>): Promise<void> {
    const results = await Promise.all(calls.map((c) => this.runHostCall(p, c.cid, c.op, c.args)))
    if (this.pending.get(p.rid) === p) p.worker.send({ t: 'hcrb', rid: p.rid, results })
  }

  private async runHostCall(p: Pending, cid: number, op: string, argsJson: string): Promise<HostCallOutcome> {
    p.outstanding++
    try {
      const args = parseUntrustedJson(argsJson)
      p.abort ??= new AbortController()
      const value = await p.req.onHostCall(op, args, {
        invocationId: p.req.context.invocationId,
        signal: p.abort.signal,
      })
      return { cid, ok: true, value: value === undefined ? '' : (JSON.stringify(value) ?? '') }
    } catch (err) {
      // Only a TrellisError's code and message reach plugin code; anything else might carry
      // host internals (SQL, paths), so the plugin sees a generic failure and the kernel
      // keeps the original as the cause.
      const te = asTrellisError(err) ?? SBX.HOST_CALL_FAILED({ op }, { cause: err })
      ;(p.hostErrors ??= new Map()).set(cid, te)
      return { cid, ok: false, error: { code: te.code, status: te.status, message: te.message } }
    } finally {
      p.outstanding--
    }
  }

  private settle(
    p: Pending,
    error: TrellisError | undefined,
    metrics?: WorkerMetrics,
    logs?: LogLine[],
    output?: unknown,
  ): void {
    if (this.pending.get(p.rid) !== p) return
    const { placement, memory } = this.deps
    this.pending.delete(p.rid)
    p.worker.inflight.delete(p.rid)
    placement.release(p.worker, p.tenantId, p.isolateKey, p.memoryMb)
    if (p.worker.draining && p.worker.inflight.size === 0) memory.retire(p.worker)
    if (!p.trusted) p.worker.untrusted--
    if (!error) placement.succeeded(p.isoKey)
    this.deadlines.cancel(p.timer)
    // Host calls still running are told to stop. With none, nothing listens: aborting would
    // only build the DOMException reason (a stack trace) for every invocation that made a call.
    if (p.outstanding > 0) p.abort?.abort()
    const full: InvocationMetrics = {
      cpuMs: 0,
      heapUsedBytes: 0,
      hostCalls: 0,
      ...metrics,
      outcome: error ? error.code : 'ok',
      wallMs: Math.round((performance.now() - p.started) * 1000) / 1000,
      workerPid: p.worker.pid,
    }
    if (!error) return p.resolve({ output, metrics: full, logs: logs ?? [] })
    // Frames of the parent's IPC handlers would only mislead whoever reads the log; a plugin
    // error carries the plugin's own stack instead.
    if (error.code !== SBX.PLUGIN_ERROR.code) error.stack = `${error.name} [${error.code}]: ${error.message}`
    const e = error as InvocationError
    e.metrics = full
    e.logs = logs ?? []
    p.reject(e)
  }

  private onHung(rid: number): void {
    const p = this.pending.get(rid)
    if (!p) return
    this.settle(p, SBX.TIMEOUT({ limit: 'wall', limitMs: p.limits.wallMs }))
    p.worker.hungTenant ??= p.tenantId
    p.worker.kill('did not answer within its invocation deadline')
  }
}
