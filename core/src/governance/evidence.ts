/**
 * The evidence pack an auditor asks for (docs/governance.md, "Evidence for audits"): for one
 * organisation (a tenant, or the platform) and a period, who holds which role and which API keys
 * (with their scopes and last use), marketplace decisions with their reasons, capability consents,
 * kill-switch use, retention runs, the audit chain's verification with its head, and a snapshot
 * of the configuration that governs all of it. Read in one transaction of the organisation; the
 * chain is verified as the auditor role. Signed by evidence-signing.ts.
 */
import type { Database, Tx } from '../db/database.js'
import { PLATFORM_ORG } from '../db/database.js'
import { auditedOrganisations, verifyChain, type ChainReport } from '../audit/verify.js'
import type { KernelConfig } from '../config.js'

export const EVIDENCE_FORMAT = 'trellis-evidence-pack'

export interface EvidencePeriod {
  from: string
  to: string
}

/** The pack's content (what its signature covers, with `format` and `version`). */
export interface EvidencePack {
  format: typeof EVIDENCE_FORMAT
  version: 1
  generatedAt: string
  scope: { kind: 'tenant' | 'platform'; orgId: string; name: string }
  period: EvidencePeriod
  accessReview: {
    roles: Array<{ name: string; builtin: boolean; permissions: string[] }>
    members: Array<{
      userId: string
      email: string
      role: string
      since: string
      lastSignIn: string | null
    }>
    apiKeys: Array<{
      id: string
      name: string
      permissions: string[]
      createdAt: string
      expiresAt: string | null
      revokedAt: string | null
      lastUsedAt: string | null
    }>
    /** Periodic access reviews opened in the period, with what was decided. */
    reviews: Array<{
      id: string
      status: string
      openedAt: string
      completedAt: string | null
      completedBy: string | null
      items: number
      kept: number
      removed: number
    }>
  }
  marketplaceDecisions: Array<{
    plugin: string
    version: string
    decision: string
    reason: string
    reviewer: unknown
    at: string
  }>
  capabilityConsents: {
    /** What each installation holds now. */
    installations: Array<{ plugin: string; version: string; capabilities: string[]; status: string }>
    /** Consents given or withdrawn in the period (install, upgrade, uninstall), from the audit chain. */
    changes: AuditExcerpt[]
  }
  killSwitch: AuditExcerpt[]
  retentionRuns: {
    /** False when this kernel keeps no retention runs (the section is then empty). */
    available: boolean
    runs: unknown[]
  }
  auditChain: {
    verification: ChainReport
    /** The platform scope also names every organisation's chain head (tenants, partners). */
    heads?: Array<{ orgId: string; ok: boolean; entries: number; head: { seq: string; hash: string } | null }>
  }
  configuration: Record<string, unknown>
}

export interface AuditExcerpt {
  at: string
  action: string
  actor: { kind: string; id: string }
  target: { kind: string; id: string | null } | null
  data: unknown
}

/** Actions that give, change or withdraw a plugin's capabilities in a tenant. */
const CONSENT_ACTIONS = ['plugin.installed', 'plugin.upgraded', 'plugin.upgrade_pending', 'plugin.uninstalled']
const KILL_SWITCH_ACTIONS = ['marketplace.version.blocked', 'marketplace.version.unblocked']

const iso = (t: Date | string | null) => (t === null ? null : new Date(t).toISOString())

