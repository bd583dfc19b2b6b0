import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import { AUTH, KRN } from '../errors.js'
import { principalOf, requirePermission } from '../http/guards.js'
import { KERNEL_PERMISSIONS as P } from '../identity/permissions.js'
import { recordView, type RecordRow } from './records.js'
import { periodBounds, periodOf } from './usage-period.js'

const RecordView = Type.Object({
  id: Type.String(),
  at: Type.String(),
  userId: Type.Union([Type.String(), Type.Null()]),
  installationId: Type.Union([Type.String(), Type.Null()]),
  plugin: Type.Union([Type.String(), Type.Null()]),
  feature: Type.String(),
  model: Type.String(),
  modelId: Type.String(),
  provider: Type.String(),
  outcome: Type.String(),
  errorCode: Type.Union([Type.String(), Type.Null()]),
  prompt: Type.Union([Type.String(), Type.Null()]),
  answer: Type.Union([Type.String(), Type.Null()]),
  inputTokens: Type.Number(),
  outputTokens: Type.Number(),
  costMicros: Type.Number(),
  latencyMs: Type.Number(),
  chunks: Type.Unknown(),
  citations: Type.Unknown(),
  verdicts: Type.Unknown(),
})

const Totals = {
  calls: Type.Number(),
  inputTokens: Type.Number(),
  outputTokens: Type.Number(),
  costMicros: Type.Number(),
}

/**
 * AI call records (tenant admins read their own, texts masked) and usage: a tenant's own totals
 * per model and feature; a partner's per tenant of its own; the platform's per tenant of all —
 * aggregates only, never a partner or the platform reading a tenant's records.
 */
export function registerRecordRoutes(app: Api, deps: { orgTx: OrgTx; now: () => number }): void {
  app.get(
    '/ai/records',
    {
      preHandler: requirePermission(P.auditRead),
      schema: {
        tags: ['ai'],
        summary: "Your tenant's AI call records, newest first (masked texts)",
        querystring: Type.Object(
          {
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })),
            before: Type.Optional(Type.String({ format: 'uuid' })),
            feature: Type.Optional(Type.String({ maxLength: 100 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ items: Type.Array(RecordView) }) },
      },
    },
    async (request) => {
      const p = principalOf(request)
      if (p.orgKind !== 'tenant') throw AUTH.FORBIDDEN({ permission: P.auditRead })
      const q = request.query
      const rows = await deps.orgTx(p.orgId, (tx) =>
        tx.sql<RecordRow>(
          `select * from ai_records where (?::uuid is null or id < ?::uuid) and (?::text is null or feature = ?)
            order by id desc limit ?`,
          [q.before ?? null, q.before ?? null, q.feature ?? null, q.feature ?? null, q.limit ?? 50],
        ),
      )
      return { items: rows.map(recordView) }
    },
  )

  app.get(
    '/ai/records/:id',
    {
      preHandler: requirePermission(P.auditRead),
      schema: {
        tags: ['ai'],
        summary: 'One AI call record (the audit entry of the call targets it)',
        params: Type.Object({ id: Type.String({ format: 'uuid' }) }),
        response: { 200: RecordView },
      },
    },
    async (request) => {
      const p = principalOf(request)
      if (p.orgKind !== 'tenant') throw AUTH.FORBIDDEN({ permission: P.auditRead })
      const [row] = await deps.orgTx(p.orgId, (tx) =>
        tx.sql<RecordRow>('select * from ai_records where id = ?::uuid', [request.params.id]),
      )
      if (!row) throw KRN.NOT_FOUND({ what: 'AI record' })
      return recordView(row)
    },
  )

  app.get(
    '/ai/usage',
    {
      preHandler: requirePermission(P.auditRead),
      schema: {
        tags: ['ai'],
        summary:
          'AI usage of a month: a tenant per model and feature, a partner per tenant of its own, the platform per tenant',
        querystring: Type.Object(
          { period: Type.Optional(Type.String({ pattern: '^\\d{4}-(0[1-9]|1[0-2])$' })) },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            period: Type.String(),
            total: Type.Object(Totals),
            items: Type.Array(
              Type.Object({
                tenantId: Type.Optional(Type.String()),
                model: Type.Optional(Type.String()),
                feature: Type.Optional(Type.String()),
                ...Totals,
              }),
            ),
          }),
        },
      },
    },
    async (request) => {
      const p = principalOf(request)
      const period = request.query.period ?? periodOf(deps.now())
      const { from, to } = periodBounds(period)
      type Row = {
        tenant_id?: string
        model_alias?: string
        feature?: string
        calls: string
        input_tokens: string
        output_tokens: string
        cost_micros: string
      }
      const rows = await deps.orgTx(p.orgId, (tx) =>
        p.orgKind === 'tenant'
          ? tx.sql<Row>(
              `select model_alias, feature, count(*) as calls, coalesce(sum(input_tokens), 0) as input_tokens,
                 coalesce(sum(output_tokens), 0) as output_tokens, coalesce(sum(cost_micros), 0) as cost_micros
                 from ai_records where at >= ?::timestamptz and at < ?::timestamptz and outcome = 'ok'
                group by model_alias, feature order by model_alias, feature`,
              [from, to],
            )
          : tx.sql<Row>('select * from trellis_ai_usage_by_tenant(?::timestamptz, ?::timestamptz) order by tenant_id', [
              from,
              to,
            ]),
      )
      const items = rows.map((r) => ({
        ...(r.tenant_id ? { tenantId: r.tenant_id } : {}),
        ...(r.model_alias ? { model: r.model_alias } : {}),
        ...(r.feature ? { feature: r.feature } : {}),
        calls: Number(r.calls),
        inputTokens: Number(r.input_tokens),
        outputTokens: Number(r.output_tokens),
        costMicros: Number(r.cost_micros),
      }))
      const total = items.reduce(
        (t, i) => ({
          calls: t.calls + i.calls,
          inputTokens: t.inputTokens + i.inputTokens,
          outputTokens: t.outputTokens + i.outputTokens,
          costMicros: t.costMicros + i.costMicros,
        }),
        { calls: 0, inputTokens: 0, outputTokens: 0, costMicros: 0 },
      )
      return { period, total, items }
    },
  )
}
