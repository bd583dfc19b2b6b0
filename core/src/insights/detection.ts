/**
 * A detection run over one tenant's alert rules: each anomaly rule scores its metric's series
 * and stores every anomalous complete period once (baseline, score, top contributors), saying
 * so with `insights.anomaly.detected`; a rule breaches when the latest complete period is
 * anomalous (anomaly rules) or past its threshold, once per period, with
 * `insights.alert.breached`. Periods still running are never judged (ADR 0069).
 */
import { v7 as uuidv7 } from 'uuid'
import type { Tx } from '../db/database.js'
import { emitEvents, kernelEvent } from '../events/outbox.js'
import type { OrgTx } from '../http/route-deps.js'
import { answerMetric } from '../metrics/answer.js'
import { availableMetrics, type AvailableMetric, type InstalledSource } from '../metrics/catalog.js'
import type { AlertRuleRecord } from './alert-rules.js'
import { detectAnomalies } from './anomaly.js'
import { contributorsAt } from './contributors.js'
import { SEASON } from './forecast.js'
import { seriesOf } from './series.js'

export interface DetectionDeps {
  orgTx: OrgTx
  plugins: InstalledSource
}

/** What one run did in a tenant. */
export interface DetectionRun {
  rules: number
  anomalies: number
  breaches: number
}

const finite = (x: number | null) => (x === null || !Number.isFinite(x) ? null : x)

async function breach(
  tx: Tx,
  rule: AlertRuleRecord,
  period: string,
  value: number,
  now: Date,
  anomalyId: string | null,
): Promise<boolean> {
  const [b] = await tx.sql<{ id: string }>(
    `insert into insight_alert_breaches (id, rule_id, period, value, anomaly_id, breached_at)
     values (?::uuid, ?::uuid, ?::date, ?::numeric, ?::uuid, ?::timestamptz) on conflict (rule_id, period) do nothing returning id`,
    [uuidv7(), rule.id, period, String(value), anomalyId, now.toISOString()],
  )
  if (!b) return false
  await emitEvents(
    tx,
    kernelEvent('insights.alert.breached', `insights/rule/${rule.id}`, {
      breachId: b.id,
      ruleId: rule.id,
      metric: rule.metric,
      kind: rule.kind,
      grain: rule.grain,
      period,
      value,
      op: rule.op,
      threshold: rule.threshold === null ? null : Number(rule.threshold),
      anomalyId,
      taskRole: rule.task_role,
      taskSlaHours: rule.task_sla_hours,
    }),
  )
  return true
}

/** Runs one rule at `now`; resolves to the anomalies stored and breaches made. */
async function runRule(
  deps: DetectionDeps,
  tenantId: string,
  rule: AlertRuleRecord,
  m: AvailableMetric,
  now: Date,
): Promise<{ anomalies: number; breaches: number }> {
  const today = now.toISOString().slice(0, 10)
  const ask = { orgTx: deps.orgTx, today: () => today }
  const query = { grain: rule.grain, live: true, ...(rule.filter ? { filter: rule.filter } : {}) }
  const series = seriesOf(await answerMetric(ask, tenantId, m, query), rule.grain).get('')!
  const complete = series.filter((p) => p.complete !== false)
  const latest = complete[complete.length - 1]
  if (rule.kind === 'threshold') {
    if (!latest) return { anomalies: 0, breaches: 0 }
    const limit = Number(rule.threshold)
    const past = rule.op === 'above' ? latest.value > limit : latest.value < limit
    if (!past) return { anomalies: 0, breaches: 0 }
    const made = await deps.orgTx(tenantId, (tx) => breach(tx, rule, latest.period, latest.value, now, null))
    return { anomalies: 0, breaches: made ? 1 : 0 }
  }
  const season = rule.season ?? SEASON[rule.grain]
  const cycles = season > 1 ? 3 : 8
  const threshold = rule.score ?? 3.5
  const points = detectAnomalies(series, { season, cycles, threshold, minVolume: Number(rule.min_volume) })
  const found = points.filter((p) => p.anomalous)
  if (!found.length) return { anomalies: 0, breaches: 0 }
  const split = rule.by
    ? seriesOf(await answerMetric(ask, tenantId, m, { ...query, groupBy: [rule.by] }), rule.grain, rule.by)
    : undefined
  return deps.orgTx(tenantId, async (tx) => {
    let anomalies = 0
    let breaches = 0
    for (const p of found) {
      const contributors = split ? contributorsAt(split, p.period, season, cycles) : null
      const [a] = await tx.sql<{ id: string }>(
        `insert into insight_anomalies (id, rule_id, metric, grain, period, value, baseline, score, by, contributors, detected_at)
         values (?::uuid, ?::uuid, ?, ?, ?::date, ?::numeric, ?::numeric, ?::float8, ?, ?::jsonb, ?::timestamptz)
         on conflict (rule_id, period) do nothing returning id`,
        [
          uuidv7(),
          rule.id,
          rule.metric,
          rule.grain,
          p.period,
          String(p.value),
          p.baseline === null ? null : String(p.baseline),
          p.score === null ? null : String(p.score),
          rule.by,
          contributors ? JSON.stringify(contributors) : null,
          now.toISOString(),
        ],
      )
      if (!a) continue
      anomalies++
      await emitEvents(
        tx,
        kernelEvent('insights.anomaly.detected', `insights/rule/${rule.id}`, {
          anomalyId: a.id,
          ruleId: rule.id,
          metric: rule.metric,
          grain: rule.grain,
          period: p.period,
          value: p.value,
          baseline: p.baseline,
          score: finite(p.score),
          by: rule.by,
          contributors,
        }),
      )
      if (p.period === latest?.period && (await breach(tx, rule, p.period, p.value, now, a.id))) breaches++
    }
    return { anomalies, breaches }
  })
}

/** Runs every alert rule of `tenantId` at `now`. A rule that fails records why and the others still run. */
export async function detectForTenant(deps: DetectionDeps, tenantId: string, now: Date): Promise<DetectionRun> {
  const rules = await deps.orgTx(tenantId, (tx) =>
    tx.sql<AlertRuleRecord>('select * from insight_alert_rules order by id'),
  )
  if (!rules.length) return { rules: 0, anomalies: 0, breaches: 0 }
  const metrics = await availableMetrics(deps.plugins, tenantId)
  const run: DetectionRun = { rules: rules.length, anomalies: 0, breaches: 0 }
  for (const rule of rules) {
    let error: string | null = null
    const m = metrics.get(rule.metric)
    if (!m) error = `${rule.metric} is not available (its plugin or a source was uninstalled)`
    else
      try {
        const r = await runRule(deps, tenantId, rule, m, now)
        run.anomalies += r.anomalies
        run.breaches += r.breaches
      } catch (err) {
        error = err instanceof Error ? err.message : String(err)
      }
    await deps.orgTx(tenantId, (tx) =>
      tx.sql('update insight_alert_rules set last_run_at = ?::timestamptz, last_error = ? where id = ?::uuid', [
        now.toISOString(),
        error,
        rule.id,
      ]),
    )
  }
  return run
}
