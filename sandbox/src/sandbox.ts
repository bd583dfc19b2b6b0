import { performance } from 'node:perf_hooks'
import { availableParallelism } from 'node:os'
import { Bundles } from './bundles.js'
import { Cordons } from './cordons.js'
import { SBX } from './errors.js'
import { Invocations } from './invocations.js'
import { DEFAULT_LIMITS, resolveLimits, type SandboxLimits } from './limits.js'
import { operatorDefaults } from './operator-settings.js'
import { Placement } from './placement.js'
import { hangGraceMs, workerConfig, type SandboxOptions } from './sandbox-options.js'
import { Supervisor } from './supervisor.js'
import type { EntryKind, InvokeRequest, InvokeResult, PluginBundle, SandboxStats, WorkerStats } from './types.js'
import { WorkerMemory } from './worker-memory.js'

export type { SandboxOptions } from './sandbox-options.js'

const ENTRY_KINDS: ReadonlySet<string> = new Set<EntryKind>(['route', 'event', 'action', 'workflowStep'])

/**
 * Runs untrusted plugin bundles in isolated-vm isolates inside supervised worker processes.
 * Knows bundles, entries and limits; knows nothing of what host calls mean.
 */
export class Sandbox {
  private readonly limits: SandboxLimits
  private readonly supervisor: Supervisor
  private readonly bundles: Bundles
  private readonly placement: Placement
  private readonly memory: WorkerMemory
  private readonly invocations: Invocations
  private readonly monitor: NodeJS.Timeout
  private closed = false

  private constructor(options: SandboxOptions) {
    this.limits = resolveLimits(DEFAULT_LIMITS, options.limits)
    const config = workerConfig(options)
    if (!Number.isInteger(config.maxRunningPerTenant) || config.maxRunningPerTenant < 1)
      throw SBX.INVALID_REQUEST({ reason: 'maxRunningPerTenant must be a positive integer' })
    const defaults = operatorDefaults()
    const cordons = new Cordons(options.cordonMs ?? defaults.cordonMs ?? 15 * 60_000, options.maxCordonWorkers ?? 4)
    this.supervisor = new Supervisor(
      {
        count: options.workers ?? availableParallelism(),
        config,
        execArgv: options.workerExecArgv ?? [],
        quiet: options.quietWorkers,
      },
      {
        onInvocationMessage: (w, msg) => this.invocations.onMessage(w, msg),
        onWorkerExit: (w) => this.invocations.onWorkerExit(w),
      },
    )
    const supervisor = this.supervisor
    this.placement = new Placement(
      {
        workerIsolateMemoryMb: options.workerIsolateMemoryMb ?? 4096,
        tenantIsolateMemoryMb: options.tenantIsolateMemoryMb ?? 1024,
        probationInvocations: options.probationInvocations ?? 3,
      },
      cordons,
      () => supervisor.workers,
      () => supervisor.startCordonWorker(),
    )
    this.memory = new WorkerMemory({
      budgetBytes: (options.workerMemoryMb ?? 2048) * 1024 * 1024,
      recycleBytes: (options.workerRecycleMb ?? defaults.workerRecycleMb ?? 256) * 1024 * 1024,
      cordons,
      workers: () => supervisor.all(),
      replace: (w) => supervisor.replace(w),
      stats: (w) => supervisor.stats(w, true),
      closed: () => this.closed,
    })
    this.invocations = new Invocations({
      placement: this.placement,
      memory: this.memory,
      hangGraceMs: hangGraceMs(options),
      closed: () => this.closed,
    })
    this.bundles = new Bundles(supervisor, this.limits, options.maxBundleBytes ?? 16 * 1024 * 1024)
    this.monitor = setInterval(() => this.memory.check(), options.monitorIntervalMs ?? 500)
    this.monitor.unref()
  }

  static async create(options: SandboxOptions = {}): Promise<Sandbox> {
    const sandbox = new Sandbox(options)
    await sandbox.supervisor.ready()
    return sandbox
  }

  /** Verifies and compiles a bundle in every worker; returns the entries it declares. */
  async load(bundle: PluginBundle): Promise<{ entries: Record<string, string[]> }> {
    this.assertOpen()
    return this.bundles.load(bundle)
  }

  /** Forgets a bundle and disposes its isolates. */
  async unload(ref: { id: string; version: string }): Promise<void> {
    this.bundles.unload(ref)
  }

  async invoke(req: InvokeRequest): Promise<InvokeResult> {
    this.assertOpen()
    const started = performance.now()
    const loaded = this.bundles.get(req?.bundle?.id, req?.bundle?.version)
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
    // A plugin's context is keyed by tenant and installation as well as bundle, and lives in its
    // tenant's isolate (one per memory limit, which is fixed when an isolate is made), so no
    // tenant ever shares an isolate (and its globals) with another (ADR 0080). Workers are
    // chosen by the tenant's isolate, so a tenant's plugins share one where they can.
    const isoKey = JSON.stringify([context.tenantId, context.installationId, loaded.key, limits.memoryMb])
    const isolateKey = JSON.stringify([context.tenantId, limits.memoryMb])
    const trusted = this.placement.isTrusted(isoKey, loaded.key)
    const worker = this.placement.place(context.tenantId, isolateKey, trusted, limits.memoryMb)
    this.bundles.ensureOn(worker, loaded)
    const rid = this.supervisor.rid()
    const running = this.invocations.start({
      rid,
      req,
      worker,
      limits,
      started,
      trusted,
      isoKey,
      isolateKey,
      bundleKey: loaded.key,
      message: {
        t: 'inv',
        rid,
        invocationId: context.invocationId,
        tenantId: context.tenantId,
        bundleKey: loaded.key,
        isoKey,
        entry: { kind: entry.kind, name: entry.name },
        input,
        context: contextJson,
        limits,
      },
    })
    // A plugin error's stack comes in the bundle's lines; the source map is here.
    return loaded.sourceMap === undefined
      ? running
      : running.catch((err) => {
          throw this.bundles.mapStack(loaded, err)
        })
  }

  /** Per-worker process and isolate figures (refreshing isolate heap sizes costs a little). */
  async stats(options: { refresh?: boolean } = {}): Promise<SandboxStats> {
    const workers = await Promise.all(this.supervisor.live().map((w) => this.supervisor.stats(w, options.refresh)))
    const now = Date.now()
    return {
      workers: workers.filter((w): w is WorkerStats => w !== undefined),
      restarts: this.supervisor.restarts,
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
    this.invocations.failAll(() => SBX.CLOSED())
    await this.supervisor.close()
  }

  private assertOpen(): void {
    if (this.closed) throw SBX.CLOSED()
  }
}
