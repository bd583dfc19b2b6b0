import { createHash } from 'node:crypto'
import { availableParallelism } from 'node:os'
import { performance } from 'node:perf_hooks'
import { TrellisError, isTrellisError } from '@trellis/plugin-sdk'
import { SBX } from './errors.js'
import { DEFAULT_LIMITS, resolveLimits, type SandboxLimits } from './limits.js'
import type { FromWorker, WireError } from './protocol.js'
import { parseUntrustedJson } from './safe-json.mjs'
import { Cordons } from './cordons.js'
import { Placement } from './placement.js'
import { WorkerMemory } from './worker-memory.js'
import { attributeLoss } from './worker-loss.js'
import { operatorDefaults } from './operator-settings.js'
import type {
  EntryKind,
  InvocationError,
  InvocationMetrics,
  InvokeRequest,
  InvokeResult,
  LogLine,
  PluginBundle,
  SandboxStats,
  WorkerStats,
} from './types.js'
import { WorkerProcess, type WorkerConfig } from './worker-process.js'

export interface SandboxOptions {
  /** Worker processes; default: number of cores. */
  workers?: number
  /** Defaults for every invocation; a request's `limits` override them. */
  limits?: Partial<SandboxLimits>
  /** Process budget: a worker whose resident memory exceeds it is killed and replaced. */
  workerMemoryMb?: number
  /**
   * Memory ceiling between invocations: a worker whose resident memory, beyond what its live
   * isolates' heaps account for, passes it takes no new work, finishes what it holds and is
   * replaced (default 256, or `TRELLIS_SANDBOX_WORKER_RECYCLE_MB`). Heap freed by plugin runs is
   * not always given back to the system; a fresh process gives it back.
   */
  workerRecycleMb?: number
  /** Sum of the memory limits of the isolates one worker runs invocations in at once (default 4096). */
  workerIsolateMemoryMb?: number
  /** Sum of the memory limits of one tenant's isolates with invocations in flight on the shared workers (default 1024). */
  tenantIsolateMemoryMb?: number
  /**
   * How long a tenant whose invocations crashed or exhausted a worker runs in a worker of its
   * own (default 15 minutes, or `TRELLIS_SANDBOX_CORDON_MINUTES`; a repeat offence multiplies it).
   */
  cordonMs?: number
  /** Cordon workers at most; beyond that, cordoned tenants share them (default 4). */
  maxCordonWorkers?: number
  /** How far past its CPU limit plugin code may run before its worker ends itself (default 250). */
  cpuGraceMs?: number
  /**
   * How long after an invocation's wall deadline a silent worker is declared hung and killed
   * (default 2000). Plugin code whose CPU limit fits in it may run on the worker's event loop.
   */
  hangGraceMs?: number
  /** Idle isolates are disposed after this long. */
  idleMs?: number
  /** Warm isolates kept per worker (LRU beyond that). */
  maxIsolatesPerWorker?: number
  /** Isolates one (tenant, installation, bundle) may use at once in a worker, for concurrency. */
  maxIsolatesPerKey?: number
  /** Heap of warm isolates per worker beyond which idle ones are evicted (LRU). */
  isolateHeapBudgetMb?: number
  /** How often worker memory is checked. */
  monitorIntervalMs?: number
  maxBundleBytes?: number
  /** Extra node flags for workers (e.g. --max-old-space-size). */
  workerExecArgv?: string[]
  /** Successful invocations after which a (tenant, installation, bundle) leaves probation. */
  probationInvocations?: number
  /** Drop workers' stderr instead of passing it on (V8 prints a heap report when a worker dies of OOM). */
  quietWorkers?: boolean
}

const ENTRY_KINDS: ReadonlySet<string> = new Set<EntryKind>(['route', 'event', 'action', 'workflowStep'])
const SBX_BY_CODE = new Map<string, (d?: never) => TrellisError>(
  SBX.entries.map((e) => [
    e.code,
    (SBX as unknown as Record<string, (d?: never) => TrellisError>)[e.code.slice('SBX_ERR_'.length)]!,
  ]),
)
const BUNDLE_ID = /^[@a-zA-Z0-9][@a-zA-Z0-9._/-]{0,213}$/
const BUNDLE_VERSION = /^[0-9A-Za-z][0-9A-Za-z.+-]{0,63}$/

