import type { Logger } from 'pino'
import type { Api } from './http/types.js'
import { loadConfig, type KernelConfig, type ProcessRole } from './config.js'
import { Database } from './db/database.js'
import { AuditSealer } from './audit/sealer.js'
import { TableUpkeep, type TableUpkeepOptions } from './db/table-upkeep.js'
import { SigningKeys } from './identity/signing-keys.js'
import { AccessTokens } from './identity/tokens.js'
import { OrgStatusCache } from './identity/org-status.js'
import { LoginLimiter } from './identity/login-limiter.js'
import { SecretBox } from './crypto/secret-box.js'
import { Mailer } from './mail/mailer.js'
import { syncBuiltinRoles } from './identity/roles.js'
import { createLogger } from './observability/logger.js'
import { buildApp, type HttpOptions } from './http/app.js'
import { orgTx, type KernelContext } from './kernel-context.js'
import type { TenantTx } from './plugins/tenant-tx.js'
import { KRN } from './errors.js'
import { EventSystem, type EventSystemOptions } from './events/event-system.js'
import { AuditCheckpointer } from './audit/checkpoints.js'
import { PgJobQueue } from './events/pg-queue.js'
import type { JobQueue } from './events/queue.js'
import { EgressGuard } from './egress/egress-guard.js'
import { PluginHost, type PluginHostOptions } from './plugins/plugin-host.js'
import { AccessReviewJob, governedStore, RetentionJob, type RetentionJobOptions } from './governance/index.js'
import type { Extension } from './extension-api/define.js'
import { kernelServices, registerExtensions, type Contributions } from './extension-api/wire.js'
import { KernelAiService, type AiServiceOptions } from './ai/ai-service.js'
import { AiGenerations, type AiGenerationsOptions } from './ai/generation-jobs.js'
import { KnowledgeService } from './knowledge/service.js'
import { WorkflowEngine, type EngineOptions } from './workflows/engine.js'
import { InsightsScheduler } from './insights/scheduler.js'
import { openSharedState, type SharedState } from './scale/shared-state.js'
import { SessionRevocations } from './scale/session-revocations.js'
import { countingQueue, processMetrics } from './scale/process-metrics.js'
import { listenForVersionChanges } from './scale/version-broadcast.js'
import { changeFeed } from './scale/change-feed.js'
import { buildWorkerApp } from './scale/worker-app.js'
import { drainHttp } from './scale/drain.js'

export interface KernelOptions extends HttpOptions {
  config?: KernelConfig
  logger?: Logger
  /** Where the embedded database lives; `memory://` for a throw-away one. Defaults to <dataDir>/pgdata. */
  embeddedDir?: string
  /**
   * A migrated embedded database (the file `embeddedTemplate()` returns) a new embedded database
   * starts from instead of an empty one: seconds faster than creating and migrating one. Ignored
   * on PostgreSQL and when the data directory already holds a database; migrations still run.
   */
  embeddedTemplate?: string
  /** Run pending migrations first. Default: on the embedded database only. */
  migrate?: boolean
  /** Database pool size (PostgreSQL only). */
  poolMax?: number
  /** How long after a commit its audit entries are sealed when the sealer was idle (under steady writes it makes one pass a second: larger batches cost the database less). */
  auditSealDelayMs?: number
  /** Login attempt limits (tests lower them). */
  loginLimits?: { perAccount: number; perIp: number; windowMs: number }
  /** Event pipeline tuning (tests shorten the sweep and the retry schedule). */
  events?: Partial<EventSystemOptions> & { queueName?: string; egressAllow?: string[]; queue?: JobQueue }
  /** Plugin host tuning (tests use one sandbox worker). */
  plugins?: PluginHostOptions
  /** Workflow runtime tuning (tests sweep more often). */
  workflows?: EngineOptions & { queue?: JobQueue }
  /** How often (by the workflow clock) worker processes refresh rollups and run alert rules; default 15 minutes. */
  insights?: { everyMs?: number }
  /** The retention job's schedule and clock; `intervalMs: 0` leaves it off (tests run it themselves). */
  retention?: RetentionJobOptions
  /** AI service tuning (tests shorten the provider timeout). */
  ai?: AiServiceOptions
  /** How often the kernel analyzes and vacuums tables where autovacuum does not run (ADR 0109); `everyMs: 0` leaves it off. */
  upkeep?: TableUpkeepOptions
  /** Long generations' queue worker (ADR 0066). */
  aiGenerations?: AiGenerationsOptions
  /** Packages extending the kernel through the extension API (the composition root passes the marketplace); default none. */
  extensions?: Extension[]
}

