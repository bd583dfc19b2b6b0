import type { GenerationJobs } from '../ai/generation-jobs.js'
import type { Logger } from 'pino'
import { parseCapability, type Capability } from '@trellis/plugin-sdk'
import type { Sandbox } from '@trellis/sandbox'
import type { Database, Tx } from '../db/database.js'
import type { KernelConfig } from '../config.js'
import type { SecretBox } from '../crypto/secret-box.js'
import { appendAudit } from '../audit/audit-log.js'
import { EgressGuard } from '../egress/index.js'
import type { PluginEventSink } from '../events/subscribers.js'
import { InvocationTx, TransactionGate, type TransactionLimits } from './invocation-tx.js'
import { InvocationLimiter } from './invocation-limits.js'
import { auditDenials, retryable } from './invocation-outcomes.js'
import { resolvePluginLimits, type PluginLimits } from './plugin-limits.js'
import { openSecrets, type Installation } from './installations.js'
import { PluginVersions, type PluginVersion } from './versions.js'
import { InvocationRecorder, type InvocationRecord } from './invocation-recorder.js'
import type { AiService } from '../ai/service.js'
import { KnowledgeService } from '../knowledge/service.js'
import { maskPersonal, personalFieldNames } from '../governance/personal-masking.js'
import { runHostCall, type DataService, type HostServices, type InvocationTree } from './host-calls.js'
import { SKIPPED, type InvokeHooks, type InvokeInput } from './invocation-types.js'
import { InvocationRuns, type BundleToLoad, type SandboxOptions } from './invocation-runs.js'
import { TenantInstallations, type TenantPlugins } from './tenant-installations.js'
import { ServableVersions } from './servable-versions.js'
import { callAction } from './action-calls.js'
import { PluginEventDelivery, type PluginEventConsumer } from './plugin-events.js'
import type { TenantTx } from './tenant-tx.js'
import type { WorkflowJobs } from './workflow-start.js'

export { SKIPPED, type EntryKind, type InvokeHooks, type InvokeInput } from './invocation-types.js'
export type { PluginEventConsumer } from './plugin-events.js'
export type { TenantPlugins } from './tenant-installations.js'

/** Options of the host; its invocation and transaction limits (PluginLimits) override TRELLIS_PLUGIN_*. */
export interface PluginHostOptions extends PluginLimits, SandboxOptions {
  /** Hosts plugins may reach although they resolve to private addresses (tests allow-list 127.0.0.1). */
  egressAllow?: string[]
  /** How long a tenant's installations are cached (other processes' changes show within it). */
  installationTtlMs?: number
}

/** Exactly what the plugin host uses of the kernel. */
export interface PluginHostDeps {
  db: Database
  logger: Logger
  config: Pick<KernelConfig, 'egressAllow' | 'pluginLimits'>
  /** Opens installations' secrets. */
  secrets: SecretBox
  /** The tenant transaction every invocation's writes commit in. */
  tenantTx: TenantTx
  /** The event system: the host becomes its plugin sink once any installation subscribes. */
  events: { setPluginSink(sink: PluginEventSink): void }
  /** Plugin collections (ctx.data). */
  data: DataService
  /** The governed AI service behind ai:complete and ai:embed. */
  ai?: AiService
  /** Knowledge bases behind knowledge:search and knowledge:write (default: over `db` and `ai`). */
  knowledge?: KnowledgeService
}

/**
 * The kernel side of plugins: runs installed plugin versions in the sandbox for their tenants,
 * answers their host calls (capability-checked, audited, in one transaction per invocation),
 * keeps invocation records, and delivers subscribed events to them.
 */