interface LoadedBundle {
  bundle: PluginBundle
  key: string
  sha256: string
  entries?: Record<string, string[]>
  loading: Promise<Record<string, string[]>>
}

interface Pending {
  rid: number
  req: InvokeRequest
  worker: WorkerProcess
  limits: SandboxLimits
  started: number
  timer: NodeJS.Timeout
  /** Made on the first host call: an AbortController costs more than a whole warm invocation's bookkeeping. */
  abort?: AbortController
  hostErrors: Map<number, TrellisError>
  /** Host calls the handler is still working on: while > 0 the isolate is idle, awaiting. */
  outstanding: number
  trusted: boolean
  isoKey: string
  bundleKey: string
  tenantId: string
  /** Counted against the worker's (and on a shared worker, the tenant's) isolate memory. */
  memoryMb: number
  resolve: (r: InvokeResult) => void
  reject: (e: InvocationError) => void
}

interface Waiter<T> {
  worker: WorkerProcess
  resolve: (v: T) => void
}

/**
 * Runs untrusted plugin bundles in isolated-vm isolates inside supervised worker processes.
 * Knows bundles, entries and limits; knows nothing of what host calls mean.
 */
export class Sandbox {
  private readonly workers: Array<WorkerProcess | undefined>
  private readonly limits: SandboxLimits
  private readonly config: WorkerConfig
  private readonly registry = new Map<string, LoadedBundle>()
  private readonly pending = new Map<number, Pending>()
  private readonly loads = new Map<number, Waiter<FromWorker & { t: 'loaded' | 'loadFailed' }>>()
  private readonly statsWaiters = new Map<number, Waiter<WorkerStats | undefined>>()
  private readonly monitor: NodeJS.Timeout
  private readonly placement: Placement
  /** Workers outside the shared slots: cordon workers and recycled ones finishing their work. */
  private readonly extra = new Set<WorkerProcess>()
  private nextRid = 1
  private restarts = 0
  private recentCrashes = 0
  private closed = false

  private readonly memory: WorkerMemory

  private constructor(private readonly options: SandboxOptions) {
    this.limits = resolveLimits(DEFAULT_LIMITS, options.limits)
    this.config = {
      maxIsolates: options.maxIsolatesPerWorker ?? 1000,
      maxIsolatesPerKey: options.maxIsolatesPerKey ?? 4,
      idleMs: options.idleMs ?? 5 * 60_000,
      isolateHeapBudgetMb: options.isolateHeapBudgetMb ?? 1024,
      // A synchronous run blocks the worker's event loop for up to its CPU limit; kept within
      // the grace so that it can never get the worker declared hung.
      syncMaxCpuMs: Math.max(0, this.hangGraceMs() - 200),
      cpuGraceMs: options.cpuGraceMs ?? 250,
    }
    const defaults = operatorDefaults()
    const cordons = new Cordons(options.cordonMs ?? defaults.cordonMs ?? 15 * 60_000, options.maxCordonWorkers ?? 4)
    const settings = {
      workerIsolateMemoryMb: options.workerIsolateMemoryMb ?? 4096,
      tenantIsolateMemoryMb: options.tenantIsolateMemoryMb ?? 1024,
      probationInvocations: options.probationInvocations ?? 3,
    }
    this.placement = new Placement(
      settings,
      cordons,
      () => this.workers,
      () => {
        const w = this.spawn(-1)
        w.cordon = true
        this.extra.add(w)
        return w
      },
    )
    const n = options.workers ?? availableParallelism()
    if (!Number.isInteger(n) || n < 1) throw SBX.INVALID_REQUEST({ reason: 'workers must be a positive integer' })
    this.workers = Array.from({ length: n }, (_, i) => this.spawn(i))
    this.memory = new WorkerMemory({
      budgetBytes: (options.workerMemoryMb ?? 2048) * 1024 * 1024,
      recycleBytes: (options.workerRecycleMb ?? defaults.workerRecycleMb ?? 256) * 1024 * 1024,
      cordons,
      workers: () => this.allWorkers(),
      replace: (w) => {
        if (w.slot < 0 || this.workers[w.slot] !== w) return
        this.extra.add(w)
        this.workers[w.slot] = this.spawn(w.slot)
      },
      stats: (w) =>
        new Promise<WorkerStats | undefined>((resolve) => {
          const rid = this.nextRid++
          this.statsWaiters.set(rid, { worker: w, resolve })
          w.send({ t: 'stats', rid, refresh: true })
        }),
      closed: () => this.closed,
    })
    this.monitor = setInterval(() => this.memory.check(), options.monitorIntervalMs ?? 500)
    this.monitor.unref()
  }

