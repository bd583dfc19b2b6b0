import { availableParallelism } from 'node:os'
import { SpanStatusCode, trace } from '@opentelemetry/api'
import { v7 as uuidv7 } from 'uuid'
import {
  isTrellisError,
  matchesEventPattern,
  parseCapability,
  type Capability,
  type JsonValue,
  type TrellisEvent,
} from '@trellis/plugin-sdk'
import { Sandbox, type InvocationError, type InvokeResult, type LogLine, type SandboxLimits } from '@trellis/sandbox'
import type { Tx } from '../db/database.js'
import type { KernelContext } from '../kernel-context.js'
import { InvocationTx, TransactionGate, type TransactionLimits } from './invocation-tx.js'
import { InvocationLimiter } from './invocation-limits.js'
import { auditDenials, retryable } from './invocation-outcomes.js'
import { resolvePluginLimits, type PluginLimits } from './plugin-limits.js'
import { KRN, PLG } from '../errors.js'
import { appendAudit } from '../audit/audit-log.js'
import { EgressGuard } from '../egress/index.js'
import type { PluginEventSink, PluginSubscription } from '../events/subscribers.js'
import {
  INSTALLATION_COLS,
  openSecrets,
  toInstallation,
  type Installation,
  type InstallationRow,
} from './installations.js'
import { PluginVersions, type PluginVersion } from './versions.js'
import { InvocationRecorder, type InvocationRecord } from './invocation-recorder.js'
import { runHostCall, type DataService, type HostServices, type InvocationTree, type Running } from './host-calls.js'
import { checkSchema } from './schemas.js'

/** Options of the host; its invocation and transaction limits (PluginLimits) override TRELLIS_PLUGIN_*. */
export interface PluginHostOptions extends PluginLimits {
  /** Sandbox worker processes (default: min(2, cores)). */
  sandboxWorkers?: number
  /** Hosts plugins may reach although they resolve to private addresses (tests allow-list 127.0.0.1). */
  egressAllow?: string[]
  /** How long a tenant's installations are cached (other processes' changes show within it). */
  installationTtlMs?: number
  /** Defaults for every invocation's sandbox limits (CPU, wall clock, memory, host calls). */
  sandboxLimits?: Partial<SandboxLimits>
}

export type EntryKind = 'route' | 'event' | 'action' | 'workflowStep'

/** One invocation as the kernel asks for it. */
export interface InvokeInput {
  tenantId: string
  installation: Installation
  entry: { kind: EntryKind; name: string }
  input: unknown
  caller: InvocationTree['caller']
  /** Run this version instead of the installation's current one (a workflow instance finishes on the version it started on). */
  versionId?: string
}

/** Work done in the invocation's own transaction, around the plugin (the workflow runtime records a step with its writes). */
export interface InvokeHooks<T> {
  /** Before the plugin runs; `false` skips the invocation (the transaction commits nothing of it). */
  before?(tx: Tx): Promise<boolean>
  /** After the plugin returned, before commit; what it returns is what `invoke` resolves to. */
  after?(tx: Tx, output: unknown): Promise<T>
}

/** What `invoke` resolves to when a `before` hook skipped the invocation. */
export const SKIPPED: unique symbol = Symbol('trellis.invocation.skipped')

/** A tenant's installations, by id, plugin name and mount. */
interface TenantPlugins {
  at: number
  byId: Map<string, Installation>
  byPlugin: Map<string, Installation>
  byMount: Map<string, Installation>
}

const MAX_CALL_DEPTH = 8
const tracer = trace.getTracer('trellis.plugins')
// Errors that mean the platform, not the plugin, failed: event deliveries are retried on these.
// A tenant over its concurrency cap is told to come back later: its deliveries wait too.
const INFRASTRUCTURE = new Set([
  'SBX_ERR_WORKER_LOST',
  'SBX_ERR_SANDBOX_CLOSED',
  'KRN_ERR_DATABASE_UNAVAILABLE',
  'KRN_ERR_INTERNAL',
  'PLG_ERR_TOO_MANY_INVOCATIONS',
])

/**
 * The kernel side of plugins: runs installed plugin versions in the sandbox for their tenants,
 * answers their host calls (capability-checked, audited, in one transaction per invocation),
 * keeps invocation records, and delivers subscribed events to them.
 */