/** A running kernel: its services and its HTTP API (not yet listening). */
export interface Kernel {
  ctx: KernelContext
  /** What this process runs (TRELLIS_ROLE); a worker's `app` serves only /healthz, /readyz and /metrics. */
  role: ProcessRole
  app: Api
  /** The packages extending this kernel. */
  extensions: Extension[]
  /** What they registered at the extension points (`trellis start --demo` runs the demo seeders). */
  contributions: Contributions
  /** Starts listening; resolves to the base URL. */
  listen(): Promise<string>
  /** True once close() began: /readyz answers 503 while in-flight requests and jobs finish. */
  readonly draining: boolean
  /** Drains (stops accepting, finishes in-flight requests and running jobs within the drain deadline) and stops. */
  close(): Promise<void>
}

/** Opens the database, brings the schema up to date, loads keys, builds the API. */
export async function createKernel(options: KernelOptions = {}): Promise<Kernel> {
  const config = options.config ?? loadConfig()
  const logger = options.logger ?? createLogger(config.logLevel)
  const role: ProcessRole = config.role ?? 'all'
  // An API process consumes no jobs and runs no sweeps; a worker serves no API (docs/operations.md).
  const consume = role !== 'api'
  processMetrics.setRole(role)
  const db = await Database.open(
    {
      ...config,
      embeddedDir: options.embeddedDir,
      embeddedTemplate: options.embeddedTemplate,
      poolMax: options.poolMax,
    },
    logger,
  )
  let shared: SharedState | undefined
  let events: EventSystem | undefined
  let plugins: PluginHost | undefined
  let workflows: WorkflowEngine | undefined
  // Background work started before a later step fails is stopped again, newest first, so a
  // refused kernel (an extension's registration throws) leaves no timer or poller behind.
  const stopOnFailure: Array<() => unknown> = []
  try {
    if (options.migrate ?? db.embedded) await db.migrate('up')
    else {
      const pending = await db.unappliedMigrations()
      if (pending.length)
        throw KRN.CONFIG_INVALID({
          variable: 'DATABASE_URL',
          reason: `the database needs migrations (${pending.join(', ')}): run trellis migrate up`,
        })
    }
    await db.inOrg(null, (tx) => syncBuiltinRoles(tx), 'trellis_bootstrap')
    const secrets = new SecretBox(config.secretKey)
    const keys = new SigningKeys(db, secrets)
    await keys.load()
    const upkeep = new TableUpkeep(db, logger, options.upkeep)
    if (consume) upkeep.start()
    stopOnFailure.push(() => upkeep.close())
    const sealer = new AuditSealer(db.background, logger, options.auditSealDelayMs)
    if (consume) sealer.start(role === 'worker' ? 1000 : undefined)
    else sealer.leaveToWorkers()
    shared = openSharedState(config.redisUrl, config.queuePrefix, logger)
    // BullMQ is loaded only where Redis is configured: it is a good part of a process's start.
    const BullMqJobQueue = config.redisUrl ? (await import('./events/bullmq-queue.js')).BullMqJobQueue : undefined
    const limits = options.loginLimits
    const queueName = options.events?.queueName ?? 'trellis-events'
    const queue: JobQueue = countingQueue(
      options.events?.queue ??
        (config.redisUrl
          ? new BullMqJobQueue!(config.redisUrl, queueName, config.queuePrefix, logger, {
              tenantCap: config.queueTenantCap,
            })
          : new PgJobQueue(db.background, queueName, logger, undefined, { tenantCap: config.queueTenantCap })),
      'events',
    )
    const eventSystem = new EventSystem(
      db,
      queue,
      secrets,
      new EgressGuard(options.events?.egressAllow ?? config.egressAllow),
      { retryScheduleMs: config.webhookRetryScheduleMs, ...options.events, ...(consume ? {} : { worker: false }) },
      logger,
    )
    events = eventSystem
    // Workflow steps, AI work and scheduled jobs may act before their first statement: the
    // organisation's status is read before their body runs. A plugin invocation opens its
    // transaction at its first host call, so the check rides with that call's statement (ADR 0112).
    const tx = { db, sealer, events: eventSystem }
    const tenantTx: TenantTx = (orgId, fn) => orgTx(tx, orgId, fn, { statusFirst: true })
    const invocationTx: TenantTx = (orgId, fn) => orgTx(tx, orgId, fn)
    const ai = new KernelAiService(
      {
        db,
        tenantTx,
        secrets,
        egress: new EgressGuard(options.events?.egressAllow ?? config.egressAllow),
        logger,
        modelChanges: changeFeed(shared, 'ai-models'),
      },
      options.ai,
    )
    const knowledge = new KnowledgeService(db, ai)
    plugins = new PluginHost(
      {
        db,
        logger,
        config,
        secrets,
        tenantTx: invocationTx,
        events: eventSystem,
        data: governedStore(config.secretKey),
        ai,
        knowledge,
      },
      { egressAllow: options.events?.egressAllow, ...options.plugins },
    )
    await plugins.start()
    const workflowQueue: JobQueue = countingQueue(
      options.workflows?.queue ??
        (config.redisUrl
          ? new BullMqJobQueue!(config.redisUrl, `${queueName}-workflows`, config.queuePrefix, logger)
          : // Polled on the background pool; added to by requests on theirs (ADR 0098).
            new PgJobQueue(db.background, `${queueName}-workflows`, logger, undefined, { adds: db })),
      'workflows',
    )
    workflows = new WorkflowEngine(
      { db, background: db.background, logger, tenantTx, queue: workflowQueue, plugins },
      options.workflows,
    )
    workflows.start(consume)
    // Long generations (ADR 0066): queued by committed invocations, run by workers.
    const generations = new AiGenerations(
      {
        ai,
        db,
        tenantTx,
        logger,
        queue: countingQueue(
          config.redisUrl
            ? new BullMqJobQueue!(config.redisUrl, `${queueName}-ai`, config.queuePrefix, logger)
            : new PgJobQueue(db.background, `${queueName}-ai`, logger, undefined, { adds: db }),
          'ai',
        ),
      },
      options.aiGenerations,
    )
    plugins.onAiGeneration(generations.enqueue)
    generations.start(consume)
    stopOnFailure.push(() => generations.close())
    const ctx: KernelContext = {
      config,
      logger,
      db,
      sealer,
      keys,
      tokens: new AccessTokens(keys, config.publicUrl),
      orgStatus: new OrgStatusCache(db),
      loginLimiter: new LoginLimiter(limits?.perAccount, limits?.perIp, limits?.windowMs, shared),
      secrets,
      events: eventSystem,
      plugins,
      workflows,
      mailer: new Mailer(config.mail, logger, config.publicUrl),
      revokedSessions: new SessionRevocations(shared),
      ai,
      knowledge,
      shared,
    }
    // A version's status changed in another process (the kill switch): drop the cached copy now.
    await listenForVersionChanges(shared, (id) => plugins!.versions.forget(id))
    const extensions = options.extensions ?? []
    const contributions = await registerExtensions(kernelServices(ctx), extensions)
    if (contributions.installPolicies.length) {
      const policies = contributions.installPolicies
      plugins.installPolicy = async (tx, tenantId, version) => {
        for (const policy of policies) await policy(tx, tenantId, version)
      }
    }
    eventSystem.start()
    const checkpointer = new AuditCheckpointer({
      db,
      keys,
      events: eventSystem,
      dir: config.auditCheckpointDir,
      logger,
    })
    if (consume) checkpointer.start(config.auditCheckpointIntervalMs ?? 0)
    stopOnFailure.push(() => checkpointer.close())
    // Retention policies and legal holds (docs/governance.md): worker work, hourly.
    const retention = new RetentionJob(
      { db: db.background, orgTx: (org, fn, o) => orgTx(ctx, org, fn, o), logger },
      options.retention,
    )
    if (consume && options.retention?.intervalMs !== 0) retention.start()
    stopOnFailure.push(() => retention.close())
    // Periodic access review (docs/governance.md): worker work, daily by the workflow clock.
    const accessReviews = new AccessReviewJob({ db: db.background, orgTx: tenantTx, clock: workflows.clock, logger })
    if (consume) accessReviews.start()
    stopOnFailure.push(() => accessReviews.close())
    const insights = new InsightsScheduler({ db, orgTx: tenantTx, plugins, clock: workflows.clock, logger })
    if (consume) insights.start(options.insights?.everyMs)
    stopOnFailure.push(() => insights.close())
    let draining = false
    const isDraining = () => draining
    const mounted = {
      name: 'extensions',
      routes: (v1: Api) => contributions.routes.forEach((add) => add(v1)),
      pages: async (app: Api) => {
        for (const add of contributions.pages) await add(app)
      },
    }
    const app =
      role === 'worker'
        ? await buildWorkerApp(ctx, isDraining)
        : await buildApp(ctx, { ...options, extensions: [mounted], draining: isDraining })
    // Extensions' background jobs (marketplace checks, and later AI, rollups, forecasts) are worker work.
    const jobs = consume ? contributions.jobs : []
    for (const job of jobs) job.start()
    let closed = false
    const deadline = config.drainTimeoutMs ?? 25_000
    return {
      ctx,
      role,
      app,
      extensions,
      contributions,
      get draining() {
        return draining
      },
      async listen() {
        return app.listen({ port: config.port, host: config.host })
      },
      async close() {
        if (closed) return
        closed = true
        draining = true
        processMetrics.draining.set(1)
        // Stop accepting; in-flight requests finish (up to the deadline, then their connections are cut).
        await drainHttp(app, deadline, logger)
        await ctx.mailer.close()
        // Background jobs stop before what they use (the sandbox, the database) closes. Queues
        // stop taking jobs and wait for running ones; one still running at the deadline is handed
        // back (its lock or claim expires and another worker runs it again).
        const stopWork = (async () => {
          await Promise.all(jobs.map((job) => job.stop()))
          await insights.close()
          await workflows!.close()
          await generations.close()
          await checkpointer.close()
          await retention.close()
          accessReviews.close()
          await eventSystem.close()
        })()
        const timedOut = await Promise.race([
          stopWork.then(() => false),
          new Promise<boolean>((r) => setTimeout(() => r(true), deadline).unref()),
        ])
        if (timedOut) logger.warn({ deadlineMs: deadline }, 'jobs still running at the drain deadline are handed back')
        await plugins!.close()
        await sealer.close()
        await upkeep.close()
        await shared!.close()
        await db.close()
      },
    }
  } catch (err) {
    for (const stop of stopOnFailure.reverse()) await (async () => stop())().catch(() => {})
    await events?.close().catch(() => {})
    await workflows?.close().catch(() => {})
    await plugins?.close().catch(() => {})
    await shared?.close().catch(() => {})
    await db.close()
    throw err
  }
}