  static async create(options: SandboxOptions = {}): Promise<Sandbox> {
    const sandbox = new Sandbox(options)
    await Promise.all(sandbox.workers.map((w) => w && waitReady(w)))
    return sandbox
  }

  /** Verifies and compiles a bundle in every worker; returns the entries it declares. */
  async load(bundle: PluginBundle): Promise<{ entries: Record<string, string[]> }> {
    this.assertOpen()
    for (const field of ['id', 'version', 'code', 'sha256'] as const) {
      if (typeof bundle?.[field] !== 'string' || bundle[field] === '')
        throw SBX.INVALID_REQUEST({ reason: `bundle.${field} must be a non-empty string` })
    }
    if (bundle.sourceMap !== undefined && typeof bundle.sourceMap !== 'string')
      throw SBX.INVALID_REQUEST({ reason: 'bundle.sourceMap must be a string' })
    // Both end up in stack frames and log lines; nothing there may look like more than a name.
    if (!BUNDLE_ID.test(bundle.id) || !BUNDLE_VERSION.test(bundle.version))
      throw SBX.INVALID_REQUEST({ reason: 'bundle id or version has characters a package name or semver cannot have' })
    const { id, version } = bundle
    const digest = createHash('sha256').update(bundle.code).digest('hex')
    if (digest !== bundle.sha256.toLowerCase()) throw SBX.DIGEST_MISMATCH({ id, version })
    const maxBytes = this.options.maxBundleBytes ?? 16 * 1024 * 1024
    if (
      Buffer.byteLength(bundle.code) > maxBytes ||
      (bundle.sourceMap !== undefined && Buffer.byteLength(bundle.sourceMap) > maxBytes)
    ) {
      throw SBX.BUNDLE_INVALID({ id, version, reason: 'bundle exceeds the size limit' })
    }
    const key = bundleKey(id, version)
    const existing = this.registry.get(key)
    if (existing) {
      if (existing.sha256 !== digest) throw SBX.BUNDLE_CONFLICT({ id, version })
      return { entries: await existing.loading }
    }
    const loaded: LoadedBundle = { bundle: { ...bundle }, key, sha256: digest, loading: undefined as never }
    loaded.loading = this.loadEverywhere(loaded).then(
      (entries) => (loaded.entries = entries),
      (err) => {
        this.registry.delete(key)
        for (const w of this.liveWorkers()) {
          w.bundles.delete(key)
          w.send({ t: 'unload', key })
        }
        throw err
      },
    )
    this.registry.set(key, loaded)
    return { entries: await loaded.loading }
  }

  /** Forgets a bundle and disposes its isolates. */
  async unload(ref: { id: string; version: string }): Promise<void> {
    const key = bundleKey(ref.id, ref.version)
    this.registry.delete(key)
    for (const w of this.allWorkers()) {
      w.bundles.delete(key)
      w.send({ t: 'unload', key })
    }
  }