export class PluginHost implements PluginEventSink {
  readonly versions: PluginVersions
  readonly recorder: InvocationRecorder
  private sandboxStarting: Promise<Sandbox> | undefined
  private readonly loaded = new Map<string, Promise<unknown>>()
  private readonly tenants = new Map<string, Promise<TenantPlugins>>()
  private readonly settled = new Map<string, TenantPlugins>()
  private readonly generations = new Map<string, number>()
  private readonly parsedCaps = new WeakMap<Installation, Capability[]>()
  private readonly services: HostServices
  /** The egress guard of ctx.http.fetch (grants are checked against its allow-list). */
  readonly egress: EgressGuard
  private sinkTimer: NodeJS.Timeout | undefined
  private sinkSet = false
  private readonly listeners = new Set<(rec: InvocationRecord) => void>()
  private readonly limiter: InvocationLimiter
  private readonly gate: TransactionGate
  private readonly txLimits: TransactionLimits
  /**
   * Extra rules for installing a version in a tenant (the marketplace's channel catalogs);
   * throws to refuse. Runs in the installing transaction.
   */
  installPolicy: ((tx: Tx, tenantId: string, version: PluginVersion) => Promise<void>) | undefined
  /** Workflows starting on or waiting for an event of the installation's tenant (set by the workflow runtime). */
  onWorkflowEvent:
    | ((tenantId: string, inst: Installation, version: PluginVersion, event: TrellisEvent) => Promise<void>)
    | undefined
  private closed = false

  constructor(
    private readonly k: KernelContext,
    readonly data: DataService,
    private readonly options: PluginHostOptions = {},
  ) {
    this.versions = new PluginVersions(k.db)
    this.recorder = new InvocationRecorder(k.db, k.logger)
    this.egress = new EgressGuard(options.egressAllow ?? k.config.egressAllow)
    const poolMax = k.db.embedded ? 1 : ((k.db.orm.config.get('pool') as { max?: number } | undefined)?.max ?? 10)
    const limits = resolvePluginLimits(k.config.pluginLimits, options, { embedded: k.db.embedded, poolMax })
    this.limiter = new InvocationLimiter({
      perTenant: limits.maxInvocationsPerTenant,
      perInstallation: limits.maxInvocationsPerInstallation,
    })
    this.gate = new TransactionGate(limits.transactionsPerTenant)
    this.txLimits = { idleMs: limits.transactionIdleMs, contendedIdleMs: limits.transactionContendedIdleMs }
    this.services = {
      data,
      egress: this.egress,
      secrets: (inst) => openSecrets(k.secrets, inst),
      callAction: (from, plugin, action, input) => this.callAction(from, plugin, action, input),
    }
  }