export class PluginHost {
  readonly versions: PluginVersions
  readonly recorder: InvocationRecorder
  readonly data: DataService
  /** The egress guard of ctx.http.fetch (grants are checked against its allow-list). */
  readonly egress: EgressGuard
  /** The host's plugin event sink (the event system is handed it once any installation subscribes). */
  readonly eventSink: PluginEventDelivery
  /**
   * Extra rules for installing a version in a tenant (the marketplace's channel catalogs);
   * throws to refuse. Runs in the installing transaction.
   */
  installPolicy: ((tx: Tx, tenantId: string, version: PluginVersion) => Promise<void>) | undefined
  private readonly installations: TenantInstallations
  private readonly servable: ServableVersions
  private readonly runs: InvocationRuns
  private readonly parsedCaps = new WeakMap<Installation, Capability[]>()
  private readonly limiter: InvocationLimiter
  private readonly gate: TransactionGate
  private readonly txLimits: TransactionLimits
  private workflowJobs: WorkflowJobs | undefined
  private generationJobs: GenerationJobs | undefined

  constructor(
    private readonly deps: PluginHostDeps,
    options: PluginHostOptions = {},
  ) {
    const { db, config } = deps
    this.data = deps.data
    this.versions = new PluginVersions(db)
    this.servable = new ServableVersions(this.versions)
    this.recorder = new InvocationRecorder(db, deps.logger)
    this.egress = new EgressGuard(options.egressAllow ?? config.egressAllow)
    this.installations = new TenantInstallations(db, options.installationTtlMs ?? 1000)
    const poolMax = db.embedded ? 1 : ((db.orm.config.get('pool') as { max?: number } | undefined)?.max ?? 10)
    const limits = resolvePluginLimits(config.pluginLimits, options, { embedded: db.embedded, poolMax })
    this.limiter = new InvocationLimiter({
      perTenant: limits.maxInvocationsPerTenant,
      perInstallation: limits.maxInvocationsPerInstallation,
    })
    this.gate = new TransactionGate(limits.transactionsPerTenant)
    this.txLimits = { idleMs: limits.transactionIdleMs, contendedIdleMs: limits.transactionContendedIdleMs }
    const caps = (inst: Installation) => this.caps(inst)
    const services: HostServices = {
      data: deps.data,
      egress: this.egress,
      secrets: (inst) => openSecrets(deps.secrets, inst),
      callAction: (from, plugin, action, input) =>
        callAction(
          { installations: this.installations, versions: this.servable, runs: this.runs, caps },
          from,
          plugin,
          action,
          input,
        ),
      workflowJobs: () => this.workflowJobs,
      generations: () => this.generationJobs,
      ai: deps.ai,
      embedded: db.embedded,
      knowledge: deps.knowledge ?? new KnowledgeService(db, deps.ai),
      metrics: {
        installed: (tenantId, tx) => this.installations.of(tenantId, tx),
        versionOf: (tx, inst) => this.servable.versionOf(tx, inst),
      },
    }
    this.runs = new InvocationRuns(
      options,
      this.recorder,
      (run, op, args) => runHostCall(services, run, op, args),
      (run, value) => {
        const tx = run.tree.tx.current
        return maskPersonal(value, tx ? deps.data.personalValues(tx) : [], personalFieldNames(run.version.manifest))
      },
    )
    this.eventSink = new PluginEventDelivery({
      // Looking for subscribing installations is background work: it never takes a request's connection.
      db: db.background,
      logger: deps.logger,
      events: deps.events,
      installations: this.installations,
      versions: this.versions,
      caps,
      invoke: (req) => this.invoke(req),
    })
  }

  /** Calls `listener` with every invocation record as it is made (`trellis-plugin dev` streams logs with it); returns an unsubscribe function. */
  onInvocation(listener: (rec: InvocationRecord) => void): () => void {
    return this.runs.onInvocation(listener)
  }

  /**
   * Adds a consumer of the events installations receive (the workflow runtime registers itself
   * here when it starts); returns the function that removes it.
   */
  onPluginEvent(consumer: PluginEventConsumer): () => void {
    return this.eventSink.addConsumer(consumer)
  }

  /** Sets how instances that plugins start (`ctx.workflows.start`) get their first step queued (the workflow runtime, when it starts). */
  onWorkflowStart(enqueue: WorkflowJobs): void {
    this.workflowJobs = enqueue
  }