  async invoke(req: InvokeRequest): Promise<InvokeResult> {
    this.assertOpen()
    const started = performance.now()
    const loaded = this.registry.get(bundleKey(req?.bundle?.id, req?.bundle?.version))
    if (!loaded) throw SBX.BUNDLE_NOT_LOADED({ id: String(req?.bundle?.id), version: String(req?.bundle?.version) })
    const entries = loaded.entries ?? (await loaded.loading)
    const { entry, context } = req
    if (!entry || !ENTRY_KINDS.has(entry.kind) || typeof entry.name !== 'string')
      throw SBX.INVALID_REQUEST({ reason: 'entry must be { kind, name } with a known kind' })
    if (!entries[entry.kind]?.includes(entry.name)) throw SBX.UNKNOWN_ENTRY({ kind: entry.kind, name: entry.name })
    if (typeof req.onHostCall !== 'function') throw SBX.INVALID_REQUEST({ reason: 'onHostCall must be a function' })
    for (const field of ['invocationId', 'tenantId', 'installationId'] as const) {
      if (typeof context?.[field] !== 'string' || context[field] === '')
        throw SBX.INVALID_REQUEST({ reason: `context.${field} must be a non-empty string` })
    }
    const limits = resolveLimits(this.limits, req.limits)
    let input: string
    let contextJson: string
    try {
      input = req.input === undefined ? '' : JSON.stringify(req.input)
      contextJson = JSON.stringify(context)
    } catch {
      throw SBX.INVALID_REQUEST({ reason: 'input and context must be JSON-serialisable' })
    }
    if (
      input.length > limits.maxInputBytes ||
      Buffer.byteLength(input) > limits.maxInputBytes ||
      contextJson.length > limits.maxInputBytes
    ) {
      throw SBX.PAYLOAD_TOO_LARGE({ what: 'input', limitBytes: limits.maxInputBytes })
    }
    // Isolates are keyed by tenant and installation as well as bundle, so no tenant ever
    // shares an isolate (and its globals) with another; the memory limit is part of the key
    // because it is fixed when an isolate is created.
    const isoKey = JSON.stringify([context.tenantId, context.installationId, loaded.key, limits.memoryMb])
    const trusted = this.placement.isTrusted(isoKey, loaded.key)
    const worker = this.placement.place(context.tenantId, isoKey, trusted, limits.memoryMb)
    this.ensureBundle(worker, loaded)
    const rid = this.nextRid++
    return new Promise<InvokeResult>((resolve, reject) => {
      const p: Pending = {
        rid,
        req,
        worker,
        limits,
        started,
        hostErrors: new Map(),
        outstanding: 0,
        trusted,
        isoKey,
        bundleKey: loaded.key,
        tenantId: context.tenantId,
        memoryMb: limits.memoryMb,
        resolve,
        reject,
        // The worker enforces wallMs itself; this later timer is for a worker too stuck to.
        timer: setTimeout(() => this.onHung(rid), limits.wallMs + this.hangGraceMs()),
      }
      this.pending.set(rid, p)
      worker.inflight.add(rid)
      this.placement.commit(worker, p.tenantId, p.isoKey, p.memoryMb)
      if (!trusted) worker.untrusted++
      worker.send({
        t: 'inv',
        rid,
        invocationId: context.invocationId,
        bundleKey: loaded.key,
        isoKey,
        entry: { kind: entry.kind, name: entry.name },
        input,
        context: contextJson,
        limits,
        remainingMs: Math.max(1, limits.wallMs - (performance.now() - started)),
      })
    })
  }

