/**
 * Alert rules a tenant sets on a metric: a threshold on the latest complete period, or an
 * anomaly watch (seasonal baseline, robust score) whose detected anomalies are stored. A breach
 * emits `insights.alert.breached`, naming the role a task should go to when the rule has one.
 */
import { v7 as uuidv7 } from 'uuid'
import type { Tx } from '../db/database.js'
import type { AvailableMetric } from '../metrics/catalog.js'
import { MET } from '../metrics/errors.js'
import { parseMetricQuery } from '../metrics/query.js'
import { GRAINS, type Grain, type MetricQuery } from '../metrics/types.js'

/** A rule as stored. */
export interface AlertRuleRecord {
  id: string
  metric: string
  kind: 'threshold' | 'anomaly'
  grain: Grain
  filter: MetricQuery['filter'] | null
  op: 'above' | 'below' | null
  threshold: string | null
  season: number | null
  score: number | null
  min_volume: string
  by: string | null
  task_role: string | null
  task_sla_hours: number | null
  created_by: string | null
  created_at: Date
  last_run_at: Date | null
  last_error: string | null
}

/** What a caller sends to create a rule. */
export interface AlertRuleInput {
  metric: string
  kind: 'threshold' | 'anomaly'
  grain: Grain
  filter?: MetricQuery['filter']
  op?: 'above' | 'below'
  threshold?: number
  season?: number
  score?: number
  minVolume?: number
  by?: string
  taskRole?: string
  /** Hours the role has to act on a breach's task before it is escalated. */
  taskSlaHours?: number
}

export function ruleView(r: AlertRuleRecord) {
  return {
    id: r.id,
    metric: r.metric,
    kind: r.kind,
    grain: r.grain,
    filter: r.filter ?? null,
    op: r.op,
    threshold: r.threshold === null ? null : Number(r.threshold),
    season: r.season,
    score: r.score,
    minVolume: Number(r.min_volume),
    by: r.by,
    taskRole: r.task_role,
    taskSlaHours: r.task_sla_hours,
    createdBy: r.created_by,
    createdAt: new Date(r.created_at).toISOString(),
    lastRunAt: r.last_run_at ? new Date(r.last_run_at).toISOString() : null,
    lastError: r.last_error,
  }
}

const bad = (field: string, reason: string, allowed?: string[]) =>
  MET.RULE_INVALID({ field, reason, ...(allowed ? { allowed } : {}) })

/** Validates `body` against the metric it names (already found and readable). */
export function parseAlertRule(body: Record<string, unknown>, m: AvailableMetric): AlertRuleInput {
  const known = [
    'metric',
    'kind',
    'grain',
    'filter',
    'op',
    'threshold',
    'season',
    'score',
    'minVolume',
    'by',
    'taskRole',
    'taskSlaHours',
  ]
  const unknown = Object.keys(body).find((k) => !known.includes(k))
  if (unknown) throw bad(unknown, 'is not a field of an alert rule', known)
  const kind = body.kind
  if (kind !== 'threshold' && kind !== 'anomaly') throw bad('kind', 'is required', ['threshold', 'anomaly'])
  const grain = body.grain
  if (typeof grain !== 'string' || !(GRAINS as readonly string[]).includes(grain))
    throw bad('grain', 'is required', [...GRAINS])
  const num = (field: string, min: number, max: number) => {
    const v = body[field]
    if (v === undefined) return undefined
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max)
      throw bad(field, `must be a number from ${min} to ${max}`)
    return v
  }
  const rule: AlertRuleInput = { metric: m.name, kind, grain: grain as Grain }
  if (body.filter !== undefined) {
    if (typeof body.filter !== 'object' || body.filter === null || Array.isArray(body.filter))
      throw bad('filter', 'must be an object of dimension → value or values')
    try {
      rule.filter = parseMetricQuery({ filter: JSON.stringify(body.filter) }, m.declaration).filter
    } catch (err) {
      throw bad('filter', err instanceof Error ? err.message : 'is not a filter of this metric')
    }
  }
  const dims = Object.keys(m.declaration.dimensions ?? {}).sort()
  if (kind === 'threshold') {
    if (body.op !== 'above' && body.op !== 'below') throw bad('op', 'is required for a threshold', ['above', 'below'])
    const threshold = num('threshold', -1e15, 1e15)
    if (threshold === undefined) throw bad('threshold', 'is required for a threshold')
    rule.op = body.op
    rule.threshold = threshold
    for (const f of ['season', 'score', 'minVolume', 'by']) if (f in body) throw bad(f, 'applies to anomaly rules only')
  } else {
    for (const f of ['op', 'threshold']) if (f in body) throw bad(f, 'applies to threshold rules only')
    const season = num('season', 0, 366)
    if (season !== undefined && !Number.isInteger(season)) throw bad('season', 'must be a whole number of periods')
    if (season !== undefined) rule.season = season
    const score = num('score', 0.5, 100)
    if (score !== undefined) rule.score = score
    const minVolume = num('minVolume', 0, 1e15)
    if (minVolume !== undefined) rule.minVolume = minVolume
    if (body.by !== undefined) {
      if (typeof body.by !== 'string' || !dims.includes(body.by))
        throw bad('by', `"${String(body.by)}" is not a dimension of this metric`, dims)
      rule.by = body.by
    }
  }
  if (body.taskRole !== undefined) {
    if (typeof body.taskRole !== 'string' || !/^[a-z][a-z0-9_-]{0,62}$/.test(body.taskRole))
      throw bad('taskRole', 'must be a role name (lower-case letters, digits, _ or -)')
    rule.taskRole = body.taskRole
  }
  const sla = num('taskSlaHours', 0.01, 8760)
  if (sla !== undefined) {
    if (rule.taskRole === undefined) throw bad('taskSlaHours', 'needs a taskRole: it is the deadline of its tasks')
    rule.taskSlaHours = sla
  }
  return rule
}

export async function insertAlertRule(tx: Tx, r: AlertRuleInput, createdBy: string | null): Promise<AlertRuleRecord> {
  const [row] = await tx.sql<AlertRuleRecord>(
    `insert into insight_alert_rules (id, metric, kind, grain, filter, op, threshold, season, score, min_volume, by, task_role, task_sla_hours, created_by)
     values (?::uuid, ?, ?, ?, ?::jsonb, ?, ?::numeric, ?, ?, ?::numeric, ?, ?, ?, ?::uuid) returning *`,
    [
      uuidv7(),
      r.metric,
      r.kind,
      r.grain,
      r.filter ? JSON.stringify(r.filter) : null,
      r.op ?? null,
      r.threshold === undefined ? null : String(r.threshold),
      r.season ?? null,
      r.score ?? null,
      String(r.minVolume ?? 0),
      r.by ?? null,
      r.taskRole ?? null,
      r.taskSlaHours ?? null,
      createdBy,
    ],
  )
  return row!
}
