import type { Logger } from 'pino'
import type { KernelConfig } from './config.js'
import type { Database, Tx } from './db/database.js'
import type { AuditSealer } from './audit/sealer.js'
import type { AccessTokens } from './identity/tokens.js'
import type { SigningKeys } from './identity/signing-keys.js'
import type { OrgStatusCache } from './identity/org-status.js'
import type { LoginLimiter } from './identity/login-limiter.js'
import type { SecretBox } from './crypto/secret-box.js'
import type { EventSystem } from './events/event-system.js'
import type { PluginHost } from './plugins/plugin-host.js'
import type { WorkflowEngine } from './workflows/engine.js'
import { bindSubscribers, emittedBy } from './events/outbox.js'
import { assertStatus } from './identity/org-status.js'
import type { Mailer } from './mail/mailer.js'
import type { SessionRevocations } from './scale/session-revocations.js'
import type { SharedState } from './scale/shared-state.js'
import type { KernelAiService } from './ai/ai-service.js'
import type { KnowledgeService } from './knowledge/service.js'

/** The kernel's services, built once at start and handed to every route module. */
export interface KernelContext {
  config: KernelConfig
  logger: Logger
  db: Database
  sealer: AuditSealer
  keys: SigningKeys
  tokens: AccessTokens
  orgStatus: OrgStatusCache
  loginLimiter: LoginLimiter
  secrets: SecretBox
  /** The outbox dispatcher, the event queue and its subscribers (webhooks, plugins, kernel handlers). */
  events: EventSystem
  /** Installed plugins: runs them in the sandbox for their tenants and answers their host calls. */
  plugins: PluginHost
  /** The durable workflow runtime. */
  workflows: WorkflowEngine
  /** Outgoing e-mail (password resets, invitations); sends nothing unless TRELLIS_SMTP_URL is set. */
  mailer: Mailer
  /** Sessions signed out: their access tokens stop working at once (in every process with Redis). */
  revokedSessions: SessionRevocations
  /** Governed AI: the model registry, budgets, guards, providers and call records. */
  ai: KernelAiService
  /**
   * Knowledge bases: one per process, so the HTTP routes and plugins' knowledge calls share one
   * cache of bases' chunks (ADR 0086) — read once, kept once.
   */
  knowledge: KnowledgeService
  /** What processes share: Redis with REDIS_URL, this process's memory otherwise. */
  shared: SharedState
}

/**
 * A transaction in an organisation that refuses a suspended one, and seals whatever it
 * audited and dispatches whatever it emitted once it has committed.
 *
 * This wraps every request's transaction, so it adds no promise of its own inside it: the body
 * handed to the database is synchronous and returns `fn`'s promise as it is. A transaction that
 * refuses a suspended organisation checks it with its first statement (ADR 0112), or before the
 * body runs with `statusFirst`: for bodies that may act outside the database before their first
 * statement (a plugin's code, a workflow step).
 */
export async function orgTx<T>(
  k: Pick<KernelContext, 'db' | 'sealer' | 'events'>,
  orgId: string,
  fn: (tx: Tx) => Promise<T>,
  opts?: { allowSuspended?: boolean; statusFirst?: boolean },
): Promise<T> {
  let used: Tx | undefined
  const body = (tx: Tx) => {
    used = tx
    bindSubscribers(tx, k.events.subscriberIndex, orgId)
    return fn(tx)
  }
  const result = await (opts?.allowSuspended
    ? k.db.inOrg(orgId, body)
    : opts?.statusFirst
      ? k.db.inOrg(orgId, (tx, status) => {
          assertStatus(status)
          return body(tx)
        })
      : k.db.inActiveOrg(orgId, body))
  // inOrg resolves only after its body ran, so `used` is the committed transaction.
  const tx = used!
  for (const org of tx.orgs) k.sealer.nudge(org)
  // Events it emitted are committed now: wake the dispatcher (the sweep is the safety net).
  const emitted = emittedBy(tx)
  if (emitted) k.events.nudge(emitted)
  return result
}
