import type { MigrationObject } from '@mikro-orm/core'
import { Migration20261127000001Kernel } from './2026-11-27-kernel.js'
import { Migration20261128000001Events } from './2026-11-28-events.js'
import { Migration20261129000001Plugins } from './2026-11-29-plugins.js'
import { Migration20261129000002EventsRetention } from './2026-11-29-events-retention.js'
import { Migration20261130000001Marketplace } from './2026-11-30-marketplace.js'
import { Migration20261130000002MarketplacePublishing } from './2026-11-30-marketplace-publishing.js'
import { Migration20261130000003Workflows } from './2026-11-30-workflows.js'
import { Migration20261205000003WebhookOrder } from './2026-12-05-webhook-order.js'
import { Migration20261205000001IdentityHardening } from './2026-12-05-identity-hardening.js'
import { Migration20261205000012EventJobsFairness } from './2026-12-05-event-jobs-fairness.js'
import { Migration20261205000002AuditCheckpoints } from './2026-12-05-audit-checkpoints.js'
import { Migration20261206000007IdentitySso } from './2026-12-06-identity-sso.js'
import { Migration20261206000017IdentitySso } from './2026-12-06-identity-sso-2.js'
import { Migration20261206000027IdentitySso } from './2026-12-06-identity-sso-3.js'
import { Migration20261206000037IdentitySso } from './2026-12-06-identity-sso-4.js'
import { Migration20261206000002Knowledge } from './2026-12-06-knowledge.js'
import { Migration20261206000001Ai } from './2026-12-06-ai.js'
import { Migration20261207000201InvocationTranscript } from './2026-12-07-invocation-transcript.js'
import { Migration20261207000801Governance } from './2026-12-07-governance.js'
import { Migration20261207000802MarketplacePolicy } from './2026-12-07-marketplace-policy.js'
import { Migration20261208000301Insights } from './2026-12-08-insights.js'
import { Migration20261208000302KernelTelemetry } from './2026-12-08-kernel-telemetry.js'
import { Migration20261208000501GovernanceRetention } from './2026-12-08-governance-retention.js'
import { Migration20261208000601AccessReviews } from './2026-12-08-access-reviews.js'
import { Migration20261208000801ErasureEvents } from './2026-12-08-erasure-events.js'
import { Migration20261209000201EventsUnsubscribed } from './2026-12-09-events-unsubscribed.js'
import { Migration20261209000402AiGenerations } from './2026-12-09-ai-generations.js'
import { Migration20261209000501PluginHealth } from './2026-12-09-plugin-health.js'
import { Migration20261209000601InsightsTaskSla } from './2026-12-09-insights-task-sla.js'
import { Migration20261210000101EventsSubscribersIncremental } from './2026-12-10-events-subscribers-incremental.js'
import { Migration20261211000101PluginFieldStatistics } from './2026-12-11-plugin-field-statistics.js'
import { Migration20261212000101OrgActiveCheck } from './2026-12-12-org-active-check.js'
import { Migration20261213000101InstallationDetailWindow } from './2026-12-13-installation-detail-window.js'

/** Every migration, oldest first; MikroORM runs them in this order. */
export const migrationsList: MigrationObject[] = [
  { name: 'Migration20261127000001Kernel', class: Migration20261127000001Kernel },
  { name: 'Migration20261128000001Events', class: Migration20261128000001Events },
  { name: 'Migration20261129000001Plugins', class: Migration20261129000001Plugins },
  { name: 'Migration20261129000002EventsRetention', class: Migration20261129000002EventsRetention },
  { name: 'Migration20261130000001Marketplace', class: Migration20261130000001Marketplace },
  { name: 'Migration20261130000002MarketplacePublishing', class: Migration20261130000002MarketplacePublishing },
  { name: 'Migration20261130000003Workflows', class: Migration20261130000003Workflows },
  { name: 'Migration20261205000003WebhookOrder', class: Migration20261205000003WebhookOrder },
  { name: 'Migration20261205000001IdentityHardening', class: Migration20261205000001IdentityHardening },
  { name: 'Migration20261205000012EventJobsFairness', class: Migration20261205000012EventJobsFairness },
  { name: 'Migration20261205000002AuditCheckpoints', class: Migration20261205000002AuditCheckpoints },
  { name: 'Migration20261206000007IdentitySso', class: Migration20261206000007IdentitySso },
  { name: 'Migration20261206000017IdentitySso', class: Migration20261206000017IdentitySso },
  { name: 'Migration20261206000027IdentitySso', class: Migration20261206000027IdentitySso },
  { name: 'Migration20261206000037IdentitySso', class: Migration20261206000037IdentitySso },
  { name: 'Migration20261206000002Knowledge', class: Migration20261206000002Knowledge },
  { name: 'Migration20261206000001Ai', class: Migration20261206000001Ai },
  { name: 'Migration20261207000201InvocationTranscript', class: Migration20261207000201InvocationTranscript },
  { name: 'Migration20261207000801Governance', class: Migration20261207000801Governance },
  { name: 'Migration20261207000802MarketplacePolicy', class: Migration20261207000802MarketplacePolicy },
  { name: 'Migration20261208000301Insights', class: Migration20261208000301Insights },
  { name: 'Migration20261208000302KernelTelemetry', class: Migration20261208000302KernelTelemetry },
  { name: 'Migration20261208000501GovernanceRetention', class: Migration20261208000501GovernanceRetention },
  { name: 'Migration20261208000601AccessReviews', class: Migration20261208000601AccessReviews },
  { name: 'Migration20261208000801ErasureEvents', class: Migration20261208000801ErasureEvents },
  { name: 'Migration20261209000201EventsUnsubscribed', class: Migration20261209000201EventsUnsubscribed },
  { name: 'Migration20261209000402AiGenerations', class: Migration20261209000402AiGenerations },
  { name: 'Migration20261209000501PluginHealth', class: Migration20261209000501PluginHealth },
  { name: 'Migration20261209000601InsightsTaskSla', class: Migration20261209000601InsightsTaskSla },
  {
    name: 'Migration20261210000101EventsSubscribersIncremental',
    class: Migration20261210000101EventsSubscribersIncremental,
  },
  {
    name: 'Migration20261211000101PluginFieldStatistics',
    class: Migration20261211000101PluginFieldStatistics,
  },
  { name: 'Migration20261212000101OrgActiveCheck', class: Migration20261212000101OrgActiveCheck },
  {
    name: 'Migration20261213000101InstallationDetailWindow',
    class: Migration20261213000101InstallationDetailWindow,
  },
]