  /** Per-worker process and isolate figures (refreshing isolate heap sizes costs a little). */
  async stats(options: { refresh?: boolean } = {}): Promise<SandboxStats> {
    const workers = await Promise.all(
      this.liveWorkers().map(
        (worker) =>
          new Promise<WorkerStats | undefined>((resolve) => {
            const rid = this.nextRid++
            this.statsWaiters.set(rid, { worker, resolve })
            worker.send({ t: 'stats', rid, refresh: options.refresh })
          }),
      ),
    )
    const now = Date.now()
    return {
      workers: workers.filter((w): w is WorkerStats => w !== undefined),
      restarts: this.restarts,
      recycles: this.memory.recycles,
      cordons: this.placement.cordons
        .list()
        .filter((c) => c.until > now)
        .map((c) => ({
          tenantId: c.tenantId,
          until: new Date(c.until).toISOString(),
          ...(c.worker && !c.worker.dead ? { workerPid: c.worker.pid } : {}),
        })),
    }
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.monitor)
    for (const p of [...this.pending.values()]) this.settle(p, SBX.CLOSED())
    await Promise.all(
      this.allWorkers().map(
        (w) =>
          new Promise<void>((resolve) => {
            const force = setTimeout(() => w.kill('closing'), 2000)
            w.child.once('close', () => {
              clearTimeout(force)
              resolve()
            })
            w.send({ t: 'shutdown' })
          }),
      ),
    )
  }

  private hangGraceMs(): number {
    return this.options.hangGraceMs ?? 2000
  }

  private assertOpen(): void {
    if (this.closed) throw SBX.CLOSED()
  }

  private liveWorkers(): WorkerProcess[] {
    return this.workers.filter((w): w is WorkerProcess => w !== undefined && !w.dead)
  }

  /** Shared workers, cordon workers and retiring workers: everything that may hold a bundle. */
  private allWorkers(): WorkerProcess[] {
    return [...this.liveWorkers(), ...[...this.extra].filter((w) => !w.dead)]
  }

  private spawn(slot: number): WorkerProcess {
    return new WorkerProcess(
      slot,
      this.config,
      this.options.workerExecArgv ?? [],
      (w, msg) => this.onMessage(w, msg),
      (w) => this.onExit(w),
      this.options.quietWorkers,
    )
  }

  private ensureBundle(worker: WorkerProcess, loaded: LoadedBundle): void {
    if (worker.bundles.has(loaded.key)) return
    // A replacement worker learns bundles lazily; IPC order guarantees the load arrives first.
    worker.bundles.add(loaded.key)
    const { id, version, code, sourceMap } = loaded.bundle
    worker.send({
      t: 'load',
      rid: this.nextRid++,
      bundle: { key: loaded.key, id, version, code, sourceMap },
      limits: this.limits,
      evaluate: false,
    })
  }

  /**
   * Evaluates the bundle once, on the probation worker (its top level is untrusted code that
   * might kill a worker), then has every other worker compile it for its code cache only.
   */
  private async loadEverywhere(loaded: LoadedBundle): Promise<Record<string, string[]>> {
    const { id, version } = loaded.bundle
    const live = this.liveWorkers()
    const probation = this.workers.length >= 2 ? this.workers[this.workers.length - 1] : undefined
    const prober = probation && !probation.dead ? probation : live[0]
    if (!prober) throw SBX.WORKER_LOST({ reason: 'no worker is running' })
    const first = await this.loadOn(prober, loaded, true)
    if (!first) throw SBX.BUNDLE_INVALID({ id, version, reason: 'evaluating it killed its worker' })
    if (first.t === 'loadFailed') {
      const reason = typeof first.error?.details?.reason === 'string' ? first.error.details.reason : 'evaluation failed'
      throw SBX.BUNDLE_INVALID({ id, version, reason })
    }
    // Compile-only elsewhere; a worker that fails to compile it simply learns it again lazily.
    await Promise.all(live.filter((w) => w !== prober).map((w) => this.loadOn(w, loaded, false)))
    return first.entries
  }

  private loadOn(
    worker: WorkerProcess,
    loaded: LoadedBundle,
    evaluate: boolean,
  ): Promise<(FromWorker & { t: 'loaded' | 'loadFailed' }) | undefined> {
    const { id, version, code, sourceMap } = loaded.bundle
    return new Promise((resolve) => {
      const rid = this.nextRid++
      this.loads.set(rid, { worker, resolve })
      worker.bundles.add(loaded.key)
      worker.send({
        t: 'load',
        rid,
        bundle: { key: loaded.key, id, version, code, sourceMap },
        limits: this.limits,
        evaluate,
      })
    }).then((reply) => {
      const r = reply as (FromWorker & { t: 'loaded' | 'loadFailed' }) | undefined
      if (r?.t !== 'loaded') worker.bundles.delete(loaded.key)
      return r
    })
  }

  private onMessage(worker: WorkerProcess, msg: FromWorker): void {
    switch (msg?.t) {
      case 'hc': {
        const p = this.pending.get(msg.rid)
        if (p && p.worker === worker) void this.relayHostCall(p, msg.cid, msg.op, msg.args)
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
        return this.settle(p, this.rebuildError(p, msg.error), msg.metrics, msg.logs)
      }
      case 'loaded':
      case 'loadFailed': {
        const w = this.loads.get(msg.rid)
        if (!w) return
        this.loads.delete(msg.rid)
        return w.resolve(msg)
      }
      case 'stats': {
        const w = this.statsWaiters.get(msg.rid)
        if (!w) return
        this.statsWaiters.delete(msg.rid)
        return w.resolve({ ...msg.stats, rssBytes: worker.rssBytes() ?? msg.stats.rssBytes })
      }
    }
  }

  private async relayHostCall(p: Pending, cid: number, op: string, argsJson: string): Promise<void> {
    let reply: { ok: true; value: string } | { ok: false; error: { code: string; status: number; message: string } }
    p.outstanding++
    try {
      const args = parseUntrustedJson(argsJson)
      p.abort ??= new AbortController()
      const value = await p.req.onHostCall(op, args, {
        invocationId: p.req.context.invocationId,
        signal: p.abort.signal,
      })
      reply = { ok: true, value: value === undefined ? '' : (JSON.stringify(value) ?? '') }
    } catch (err) {
      // Only a TrellisError's code and message reach plugin code; anything else might carry
      // host internals (SQL, paths), so the plugin sees a generic failure and the kernel
      // keeps the original as the cause.
      const te = asTrellisError(err) ?? SBX.HOST_CALL_FAILED({ op }, { cause: err })
      p.hostErrors.set(cid, te)
      reply = { ok: false, error: { code: te.code, status: te.status, message: te.message } }
    } finally {
      p.outstanding--
    }
    if (this.pending.get(p.rid) === p) p.worker.send({ t: 'hcr', rid: p.rid, cid, ...reply })
  }

  private rebuildError(p: Pending, wire: WireError): TrellisError {
    if ('hostRef' in wire) {
      const original = p.hostErrors.get(wire.hostRef)
      if (original)
        return new TrellisError(original.code, original.status, original.title, original.message, original.details, {
          cause: original,
        })
      return SBX.PLUGIN_ERROR({ message: 'plugin rethrew an unknown host error' })
    }
    const factory = SBX_BY_CODE.get(wire.code)
    const details = (wire.details ?? {}) as never
    const err: TrellisError = factory ? factory(details) : SBX.PLUGIN_ERROR({ message: 'unknown failure' })
    if (err.code === SBX.PLUGIN_ERROR.code) {
      // The caller sees the plugin's own stack (mapped to its sources), never ours.
      const d = err.details as { name?: string; message?: string; stack?: string }
      err.stack = `${d.name ?? 'Error'}: ${d.message ?? ''}${d.stack ? `\n${d.stack}` : ''}`
    }
    return err
  }

  private settle(
    p: Pending,
    error: TrellisError | undefined,
    metrics?: Omit<InvocationMetrics, 'wallMs'>,
    logs?: LogLine[],
    output?: unknown,
  ): void {
    if (this.pending.get(p.rid) !== p) return
    this.pending.delete(p.rid)
    p.worker.inflight.delete(p.rid)
    this.placement.release(p.worker, p.tenantId, p.isoKey, p.memoryMb)
    if (p.worker.draining && p.worker.inflight.size === 0) this.memory.retire(p.worker)
    if (!p.trusted) p.worker.untrusted--
    if (!error) this.placement.succeeded(p.isoKey)
    clearTimeout(p.timer)
    p.abort?.abort()
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

  private onExit(worker: WorkerProcess): void {
    const held = [...worker.inflight].map((rid) => this.pending.get(rid)).filter((p): p is Pending => p !== undefined)
    // An invocation awaiting its host calls had an idle isolate: it cannot have caused this.
    const suspects = held.filter((p) => p.outstanding === 0)
    this.placement.blame(suspects)
    const verdict = attributeLoss(worker, held)
    // Whoever crashed or exhausted a worker gets one of its own for a while.
    if (!this.closed && !(worker.draining && held.length === 0))
      for (const tenant of verdict.culprits) this.placement.cordons.add(tenant)
    for (const p of held) {
      if (p.rid === verdict.culpritRid) {
        const wall = worker.overranLimit === 'wall'
        this.settle(p, SBX.TIMEOUT({ limit: wall ? 'wall' : 'cpu', limitMs: wall ? p.limits.wallMs : p.limits.cpuMs }))
      } else if (verdict.culprits.has(p.tenantId)) {
        const oom = worker.sawOutOfMemory && suspects.length === 1 && suspects[0] === p
        this.settle(p, oom ? SBX.MEMORY({ limitMb: p.limits.memoryMb }) : workerLost(worker.deathReason, false))
      } else this.settle(p, workerLost(worker.deathReason, true))
    }
    this.placement.cordons.detach(worker)
    if (this.extra.delete(worker)) {
      for (const [rid, w] of this.loads) if (w.worker === worker) this.loads.delete(rid), w.resolve(undefined as never)
      for (const [rid, w] of this.statsWaiters)
        if (w.worker === worker) this.statsWaiters.delete(rid), w.resolve(undefined)
      return
    }
    for (const [rid, w] of this.loads) if (w.worker === worker) this.loads.delete(rid), w.resolve(undefined as never)
    for (const [rid, w] of this.statsWaiters)
      if (w.worker === worker) this.statsWaiters.delete(rid), w.resolve(undefined)
    if (this.closed || this.workers[worker.slot] !== worker) return
    this.restarts++
    // A worker that dies right after starting would otherwise be respawned in a tight loop.
    const early = Date.now() - worker.startedAt < 5000
    this.recentCrashes = early ? this.recentCrashes + 1 : 0
    const delay = early ? Math.min(5000, 50 * 2 ** Math.min(this.recentCrashes, 7)) : 0
    const respawn = () => {
      if (!this.closed) this.workers[worker.slot] = this.spawn(worker.slot)
    }
    if (delay) {
      this.workers[worker.slot] = undefined
      setTimeout(respawn, delay).unref()
    } else respawn()
  }
}