  /** Sets how long generations (`ctx.ai.generate`) get queued (the kernel's AI queue, when it starts). */
  onAiGeneration(enqueue: GenerationJobs): void {
    this.generationJobs = enqueue
  }

  /** Invocations of the tenant running in this process now (the sandbox still has them). */
  runningInvocations(tenantId: string): number {
    return this.limiter.running(tenantId)
  }

  /** Starts watching for subscribing installations (so the event system hands plugins their events). */
  async start(): Promise<void> {
    await this.eventSink.watch()
  }

  /** The sandbox, started on first use. */
  sandbox(): Promise<Sandbox> {
    return this.runs.sandbox()
  }

  /** Loads a version's bundle in the sandbox (once) and returns the entries it declares. */
  probe(bundle: BundleToLoad): Promise<Record<string, string[]>> {
    return this.runs.probe(bundle)
  }

  /**
   * Forgets what is cached about a tenant's installations (after an install, update or
   * uninstall). `subscriptions: false` when the change cannot have made an installation
   * subscribe (new settings of an installation whose status stayed): then the event system's
   * plugin sink is not looked for again.
   */
  forgetTenant(tenantId: string, opts: { subscriptions?: boolean } = {}): void {
    this.installations.forget(tenantId)
    if (opts.subscriptions !== false) void this.eventSink.watch()
  }

  /** The tenant's installations, active or disabled (cached briefly). */
  installed(tenantId: string, tx?: Tx): Promise<TenantPlugins> {
    return this.installations.of(tenantId, tx)
  }

  /** The installation's version, refusing a disabled installation or a blocked version. */
  versionOf(tx: Tx, inst: Installation): Promise<PluginVersion> {
    return this.servable.versionOf(tx, inst)
  }

  /** {@link versionOf} outside a transaction: a cached version costs no round trip. */
  currentVersion(tenantId: string, inst: Installation): Promise<PluginVersion> {
    return this.servable.currentVersion(tenantId, inst)
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
        this.deps.logger.warn(
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
          .then(() => auditDenials(this.deps, req, denials))
          .finally(leave)
      } else {
        leave()
        await auditDenials(this.deps, req, denials)
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
    const tx = new InvocationTx(this.deps, req.tenantId, this.gate, this.txLimits, (err) => idle(err))
    const tree: InvocationTree = {
      tx,
      tenantId: req.tenantId,
      caller: req.caller,
      uses: new Map(),
      denials,
      runs,
      afterCommit: [],
      afterRollback: [],
    }
    try {
      if (hooks?.before && !(await tx.use((t) => hooks.before!(t)))) {
        await tx.commit(undefined, false)
        return SKIPPED
      }
      const version = await tx.ifOpen((open) =>
        req.versionId
          ? this.servable.pinned(req.tenantId, open, req.installation, req.versionId)
          : this.servable.of(req.tenantId, open, req.installation),
      )
      const running = this.runs.run(
        { inst: req.installation, version, caps: this.caps(req.installation), tree, caller: req.caller, depth: 0 },
        req.entry,
        req.input,
      )
      const output = await Promise.race([running, aborted])
      if (!hooks?.after && tree.uses.size === 0 && !tx.started) {
        await tx.commit(undefined, false)
        return output
      }
      const committed = await tx.commit(async (t) => {
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
      for (const after of tree.afterCommit)
        await after().catch((err: unknown) =>
          // The instance is committed: the stalled-step sweep queues its step if this failed.
          this.deps.logger.warn({ err, tenantId: req.tenantId }, 'queueing a started workflow failed'),
        )
      return committed
    } catch (err) {
      await tx.rollback(err)
      for (const after of tree.afterRollback ?? [])
        await after().catch((e: unknown) =>
          this.deps.logger.warn({ err: e, tenantId: req.tenantId }, 'keeping an AI record after a rollback failed'),
        )
      throw err
    }
  }

  async close(): Promise<void> {
    this.eventSink.close()
    await this.recorder.flush()
    await this.runs.close()
  }
}