  /** Calls `listener` with every invocation record as it is made (`trellis-plugin dev` streams logs with it); returns an unsubscribe function. */
  onInvocation(listener: (rec: InvocationRecord) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** Invocations of the tenant running in this process now (the sandbox still has them). */
  runningInvocations(tenantId: string): number {
    return this.limiter.running(tenantId)
  }

  /** Starts watching for subscribing installations (so the event system hands plugins their events). */
  async start(): Promise<void> {
    await this.watchSubscribers()
  }

  /** The sandbox, started on first use. */
  sandbox(): Promise<Sandbox> {
    if (this.closed) throw KRN.INTERNAL()
    this.sandboxStarting ??= Sandbox.create({
      workers: this.options.sandboxWorkers ?? Math.min(2, availableParallelism()),
      quietWorkers: true,
      ...(this.options.sandboxLimits ? { limits: this.options.sandboxLimits } : {}),
    })
    return this.sandboxStarting
  }

  /** Loads a version's bundle in the sandbox (once) and returns the entries it declares. */
  async probe(bundle: {
    id: string
    version: string
    code: string
    sha256: string
    sourceMap?: string
  }): Promise<Record<string, string[]>> {
    const sandbox = await this.sandbox()
    return (await sandbox.load(bundle)).entries
  }

  private ensureLoaded(v: PluginVersion): Promise<unknown> {
    let p = this.loaded.get(v.id)
    if (!p) {
      p = this.probe({
        id: v.name,
        version: v.version,
        code: v.code,
        sha256: v.sha256,
        ...(v.sourceMap ? { sourceMap: v.sourceMap } : {}),
      })
      this.loaded.set(v.id, p)
      p.catch(() => this.loaded.delete(v.id))
    }
    return p
  }

  /** Forgets what is cached about a tenant's installations (after an install, update or uninstall). */
  forgetTenant(tenantId: string): void {
    this.tenants.delete(tenantId)
    this.settled.delete(tenantId)
    this.generations.set(tenantId, (this.generations.get(tenantId) ?? 0) + 1)
    void this.watchSubscribers()
  }

  /** The tenant's installations, active or disabled (cached briefly). */
  async installed(tenantId: string, tx?: Tx): Promise<TenantPlugins> {
    const ttl = this.options.installationTtlMs ?? 1000
    const fresh = this.settled.get(tenantId)
    if (fresh && Date.now() - fresh.at < ttl) return fresh
    let entry = this.tenants.get(tenantId)
    // Inside a transaction, never wait on a load that needs another connection: on the embedded
    // database (one connection) that load waits for this very transaction.
    if (entry && !tx) {
      const got = await entry.catch(() => undefined)
      if (got && Date.now() - got.at < ttl) return got
      if (this.tenants.get(tenantId) === entry) this.tenants.delete(tenantId)
    }
    const generation = (this.generations.get(tenantId) ?? 0) + 1
    this.generations.set(tenantId, generation)
    entry = (async () => {
      const load = (t: Tx) => t.sql<InstallationRow>(`select ${INSTALLATION_COLS} from plugin_installations`)
      const rows = tx ? await load(tx) : await this.k.db.inOrg(tenantId, load)
      const byId = new Map<string, Installation>()
      const byPlugin = new Map<string, Installation>()
      const byMount = new Map<string, Installation>()
      for (const r of rows) {
        const inst = toInstallation(r)
        byId.set(inst.id, inst)
        byPlugin.set(inst.plugin, inst)
        byMount.set(inst.mount, inst)
      }
      const loaded = { at: Date.now(), byId, byPlugin, byMount }
      // A load overtaken by a change (forgetTenant) or a newer load does not become the cache.
      if (this.generations.get(tenantId) === generation) this.settled.set(tenantId, loaded)
      return loaded
    })()
    this.tenants.set(tenantId, entry)
    entry.catch(() => this.tenants.get(tenantId) === entry && this.tenants.delete(tenantId))
    return entry
  }

  /** The installation's version, refusing a disabled installation or a blocked version. */
  async versionOf(tx: Tx, inst: Installation): Promise<PluginVersion> {
    if (inst.status !== 'active') throw PLG.INSTALLATION_DISABLED({ name: inst.plugin })
    return this.servable(inst, await this.versions.byId(tx, inst.versionId))
  }

  /** {@link versionOf} outside a transaction: a cached version costs no round trip. */
  async currentVersion(tenantId: string, inst: Installation): Promise<PluginVersion> {
    if (inst.status !== 'active') throw PLG.INSTALLATION_DISABLED({ name: inst.plugin })
    return this.servable(inst, await this.versions.get(tenantId, inst.versionId))
  }

  private servable(inst: Installation, v: PluginVersion | undefined): PluginVersion {
    if (!v) throw PLG.VERSION_NOT_FOUND({ name: inst.plugin })
    if (v.status === 'blocked') throw PLG.VERSION_BLOCKED({ name: v.name, version: v.version })
    if (v.status !== 'approved') throw PLG.VERSION_NOT_APPROVED({ name: v.name, version: v.version, status: v.status })
    return v
  }

  /** A specific version of an installation's plugin (refusing a disabled installation or a blocked version). */
  private async pinnedVersion(
    tenantId: string,
    tx: Tx | undefined,
    inst: Installation,
    versionId: string,
  ): Promise<PluginVersion> {
    if (inst.status !== 'active') throw PLG.INSTALLATION_DISABLED({ name: inst.plugin })
    const v = tx ? await this.versions.byId(tx, versionId) : await this.versions.get(tenantId, versionId)
    if (!v || v.name !== inst.plugin) throw PLG.VERSION_NOT_FOUND({ name: inst.plugin })
    if (v.status === 'blocked') throw PLG.VERSION_BLOCKED({ name: v.name, version: v.version })
    return v
  }

  private caps(inst: Installation): Capability[] {
    let caps = this.parsedCaps.get(inst)
    if (!caps) {
      caps = inst.capabilities.map(parseCapability).filter((c): c is Capability => !('error' in c))
      this.parsedCaps.set(inst, caps)
    }
    return caps
  }

  /**
   * Runs one entry of an installed plugin for its tenant. Everything it writes and emits —
   * including through actions it calls — commits together in one tenant transaction, or nothing
   * does; the transaction is opened at the first host call that needs the database, not while
   * plugin code merely runs (see docs/adr/0009-plugin-invocation-fairness.md). With hooks, it is opened
   * first, for `before`.
   */
  async invoke(req: InvokeInput): Promise<unknown>
  async invoke<T>(req: InvokeInput, hooks: InvokeHooks<T>): Promise<T | typeof SKIPPED>
  async invoke<T>(req: InvokeInput, hooks?: InvokeHooks<T>): Promise<unknown> {
    const leave = this.limiter.enter(req.tenantId, req.installation.id)
    const runs: InvocationTree['runs'] = new Set()
    const denials: InvocationTree['denials'] = new Map()
    try {
      try {
        return await this.invokeOnce(req, hooks, runs, denials)
      } catch (err) {
        // A worker lost under an invocation that never committed: roll back (done) and run it again once.
        if (!retryable(err)) throw err
        this.k.logger.warn(
          { tenantId: req.tenantId, plugin: req.installation.plugin, entry: req.entry },
          'sandbox worker lost under an invocation: running it again',
        )
        return await this.invokeOnce(req, hooks, runs, denials)
      }
    } finally {
      // Runs still going (the kernel stopped waiting for them) keep their slot until they end,
      // and refusals they make then are audited then.
      if (runs.size > 0) {
        void Promise.allSettled([...runs])
          .then(() => auditDenials(this.k, req, denials))
          .finally(leave)
      } else {
        leave()
        await auditDenials(this.k, req, denials)
      }
    }
  }

  private async invokeOnce<T>(
    req: InvokeInput,
    hooks: InvokeHooks<T> | undefined,
    runs: InvocationTree['runs'],
    denials: InvocationTree['denials'],
  ): Promise<unknown> {
    let idle: (err: unknown) => void = () => undefined
    const aborted = new Promise<never>((_, reject) => (idle = reject))
    aborted.catch(() => undefined)
    const tx = new InvocationTx(this.k, req.tenantId, this.gate, this.txLimits, (err) => idle(err))
    const tree: InvocationTree = { tx, tenantId: req.tenantId, caller: req.caller, uses: new Map(), denials, runs }
    try {
      if (hooks?.before && !(await tx.use((t) => hooks.before!(t)))) {
        await tx.commit(undefined, false)
        return SKIPPED
      }
      const version = await tx.ifOpen((open) =>
        req.versionId
          ? this.pinnedVersion(req.tenantId, open, req.installation, req.versionId)
          : open
            ? this.versionOf(open, req.installation)
            : this.currentVersion(req.tenantId, req.installation),
      )
      const running = this.run(
        { inst: req.installation, version, caps: this.caps(req.installation), tree, caller: req.caller, depth: 0 },
        req.entry,
        req.input,
      )
      const output = await Promise.race([running, aborted])
      if (!hooks?.after && tree.uses.size === 0 && !tx.started) {
        await tx.commit(undefined, false)
        return output
      }
      return await tx.commit(async (t) => {
        if (tree.uses.size) {
          await appendAudit(t, req.tenantId, {
            action: 'plugin.capability.used',
            actor: { kind: 'plugin', id: req.installation.plugin },
            target: { kind: 'plugin_installation', id: req.installation.id },
            data: {
              caller: { kind: req.caller.kind, id: req.caller.id },
              entry: req.entry,
              uses: [...tree.uses.values()],
            },
          })
        }
        return hooks?.after ? hooks.after(t, output) : output
      }, true)
    } catch (err) {
      await tx.rollback(err)
      throw err
    }
  }

  /** One sandboxed run within an invocation tree, as a span with the tenant, plugin and version. */
  private run(run: Running, entry: InvokeInput['entry'], input: unknown): Promise<unknown> {
    return tracer.startActiveSpan(
      `plugin ${entry.kind} ${entry.name}`,
      {
        attributes: {
          'tenant.id': run.tree.tenantId,
          'plugin.id': run.inst.plugin,
          'plugin.version': run.version.version,
          'plugin.installation': run.inst.id,
          'plugin.entry': `${entry.kind} ${entry.name}`,
        },
      },
      async (span) => {
        try {
          const running = this.runInSandbox(run, entry, input)
          const runs = run.tree.runs
          runs.add(running)
          const gone = () => runs.delete(running)
          running.then(gone, gone)
          return await running
        } catch (err) {
          span.setStatus({ code: SpanStatusCode.ERROR, message: isTrellisError(err) ? err.code : 'error' })
          throw err
        } finally {
          span.end()
        }
      },
    )
  }

  /** Runs the entry in the sandbox; records the invocation whatever the outcome. */
  private async runInSandbox(run: Running, entry: InvokeInput['entry'], input: unknown): Promise<unknown> {
    await this.ensureLoaded(run.version)
    const sandbox = await this.sandbox()
    const invocationId = uuidv7()
    const startedAt = new Date().toISOString()
    const caller = run.caller
    const record = (res: Pick<InvokeResult, 'metrics' | 'logs'> | undefined, error?: string) => {
      const rec: InvocationRecord = {
        id: invocationId,
        tenantId: run.tree.tenantId,
        installationId: run.inst.id,
        plugin: run.inst.plugin,
        version: run.version.version,
        entryKind: entry.kind,
        entryName: entry.name,
        callerKind: caller.kind,
        callerId: caller.id,
        startedAt,
        wallMs: res?.metrics?.wallMs ?? 0,
        cpuMs: res?.metrics?.cpuMs ?? 0,
        hostCalls: res?.metrics?.hostCalls ?? 0,
        outcome: error ? 'error' : 'ok',
        errorCode: error ?? null,
        logs: (res?.logs ?? []).map((l: LogLine) => ({
          level: l.level,
          message: l.message,
          ...(l.fields ? { fields: l.fields } : {}),
          time: l.time,
        })),
      }
      for (const l of this.listeners) l(rec)
      this.recorder.record(rec)
    }
    try {
      const result = await sandbox.invoke({
        bundle: { id: run.version.name, version: run.version.version },
        entry,
        input,
        context: {
          invocationId,
          tenantId: run.tree.tenantId,
          installationId: run.inst.id,
          caller,
          capabilities: run.inst.capabilities,
          settings: run.inst.settings as Record<string, JsonValue>,
        },
        onHostCall: (op, args) => runHostCall(this.services, run, op, args),
      })
      record(result)
      return result.output
    } catch (err) {
      const e = err as InvocationError
      record(
        e.metrics ? { metrics: e.metrics, logs: e.logs ?? [] } : undefined,
        isTrellisError(err) ? err.code : 'KRN_ERR_INTERNAL',
      )
      throw err
    }
  }

  /** `ctx.plugins.call`: the callee must be installed for the same tenant and expose the action. */
  private async callAction(from: Running, plugin: string, action: string, input: unknown): Promise<unknown> {
    const tree = from.tree
    if (from.depth + 1 > MAX_CALL_DEPTH) throw PLG.CALL_DEPTH_EXCEEDED({ depth: MAX_CALL_DEPTH })
    // With the invocation's transaction open, read through it: on the embedded database (one
    // connection) another transaction would wait for this one.
    const { inst, version } = await tree.tx.ifOpen(async (tx) => {
      const inst = (await this.installed(tree.tenantId, tx)).byPlugin.get(plugin)
      if (!inst) throw PLG.NOT_INSTALLED({ name: plugin })
      return { inst, version: tx ? await this.versionOf(tx, inst) : await this.currentVersion(tree.tenantId, inst) }
    })
    const declared = version.manifest.actions?.[action]
    if (!declared || !Object.hasOwn(version.manifest.actions!, action))
      throw KRN.NOT_FOUND({ what: `action ${plugin}#${action}` })
    checkSchema(`${version.id}:action-in:${action}`, declared.input, input ?? null, `input of ${plugin}#${action}`)
    const caller = { kind: 'plugin' as const, id: from.inst.plugin, permissions: from.caller.permissions }
    // Loading the callee's bundle is the kernel's time, not the plugin's: not idle.
    await tree.tx.busyWhile(() => this.ensureLoaded(version))
    const output = await this.run(
      { inst, version, caps: this.caps(inst), tree, caller, depth: from.depth + 1 },
      { kind: 'action', name: action },
      input ?? null,
    )
    checkSchema(`${version.id}:action-out:${action}`, declared.output, output, `output of ${plugin}#${action}`)
    return output
  }

  // --- events -------------------------------------------------------------------------------

  /** Installations of the tenant and the event types each subscribed to and was granted. */
  async subscriptions(tenantId: string): Promise<PluginSubscription[]> {
    const { byId } = await this.installed(tenantId)
    const out: PluginSubscription[] = []
    for (const inst of byId.values()) {
      if (inst.status !== 'active') continue
      const version = await this.versions.get(tenantId, inst.versionId)
      if (version?.status !== 'approved') continue
      const granted = this.caps(inst).flatMap((c) => (c.kind === 'events:subscribe' ? [c.pattern] : []))
      // Handlers, and the events its workflows start on or wait for.
      const wanted = [
        ...(version.manifest.events?.subscribes ?? []),
        ...Object.values(version.manifest.workflows ?? {}).flatMap((w) => [
          ...(w.start?.events ?? []),
          ...(w.waitsFor ?? []),
        ]),
      ]
      const patterns = [...new Set(wanted.filter((s) => granted.some((g) => matchesEventPattern(g, s) || g === s)))]
      if (patterns.length) out.push({ pluginId: inst.id, patterns })
    }
    return out
  }

  /** Runs the installation's handler for the event; plugin failures are recorded, platform failures retried. */
  async deliver(tenantId: string, installationId: string, event: TrellisEvent): Promise<void> {
    const inst = (await this.installed(tenantId)).byId.get(installationId)
    if (inst?.status !== 'active') return
    const version = await this.versions.get(tenantId, inst.versionId)
    if (!version) return
    const granted = this.caps(inst).flatMap((c) => (c.kind === 'events:subscribe' ? [c.pattern] : []))
    if (!granted.some((g) => matchesEventPattern(g, event.type))) return
    await this.onWorkflowEvent?.(tenantId, inst, version, event)
    const name = (version.manifest.events?.subscribes ?? []).find(
      (s) => s === event.type || matchesEventPattern(s, event.type),
    )
    if (!name) return
    try {
      await this.invoke({
        tenantId,
        installation: inst,
        entry: { kind: 'event', name },
        input: event,
        caller: { kind: 'event', id: event.id, permissions: [] },
      })
    } catch (err) {
      if (isTrellisError(err) && !INFRASTRUCTURE.has(err.code)) {
        this.k.logger.warn(
          { tenantId, plugin: inst.plugin, eventId: event.id, code: err.code },
          'plugin event handler failed',
        )
        return
      }
      throw err
    }
  }

  /** Hands the event system this host as its plugin sink as soon as any installation subscribes to events. */
  private async watchSubscribers(): Promise<void> {
    if (this.closed || this.sinkSet) return
    const rows = await this.k.db
      .inOrg(
        null,
        (tx) =>
          tx.sql<{ any: boolean }>(
            `select exists (select 1 from plugin_installations i join plugin_versions v on v.id = i.version_id
              where i.status = 'active' and (jsonb_array_length(coalesce(v.manifest -> 'events' -> 'subscribes', '[]'::jsonb)) > 0 or v.manifest -> 'workflows' is not null)) as any`,
          ),
        'trellis_events',
      )
      .catch(() => [{ any: false }])
    if (rows[0]?.any) {
      this.k.events.setPluginSink(this)
      this.sinkSet = true
      clearInterval(this.sinkTimer)
      this.sinkTimer = undefined
    } else if (!this.sinkTimer) {
      // Another process may install one: look again now and then.
      this.sinkTimer = setInterval(() => void this.watchSubscribers(), 5000)
      this.sinkTimer.unref()
    }
  }

  async close(): Promise<void> {
    this.closed = true
    clearInterval(this.sinkTimer)
    await this.recorder.flush()
    const sandbox = await this.sandboxStarting?.catch(() => undefined)
    await sandbox?.close()
  }
}