const CODE = /^[A-Z][A-Z0-9]*_ERR_[A-Z0-9_]+$/

/**
 * SBX_ERR_WORKER_LOST, saying whether the invocation may run again once on another worker:
 * `retryable` is in its details and on the error itself (see InvocationError).
 */
function workerLost(reason: string, retryable: boolean): TrellisError {
  const err = SBX.WORKER_LOST({ reason, retryable })
  Object.defineProperty(err, 'retryable', { value: retryable, enumerable: true })
  return err
}

// A kernel may hold a second copy of the SDK (bundled, linked), whose TrellisError fails
// instanceof; the shape is what the contract is about.
function asTrellisError(err: unknown): TrellisError | undefined {
  if (isTrellisError(err)) return err
  if (!(err instanceof Error)) return undefined
  const e = err as Error & Partial<Pick<TrellisError, 'code' | 'status' | 'title' | 'details'>>
  if (typeof e.code === 'string' && CODE.test(e.code) && typeof e.status === 'number') {
    return new TrellisError(e.code, e.status, typeof e.title === 'string' ? e.title : e.code, e.message, e.details, {
      cause: err,
    })
  }
  return undefined
}

function bundleKey(id: unknown, version: unknown): string {
  return `${String(id)}@${String(version)}`
}

function waitReady(w: WorkerProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    const onMessage = (msg: { t?: string }) => {
      if (msg?.t !== 'ready') return
      w.child.off('message', onMessage)
      w.child.off('exit', onExit)
      resolve()
    }
    const onExit = () => reject(SBX.WORKER_LOST({ reason: `worker failed to start: ${w.deathReason}` }))
    w.child.on('message', onMessage)
    w.child.once('exit', onExit)
  })
}