/** Builds the pack of `orgId` for the period (in the organisation's transaction `tx`). */
export async function buildEvidence(
  tx: Tx,
  deps: {
    db: Database
    config: KernelConfig
  },
  orgId: string,
  period: EvidencePeriod,
  now: Date,
): Promise<Omit<EvidencePack, 'auditChain'> & { auditChain?: EvidencePack['auditChain'] }> {
  const platform = orgId === PLATFORM_ORG
  const [org] = await tx.sql<{ name: string }>(
    'select name from tenants where id = ?::uuid union all select name from partners where id = ?::uuid',
    [orgId, orgId],
  )
  const range = [period.from, period.to]

  const roles = await tx.sql<{ name: string; builtin: boolean; permissions: string[] }>(
    `select distinct r.name, r.builtin, r.permissions from roles r
      where r.tenant_id = ?::uuid or r.id in (select role_id from memberships)
      order by r.name`,
    [orgId],
  )
  const members = await tx.sql<{
    userId: string
    email: string
    role: string
    since: Date
    lastSignIn: Date | null
  }>(
    `select m.user_id::text as "userId", u.email, r.name as role, m.created_at as since,
            (select max(greatest(s.created_at, coalesce(s.used_at, s.created_at))) from sessions s where s.user_id = m.user_id) as "lastSignIn"
       from memberships m join users u on u.id = m.user_id join roles r on r.id = m.role_id
      order by u.email`,
  )
  const keys = await tx.sql<{
    id: string
    name: string
    permissions: string[]
    created_at: Date
    expires_at: Date | null
    revoked_at: Date | null
    last_used_at: Date | null
  }>(
    `select id::text as id, name, permissions, created_at, expires_at, revoked_at, last_used_at from api_keys order by created_at, id`,
  )

  const reviews = platform
    ? []
    : await tx.sql<{
        id: string
        status: string
        opened_at: Date
        completed_at: Date | null
        completed_by: string | null
        items: number
        kept: number
        removed: number
      }>(
        `select r.id::text as id, r.status, r.opened_at, r.completed_at, r.completed_by,
                count(i.id)::int as items, count(i.id) filter (where i.decision = 'keep')::int as kept,
                count(i.id) filter (where i.decision = 'remove')::int as removed
           from access_reviews r left join access_review_items i on i.review_id = r.id
          where r.opened_at >= ?::timestamptz and r.opened_at < ?::timestamptz
          group by r.id order by r.opened_at`,
        range,
      )

  const decisions = await tx.sql<{
    plugin: string
    version: string
    decision: string
    reason: string
    reviewer: unknown
    at: string
  }>(
    `select v.name as plugin, v.version, v.review ->> 'decision' as decision, v.review ->> 'reason' as reason,
            v.review -> 'reviewer' as reviewer, v.review ->> 'at' as at
       from plugin_versions v
      where v.review is not null and (v.review ->> 'at')::timestamptz >= ?::timestamptz and (v.review ->> 'at')::timestamptz < ?::timestamptz
        ${platform ? '' : 'and v.name in (select plugin from plugin_installations)'}
      order by v.review ->> 'at', v.name, v.version`,
    range,
  )
  for (const d of decisions)
    if (d.reviewer && typeof d.reviewer === 'object') delete (d.reviewer as { meta?: unknown }).meta

  const excerpts = (actions: string[]) =>
    tx.sql<{
      at: Date
      action: string
      actor_kind: string
      actor_id: string
      target_kind: string | null
      target_id: string | null
      data: unknown
    }>(
      `select at, action, actor_kind, actor_id, target_kind, target_id, data from audit_log
        where tenant_id = ?::uuid and action = any(?::text[]) and at >= ?::timestamptz and at < ?::timestamptz
        order by at, id`,
      [orgId, actions, ...range],
    )
  const toExcerpt = (r: Awaited<ReturnType<typeof excerpts>>[number]): AuditExcerpt => ({
    at: iso(r.at)!,
    action: r.action,
    actor: { kind: r.actor_kind, id: r.actor_id },
    target: r.target_kind === null ? null : { kind: r.target_kind, id: r.target_id },
    data: r.data,
  })

  const installations = platform
    ? []
    : await tx.sql<{ plugin: string; version: string; capabilities: string[]; status: string }>(
        `select i.plugin, v.version, i.capabilities, i.status from plugin_installations i
           join plugin_versions v on v.id = i.version_id order by i.plugin`,
      )

  const [retention] = await tx.sql<{ present: boolean }>(`select to_regclass('retention_runs') is not null as present`)
  const runs = retention?.present
    ? (
        await tx.sql<{ run: unknown }>(
          `select to_jsonb(r) - 'tenant_id' as run from retention_runs r
            where r.ran_at >= ?::timestamptz and r.ran_at < ?::timestamptz order by r.ran_at, r.id`,
          range,
        )
      ).map((r) => r.run)
    : []

  const [tenantKeys] = platform
    ? [undefined]
    : await tx.sql<{ n: number; active: number }>(
        `select count(*)::int as n, count(*) filter (where status = 'active')::int as active from tenant_keys`,
      )
  const c = deps.config
  const configuration: Record<string, unknown> = {
    publicUrl: c.publicUrl,
    database: c.databaseUrl ? 'postgresql' : 'embedded',
    queue: c.redisUrl ? 'bullmq' : 'postgresql',
    role: c.role ?? 'all',
    eventRetentionDays: c.eventRetentionDays,
    deliveryRetentionDays: c.deliveryRetentionDays,
    auditCheckpointIntervalMs: c.auditCheckpointIntervalMs ?? 0,
    auditCheckpointDir: c.auditCheckpointDir !== undefined,
    egressAllow: c.egressAllow,
    mail: c.mail !== undefined,
    trustProxy: c.trustProxy ?? false,
    ...(tenantKeys ? { encryptionKeys: { total: tenantKeys.n, active: tenantKeys.active } } : {}),
  }

  return {
    format: EVIDENCE_FORMAT,
    version: 1,
    generatedAt: now.toISOString(),
    scope: { kind: platform ? 'platform' : 'tenant', orgId, name: platform ? 'platform' : (org?.name ?? orgId) },
    period,
    accessReview: {
      roles,
      members: members.map((m) => ({ ...m, since: iso(m.since)!, lastSignIn: iso(m.lastSignIn) })),
      apiKeys: keys.map((k) => ({
        id: k.id,
        name: k.name,
        permissions: k.permissions,
        createdAt: iso(k.created_at)!,
        expiresAt: iso(k.expires_at),
        revokedAt: iso(k.revoked_at),
        lastUsedAt: iso(k.last_used_at),
      })),
      reviews: reviews.map((r) => ({
        id: r.id,
        status: r.status,
        openedAt: iso(r.opened_at)!,
        completedAt: iso(r.completed_at),
        completedBy: r.completed_by,
        items: r.items,
        kept: r.kept,
        removed: r.removed,
      })),
    },
    marketplaceDecisions: decisions,
    capabilityConsents: { installations, changes: (await excerpts(CONSENT_ACTIONS)).map(toExcerpt) },
    killSwitch: (await excerpts(KILL_SWITCH_ACTIONS)).map(toExcerpt),
    retentionRuns: { available: retention?.present ?? false, runs },
    configuration,
  }
}

/** The audit-chain section: the organisation's chain verified (and, for the platform, every chain's head). */
export async function chainEvidence(db: Database, orgId: string): Promise<EvidencePack['auditChain']> {
  const verification = await verifyChain(db, orgId)
  if (orgId !== PLATFORM_ORG) return { verification }
  const heads = []
  for (const org of await auditedOrganisations(db)) {
    const r = org === orgId ? verification : await verifyChain(db, org)
    heads.push({ orgId: org, ok: r.ok, entries: r.entries, head: r.head ?? null })
  }
  return { verification, heads }
}
