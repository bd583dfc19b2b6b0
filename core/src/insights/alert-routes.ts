/**
 * `/v1/insights/alert-rules` (set, list, remove a tenant's alert rules) and
 * `/v1/insights/anomalies` (what detection runs stored). A caller sees and sets rules only on
 * metrics they may read; sending a rule's breaches to a role as tasks needs `workflows.manage`.
 */
import { Type } from '@sinclair/typebox'
import type { FastifyRequest } from 'fastify'
import { AUTH } from '../errors.js'
import { principalOf, requirePermission } from '../http/guards.js'
import type { Api } from '../http/types.js'
import { KERNEL_PERMISSIONS } from '../identity/permissions.js'
import { availableMetrics, mayRead, type AvailableMetric } from '../metrics/catalog.js'
import { MET } from '../metrics/errors.js'
import type { MetricRouteDeps } from '../metrics/routes.js'
import { insertAlertRule, parseAlertRule, ruleView, type AlertRuleRecord } from './alert-rules.js'

const Id = Type.Object({ id: Type.String({ format: 'uuid' }) })

export function registerAlertRoutes(app: Api, deps: MetricRouteDeps): void {
  /** The tenant's metrics the caller may read, by name. */
  const readable = async (request: FastifyRequest) => {
    const p = principalOf(request)
    if (p.orgKind !== 'tenant') return { p, metrics: new Map<string, AvailableMetric>() }
    const all = await availableMetrics(deps.plugins, p.orgId)
    return { p, metrics: new Map([...all].filter(([, m]) => mayRead(p.permissions, m))) }
  }

  app.post(
    '/insights/alert-rules',
    {
      preHandler: requirePermission(),
      schema: {
        tags: ['metrics'],
        summary: 'Set an alert on a metric: a threshold on the latest complete period, or an anomaly watch',
        body: Type.Object({ metric: Type.String({ maxLength: 200 }) }, { additionalProperties: true }),
      },
    },
    async (request, reply) => {
      const p = principalOf(request)
      const body = request.body as Record<string, unknown> & { metric: string }
      const all = p.orgKind === 'tenant' ? await availableMetrics(deps.plugins, p.orgId) : new Map()
      const m = all.get(body.metric) as AvailableMetric | undefined
      if (!m) throw MET.NOT_FOUND({ name: body.metric })
      if (!mayRead(p.permissions, m)) throw AUTH.FORBIDDEN({ permission: m.declaration.permission })
      if (body.taskRole !== undefined && !p.permissions.has(KERNEL_PERMISSIONS.workflowsManage))
        throw AUTH.FORBIDDEN({ permission: KERNEL_PERMISSIONS.workflowsManage })
      const rule = parseAlertRule(body, m)
      const row = await deps.orgTx(p.orgId, (tx) => insertAlertRule(tx, rule, p.userId))
      reply.code(201)
      return ruleView(row)
    },
  )

  app.get(
    '/insights/alert-rules',
    { preHandler: requirePermission(), schema: { tags: ['metrics'], summary: 'Alert rules on metrics you may read' } },
    async (request) => {
      const { p, metrics } = await readable(request)
      if (!metrics.size) return { items: [] }
      const rows = await deps.orgTx(p.orgId, (tx) =>
        tx.sql<AlertRuleRecord>('select * from insight_alert_rules order by id'),
      )
      return { items: rows.filter((r) => metrics.has(r.metric)).map(ruleView) }
    },
  )

  app.delete(
    '/insights/alert-rules/:id',
    {
      preHandler: requirePermission(),
      schema: { tags: ['metrics'], summary: 'Remove an alert rule (its creator, or workflows.manage)', params: Id },
    },
    async (request, reply) => {
      const { p, metrics } = await readable(request)
      const { id } = request.params as { id: string }
      const [row] = metrics.size
        ? await deps.orgTx(p.orgId, (tx) =>
            tx.sql<AlertRuleRecord>('select * from insight_alert_rules where id = ?::uuid', [id]),
          )
        : []
      if (!row || !metrics.has(row.metric)) throw MET.RULE_NOT_FOUND({ id })
      if (row.created_by !== p.userId && !p.permissions.has(KERNEL_PERMISSIONS.workflowsManage))
        throw AUTH.FORBIDDEN({ permission: KERNEL_PERMISSIONS.workflowsManage })
      await deps.orgTx(p.orgId, (tx) => tx.sql('delete from insight_alert_rules where id = ?::uuid', [id]))
      reply.code(204)
    },
  )

  app.get(
    '/insights/anomalies',
    {
      preHandler: requirePermission(),
      schema: {
        tags: ['metrics'],
        summary: 'Anomalies detection runs stored, newest period first: value, baseline, score, contributors',
        querystring: Type.Object({
          metric: Type.Optional(Type.String({ maxLength: 200 })),
          ruleId: Type.Optional(Type.String({ format: 'uuid' })),
        }),
      },
    },
    async (request) => {
      const { p, metrics } = await readable(request)
      const q = request.query as { metric?: string; ruleId?: string }
      if (!metrics.size) return { items: [] }
      const rows = await deps.orgTx(p.orgId, (tx) =>
        tx.sql<Record<string, unknown>>(
          `select id, rule_id, metric, grain, to_char(period, 'YYYY-MM-DD') as period, value::float8 as value, baseline::float8 as baseline,
                  score, by, contributors, detected_at
             from insight_anomalies where (?::text is null or metric = ?) and (?::uuid is null or rule_id = ?::uuid)
            order by period desc, id limit 500`,
          [q.metric ?? null, q.metric ?? null, q.ruleId ?? null, q.ruleId ?? null],
        ),
      )
      return {
        items: rows
          .filter((r) => metrics.has(r.metric as string))
          .map((r) => ({
            id: r.id,
            ruleId: r.rule_id,
            metric: r.metric,
            grain: r.grain,
            period: r.period,
            value: r.value,
            baseline: r.baseline,
            score: r.score === null || !Number.isFinite(r.score as number) ? null : r.score,
            by: r.by,
            contributors: r.contributors,
            detectedAt: new Date(r.detected_at as string).toISOString(),
          })),
      }
    },
  )
}
