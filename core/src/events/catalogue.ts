import { Type, type TSchema } from '@sinclair/typebox'

/** An event as subscribers see it (CloudEvents-shaped). */
export interface TrellisEvent<D = Record<string, unknown>> {
  /** UUIDv7: also the Standard Webhooks `webhook-id` of every delivery of this event. */
  id: string
  tenantId: string
  /** `<plugin>.<entity>.<past-verb>`; the kernel's own are `kernel.*`. */
  type: string
  /** Who emitted it: `trellis/kernel`, or `trellis/plugins/<id>` later. */
  source: string
  /** What it is about (`role/<id>`): events of one subject are delivered in order. */
  subject: string
  time: string
  data: D
}

export const EVENT_TYPE_PATTERN = '^[a-z][a-z0-9_-]*(\\.[a-z0-9_-]+){2,}$'
/** Subscription patterns: an exact type, `prefix.*`, or `*`. */
export const EVENT_PATTERN = '^(\\*|[a-z][a-z0-9_-]*(\\.[a-z0-9_-]+)*(\\.\\*)?)$'

/** Does `type` match any of `patterns`? */
export function matchesAny(type: string, patterns: readonly string[]): boolean {
  for (const p of patterns) {
    if (p === '*' || p === type) return true
    if (p.endsWith('.*') && type.startsWith(p.slice(0, -1))) return true
  }
  return false
}

/**
 * Every pattern that matches `type`: `*`, the type itself and each `prefix.*` — what
 * {@link matchesAny} accepts, as a list SQL can compare with a subscriber's types
 * (`trellis_event_patterns` in SQL).
 */
export function patternsMatching(type: string): string[] {
  const out = ['*', type]
  for (let i = type.indexOf('.'); i >= 0; i = type.indexOf('.', i + 1)) out.push(`${type.slice(0, i)}.*`)
  return out
}

const Uuid = Type.String({ format: 'uuid' })
const PluginVersionRef = Type.Object({ versionId: Uuid, plugin: Type.String(), version: Type.String() })
const WorkflowRef = Type.Object({
  instanceId: Uuid,
  plugin: Type.String(),
  workflow: Type.String(),
  version: Type.String(),
})
const TaskRef = Type.Object({
  taskId: Uuid,
  instanceId: Uuid,
  plugin: Type.String(),
  workflow: Type.String(),
  title: Type.String(),
  role: Type.Union([Type.String(), Type.Null()]),
})
const InstallationRef = Type.Object({
  installationId: Uuid,
  plugin: Type.String(),
  version: Type.String(),
  capabilities: Type.Array(Type.String()),
})

