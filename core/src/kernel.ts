import type { Logger } from 'pino'
import type { Api } from './http/types.js'
import { loadConfig, type KernelConfig } from './config.js'
import { Database } from './db/database.js'
import { AuditSealer } from './audit/sealer.js'
import { SigningKeys } from './identity/signing-keys.js'
import { AccessTokens } from './identity/tokens.js'
import { OrgStatusCache } from './identity/org-status.js'
import { LoginLimiter } from './identity/login-limiter.js'
import { SecretBox } from './crypto/secret-box.js'
import { syncBuiltinRoles } from './identity/roles.js'
import { createLogger } from './observability/logger.js'
import { buildApp, type HttpOptions } from './http/app.js'
import { orgTx, type KernelContext } from './kernel-context.js'
import type { TenantTx } from './plugins/tenant-tx.js'
import { KRN } from './errors.js'
import { EventSystem, type EventSystemOptions } from './events/event-system.js'
import { AuditCheckpointer } from './audit/checkpoints.js'
import { BullMqJobQueue } from './events/bullmq-queue.js'
import { PgJobQueue } from './events/pg-queue.js'
import type { JobQueue } from './events/queue.js'
import { EgressGuard } from './egress/egress-guard.js'
import { PluginHost, type PluginHostOptions } from './plugins/plugin-host.js'
import { CollectionStore } from './plugins/data/index.js'
import type { Extension } from './extension-api/define.js'
import { kernelServices, registerExtensions, type Contributions } from './extension-api/wire.js'
import { WorkflowEngine, type EngineOptions } from './workflows/engine.js'

export interface KernelOptions extends HttpOptions {
  config?: KernelConfig
  logger?: Logger
  /** Where the embedded database lives; `memory://` for a throw-away one. Defaults to <dataDir>/pgdata. */
  embeddedDir?: string
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
  /** Packages extending the kernel through the extension API (the composition root passes the marketplace); default none. */
  extensions?: Extension[]
}

/** A running kernel: its services and its HTTP API (not yet listening). */
export interface Kernel {
  ctx: KernelContext
  app: Api
  /** The packages extending this kernel. */
  extensions: Extension[]
  /** What they registered at the extension points (`trellis start --demo` runs the demo seeders). */
  contributions: Contributions
  /** Starts listening; resolves to the base URL. */
  listen(): Promise<string>
  close(): Promise<void>
}

/** Opens the database, brings the schema up to date, loads keys, builds the API. */
export async function createKernel(options: KernelOptions = {}): Promise<Kernel> {
  const config = options.config ?? loadConfig()
  const logger = options.logger ?? createLogger(config.logLevel)
  const db = await Database.open({ ...config, embeddedDir: options.embeddedDir, poolMax: options.poolMax }, logger)
  let events: EventSystem | undefined
  let plugins: PluginHost | undefined
  let workflows: WorkflowEngine | undefined
  try {
    if (options.migrate ?? db.embedded) await db.migrate('up')
    else {
      const { pending } = await db.migrationStatus()
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
    const sealer = new AuditSealer(db, logger, options.auditSealDelayMs)
    sealer.start()
    const limits = options.loginLimits
    const queueName = options.events?.queueName ?? 'trellis-events'
    const queue: JobQueue =
      options.events?.queue ??
      (config.redisUrl
        ? new BullMqJobQueue(config.redisUrl, queueName, config.queuePrefix, logger, {
            tenantCap: config.queueTenantCap,
          })
        : new PgJobQueue(db, queueName, logger, undefined, { tenantCap: config.queueTenantCap }))
    const eventSystem = new EventSystem(
      db,
      queue,
      secrets,
      new EgressGuard(options.events?.egressAllow ?? config.egressAllow),
      { retryScheduleMs: config.webhookRetryScheduleMs, ...options.events },
      logger,
    )
    events = eventSystem
    const tenantTx: TenantTx = (orgId, fn) => orgTx({ db, sealer, events: eventSystem }, orgId, fn)
    plugins = new PluginHost(
      { db, logger, config, secrets, tenantTx, events: eventSystem, data: new CollectionStore() },
      { egressAllow: options.events?.egressAllow, ...options.plugins },
    )
    await plugins.start()
    const workflowQueue: JobQueue =
      options.workflows?.queue ??
      (config.redisUrl
        ? new BullMqJobQueue(config.redisUrl, `${queueName}-workflows`, config.queuePrefix, logger)
        : new PgJobQueue(db, `${queueName}-workflows`, logger))
    workflows = new WorkflowEngine({ db, logger, tenantTx, queue: workflowQueue, plugins }, options.workflows)
    workflows.start()
    const ctx: KernelContext = {
      config,
      logger,
      db,
      sealer,
      keys,
      tokens: new AccessTokens(keys, config.publicUrl),
      orgStatus: new OrgStatusCache(db),
      loginLimiter: limits ? new LoginLimiter(limits.perAccount, limits.perIp, limits.windowMs) : new LoginLimiter(),
      secrets,
      events: eventSystem,
      plugins,
      workflows,
      revokedSessions: new Set(),
    }
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
    checkpointer.start(config.auditCheckpointIntervalMs ?? 0)
    const mounted = { name: 'extensions', routes: (v1: Api) => contributions.routes.forEach((add) => add(v1)) }
    const app = await buildApp(ctx, { ...options, extensions: [mounted] })
    const jobs = contributions.jobs
    for (const job of jobs) job.start()
    let closed = false
    return {
      ctx,
      app,
      extensions,
      contributions,
      async listen() {
        return app.listen({ port: config.port, host: config.host })
      },
      async close() {
        if (closed) return
        closed = true
        await app.close()
        // Background jobs stop before what they use (the sandbox, the database) closes.
        await Promise.all(jobs.map((job) => job.stop()))
        await workflows!.close()
        await checkpointer.close()
        await eventSystem.close()
        await plugins!.close()
        await sealer.close()
        await db.close()
      },
    }
  } catch (err) {
    await events?.close().catch(() => {})
    await workflows?.close().catch(() => {})
    await plugins?.close().catch(() => {})
    await db.close()
    throw err
  }
}
