// Defaults of the settings, and the training modules a partner gets.
import type { Ctx, Settings, TrainingModule } from './types.js'

const HOUR = 3_600_000
const DAY = 24 * HOUR
export const DEFAULTS = {
  complianceRole: 'compliance_officer',
  complianceEscalationRole: 'compliance_lead',
  opsRole: 'partner_ops',
  opsEscalationRole: 'partner_ops_lead',
  reviewSlaMs: 2 * DAY,
  setupSlaMs: 3 * DAY,
  correctionTimeoutMs: 14 * DAY,
  trainingDueMs: 30 * DAY,
  documentAgent: true as boolean,
  documentThreshold: 0.5 as number,
} as const

export const DEFAULT_TRAINING: TrainingModule[] = [
  { module: 'platform-basics', title: 'Trellis platform basics' },
  { module: 'compliance-essentials', title: 'Compliance essentials for partners' },
  { module: 'tenant-administration', title: 'Administering your tenants' },
  { module: 'advanced-pricing', title: 'Price lists, rebates and promotions', tiers: ['gold', 'platinum'] },
  { module: 'co-selling', title: 'Co-selling playbook', tiers: ['platinum'] },
]

/** A setting of the installation, or its default. */
export const setting = <K extends keyof typeof DEFAULTS & keyof Settings>(ctx: Ctx, key: K) =>
  (ctx.settings[key] ?? DEFAULTS[key]) as (typeof DEFAULTS)[K]