/** The kernel's event types and the JSON Schemas of their payloads. */
export const KERNEL_EVENTS = {
  'kernel.partner.created': {
    description: 'A partner was created (written to the platform and to the new partner).',
    data: Type.Object({ partnerId: Uuid, name: Type.String(), slug: Type.String() }),
  },
  'kernel.partner.updated': {
    description: "A partner's name or branding changed (written to the partner and to the platform).",
    data: Type.Object({ partnerId: Uuid, changes: Type.Array(Type.String()) }),
  },
  'kernel.partner.suspended': {
    description:
      'A partner was suspended, and with it access for all its tenants (written to the partner and to the platform).',
    data: Type.Object({ partnerId: Uuid }),
  },
  'kernel.partner.resumed': {
    description: 'A suspended partner was resumed (written to the partner and to the platform).',
    data: Type.Object({ partnerId: Uuid }),
  },
  'kernel.tenant.created': {
    description:
      'A tenant was created (written to the tenant, to its partner, and to the organisation that created it).',
    data: Type.Object({
      tenantId: Uuid,
      name: Type.String(),
      slug: Type.String(),
      partnerId: Type.Union([Uuid, Type.Null()]),
    }),
  },
  'kernel.tenant.suspended': {
    description:
      'A tenant was suspended: all its access stopped (written to the tenant, to its partner, and to the organisation that suspended it).',
    data: Type.Object({ tenantId: Uuid, partnerId: Type.Union([Uuid, Type.Null()]) }),
  },
  'kernel.tenant.resumed': {
    description:
      'A suspended tenant was resumed (written to the tenant, to its partner, and to the organisation that resumed it).',
    data: Type.Object({ tenantId: Uuid, partnerId: Type.Union([Uuid, Type.Null()]) }),
  },
  'kernel.role.created': {
    description: 'A custom role was defined.',
    data: Type.Object({ roleId: Uuid, name: Type.String(), permissions: Type.Array(Type.String()) }),
  },
  'kernel.role.deleted': {
    description: 'A custom role was deleted.',
    data: Type.Object({ roleId: Uuid, name: Type.String() }),
  },
  'kernel.membership.created': {
    description: 'A user became a member of the organisation.',
    data: Type.Object({ userId: Uuid, email: Type.String(), role: Type.String() }),
  },
  'kernel.membership.role_changed': {
    description: "A member's role changed.",
    data: Type.Object({ userId: Uuid, from: Type.String(), to: Type.String() }),
  },
  'kernel.membership.removed': {
    description: 'A member was removed.',
    data: Type.Object({ userId: Uuid, role: Type.String() }),
  },
  'kernel.api_key.created': {
    description: 'An API key was created.',
    data: Type.Object({ apiKeyId: Uuid, name: Type.String(), permissions: Type.Array(Type.String()) }),
  },
  'kernel.api_key.revoked': { description: 'An API key was revoked.', data: Type.Object({ apiKeyId: Uuid }) },
  'kernel.access_review.opened': {
    description:
      "An access review was opened: the tenant's admins keep or remove memberships and API keys not used for staleDays (GET /v1/governance/access-reviews).",
    data: Type.Object({
      reviewId: Uuid,
      staleDays: Type.Integer(),
      memberships: Type.Integer(),
      apiKeys: Type.Integer(),
      dueAt: Type.String({ format: 'date-time' }),
    }),
  },
  'kernel.webhook.created': {
    description: 'A webhook endpoint was created.',
    data: Type.Object({ endpointId: Uuid, url: Type.String(), types: Type.Array(Type.String()) }),
  },
  'kernel.webhook.updated': {
    description: 'A webhook endpoint was changed (URL, types, description or status).',
    data: Type.Object({ endpointId: Uuid, changes: Type.Array(Type.String()) }),
  },
  'kernel.webhook.deleted': { description: 'A webhook endpoint was deleted.', data: Type.Object({ endpointId: Uuid }) },
  'kernel.webhook.secret_rotated': {
    description: "A webhook endpoint's signing secret was rotated.",
    data: Type.Object({ endpointId: Uuid, previousSecretExpiresAt: Type.String({ format: 'date-time' }) }),
  },
  'kernel.webhook.delivery_failed': {
    description:
      'A webhook delivery failed for good: dead-lettered after its last retry, or the receiver answered 410 Gone (which disables the endpoint). Never emitted about a delivery of this same type, so it cannot loop.',
    data: Type.Object({
      endpointId: Uuid,
      deliveryId: Uuid,
      eventId: Uuid,
      eventType: Type.String(),
      reason: Type.Union([Type.Literal('dead_letter'), Type.Literal('gone')]),
      attempts: Type.Integer(),
      lastStatus: Type.Union([Type.Integer(), Type.Null()]),
      error: Type.Union([Type.String(), Type.Null()]),
    }),
  },
  'kernel.audit.checkpoint': {
    description:
      "A signed checkpoint of the organisation's audit chain head (ADR 0011): keep it outside Trellis, and `trellis audit verify --checkpoints` proves the chain was not cut back or rewritten since.",
    data: Type.Object({
      seq: Type.String(),
      hash: Type.String(),
      at: Type.String({ format: 'date-time' }),
      kid: Type.String(),
      jws: Type.String(),
    }),
  },
  'marketplace.key.registered': {
    description: 'A publisher registered a signing key (written to the partner).',
    data: Type.Object({ keyId: Uuid, fingerprint: Type.String() }),
  },
  'marketplace.key.revoked': {
    description: 'A publisher revoked a signing key (written to the partner).',
    data: Type.Object({ keyId: Uuid, fingerprint: Type.String() }),
  },
  'marketplace.version.published': {
    description: 'A plugin version was published and awaits its checks (written to the platform and to the publisher).',
    data: PluginVersionRef,
  },
  'marketplace.version.checked': {
    description:
      "A version's automated checks finished: in review, or failed (written to the platform and to the publisher).",
    data: Type.Object({ ...PluginVersionRef.properties, status: Type.String() }),
  },
  'marketplace.version.approved': {
    description:
      'A platform admin approved a version: tenants may install it (written to the platform and to the publisher).',
    data: Type.Object({ ...PluginVersionRef.properties, reason: Type.String() }),
  },
  'marketplace.version.rejected': {
    description: 'A platform admin rejected a version, with the reason (written to the platform and to the publisher).',
    data: Type.Object({ ...PluginVersionRef.properties, reason: Type.String() }),
  },
  'marketplace.version.blocked': {
    description:
      'A platform admin blocked a version everywhere: its installations stopped serving (written to the platform, the publisher and every tenant that installed it).',
    data: Type.Object({ ...PluginVersionRef.properties, reason: Type.String() }),
  },
  'marketplace.version.unblocked': {
    description: 'A block was lifted (written to the platform, the publisher and every tenant that installed it).',
    data: PluginVersionRef,
  },
  'marketplace.installation.created': {
    description: 'A plugin version was installed for the tenant, with the capabilities consented to.',
    data: InstallationRef,
  },
  'marketplace.installation.upgraded': {
    description: "The tenant's installation moved to a newer version.",
    data: Type.Object({ ...InstallationRef.properties, from: Type.String() }),
  },
  'marketplace.installation.upgrade_pending': {
    description: 'An upgrade asks for more capabilities and waits for the tenant admin to consent.',
    data: Type.Object({ ...InstallationRef.properties, from: Type.String(), added: Type.Array(Type.String()) }),
  },
  'marketplace.installation.rolled_back': {
    description: "The tenant's installation went back to a version it ran before.",
    data: Type.Object({ ...InstallationRef.properties, from: Type.String() }),
  },
  'marketplace.installation.removed': {
    description: 'A plugin was uninstalled; keepData says whether its records were kept.',
    data: Type.Object({ installationId: Uuid, plugin: Type.String(), keepData: Type.Boolean() }),
  },
  'workflow.instance.started': {
    description: 'A workflow instance started (by the API, an event or its schedule).',
    data: WorkflowRef,
  },
  'workflow.instance.completed': { description: 'A workflow instance completed.', data: WorkflowRef },
  'workflow.instance.failed': {
    description: 'A workflow instance failed (after retries and compensations).',
    data: Type.Object({
      ...WorkflowRef.properties,
      error: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
    }),
  },
  'workflow.task.created': { description: 'A workflow asked a person: a task for a role or a user.', data: TaskRef },
  'workflow.task.completed': {
    description: 'A person completed a task with an outcome.',
    data: Type.Object({ ...TaskRef.properties, outcome: Type.String(), by: Uuid }),
  },
  'workflow.task.escalated': { description: 'A task missed its SLA and passed to its escalation role.', data: TaskRef },
  'insights.anomaly.detected': {
    description:
      'A detection run found an anomalous complete period of a metric an alert rule watches: its baseline, robust score (null: the past was perfectly regular) and the dimension values contributing most.',
    data: Type.Object({
      anomalyId: Uuid,
      ruleId: Uuid,
      metric: Type.String(),
      grain: Type.String(),
      period: Type.String(),
      value: Type.Number(),
      baseline: Type.Union([Type.Number(), Type.Null()]),
      score: Type.Union([Type.Number(), Type.Null()]),
      by: Type.Union([Type.String(), Type.Null()]),
      contributors: Type.Union([
        Type.Array(
          Type.Object({
            value: Type.String(),
            current: Type.Number(),
            baseline: Type.Number(),
            change: Type.Number(),
            share: Type.Number(),
          }),
        ),
        Type.Null(),
      ]),
    }),
  },
  'insights.alert.breached': {
    description:
      "An alert rule's latest complete period passed its threshold or was anomalous (once per period); taskRole names who should act.",
    data: Type.Object({
      breachId: Uuid,
      ruleId: Uuid,
      metric: Type.String(),
      kind: Type.String(),
      grain: Type.String(),
      period: Type.String(),
      value: Type.Number(),
      op: Type.Union([Type.String(), Type.Null()]),
      threshold: Type.Union([Type.Number(), Type.Null()]),
      anomalyId: Type.Union([Uuid, Type.Null()]),
      taskRole: Type.Union([Type.String(), Type.Null()]),
      taskSlaHours: Type.Optional(Type.Union([Type.Number(), Type.Null()])),
    }),
  },
} satisfies Record<string, { description: string; data: TSchema }>

export type KernelEventType = keyof typeof KERNEL_EVENTS
