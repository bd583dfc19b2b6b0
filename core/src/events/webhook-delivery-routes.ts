import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import { EVT, KRN } from '../errors.js'
import { auditedWrite } from '../audit/audited-write.js'
import { auditMeta, principalOf, requirePermission } from '../http/guards.js'
import { pageOf, decodeCursor, toPageOf } from '../http/pagination.js'
import { KERNEL_PERMISSIONS as P } from '../identity/permissions.js'
import type { Tx } from '../db/database.js'
import { Delivery, DeliveryQuery, type DeliveryRow, IdParams, Uuid, deliveryView } from './webhook-schemas.js'

export interface WebhookDeliveryRouteDeps {
  orgTx: OrgTx
  /** Puts a delivery back on the queue (the sweep takes it from the database when the queue is away). */
  requeue(deliveryId: string, tenantId: string, attempts: number): Promise<void>
}

/** Deliveries, newest first, with their attempt logs: one endpoint's, or (endpointId null) all of the organisation's. */
function listDeliveries(
  tx: Tx,
  endpointId: string | null,
  q: { status?: string; eventType?: string; before: string | null; limit: number },
): Promise<DeliveryRow[]> {
  const status = q.status ?? null
  return tx.sql<DeliveryRow>(
    `select d.id, d.endpoint_id, d.event_id, d.event_type, d.status, d.failure_reason, d.attempts, d.last_status, d.next_attempt_at,
            coalesce((select json_agg(json_build_object('attempt', a.attempt, 'at', a.at, 'statusCode', a.status_code, 'durationMs', a.duration_ms, 'error', a.error, 'response', a.response) order by a.id)
                        from webhook_attempts a where a.delivery_id = d.id), '[]'::json) as log
       from webhook_deliveries d
      where (?::uuid is null or d.endpoint_id = ?::uuid) and (?::uuid is null or d.id < ?::uuid) and (?::text is null or d.event_type = ?::text)
        and (?::text is null
             or (?::text in ('pending', 'delivered', 'failed') and d.status = ?::text)
             or (?::text = 'retrying' and d.status = 'pending' and exists (select 1 from webhook_attempts a where a.delivery_id = d.id))
             or (?::text in ('dead_letter', 'gone', 'endpoint_disabled') and d.status = 'failed' and d.failure_reason = ?::text))
      order by d.id desc limit ?`,
    [
      endpointId,
      endpointId,
      q.before,
      q.before,
      q.eventType ?? null,
      q.eventType ?? null,
      status,
      status,
      status,
      status,
      status,
      status,
      q.limit + 1,
    ],
  )
}

/** A page of deliveries as the API shows them, newest first, after the query's cursor. */
async function deliveriesPage(
  tx: Tx,
  endpointId: string | null,
  query: { status?: string; eventType?: string; cursor?: string; limit?: number },
) {
  const limit = query.limit ?? 50
  const rows = await listDeliveries(tx, endpointId, { ...query, before: decodeCursor(query.cursor), limit })
  return toPageOf(rows, limit, deliveryView)
}

/** The delivery log of an organisation's webhook endpoints, and redelivery. */
export function registerWebhookDeliveryRoutes(app: Api, deps: WebhookDeliveryRouteDeps): void {
  const guard = { preHandler: requirePermission(P.webhooksManage) }

  app.get(
    '/webhooks/deliveries',
    {
      ...guard,
      schema: {
        tags: ['webhooks'],
        summary:
          'Deliveries to all your endpoints, newest first, each with its log of attempts: filter by status (e.g. failed, dead_letter) and event type',
        querystring: Type.Object(DeliveryQuery, { additionalProperties: false }),
        response: { 200: pageOf(Delivery) },
      },
    },
    async (request) => {
      const p = principalOf(request)
      return deps.orgTx(p.orgId, (tx) => deliveriesPage(tx, null, request.query))
    },
  )

  app.get(
    '/webhooks/:id/deliveries',
    {
      ...guard,
      schema: {
        tags: ['webhooks'],
        summary:
          'Deliveries to this endpoint, newest first, each with its log of attempts: filter by status (e.g. failed, dead_letter) and event type',
        params: IdParams,
        querystring: Type.Object(DeliveryQuery, { additionalProperties: false }),
        response: { 200: pageOf(Delivery) },
      },
    },
    async (request) => {
      const p = principalOf(request)
      return deps.orgTx(p.orgId, async (tx) => {
        const [ep] = await tx.sql('select 1 from webhook_endpoints where id = ?::uuid', [request.params.id])
        if (!ep) throw KRN.NOT_FOUND({ what: 'webhook endpoint' })
        return deliveriesPage(tx, request.params.id, request.query)
      })
    },
  )

  app.post(
    '/webhooks/:id/deliveries/:deliveryId/redeliver',
    {
      ...guard,
      schema: {
        tags: ['webhooks'],
        summary: 'Send a delivery again (same webhook-id, so receivers can dedupe)',
        params: Type.Object({ id: Uuid, deliveryId: Uuid }),
        response: { 202: Type.Object({ id: Uuid, status: Type.String() }) },
      },
    },
    async (request, reply) => {
      const p = principalOf(request)
      const row = await deps.orgTx(p.orgId, async (tx) => {
        const [ep] = await tx.sql<{ status: string }>('select status from webhook_endpoints where id = ?::uuid', [
          request.params.id,
        ])
        if (!ep) throw KRN.NOT_FOUND({ what: 'webhook endpoint' })
        if (ep.status !== 'active') throw EVT.ENDPOINT_DISABLED()
        const [d] = await auditedWrite<{ id: string; attempts: number }>(tx, {
          write: {
            sql: `update webhook_deliveries set status = 'pending', failure_reason = null, next_attempt_at = now(), updated_at = now(),
                    -- A redelivery is sent out of order, by design: it neither waits for nor holds back other events about its subject.
                    order_seq = case when status = 'pending' then order_seq end
                  where id = ?::uuid and endpoint_id = ?::uuid returning id, attempts`,
            params: [request.params.deliveryId, request.params.id],
          },
          auditOrg: p.orgId,
          audit: {
            ...auditMeta(request),
            action: 'webhook.redelivered',
            target: { kind: 'webhook', id: request.params.id },
            data: { deliveryId: request.params.deliveryId },
          },
        })
        if (!d) throw KRN.NOT_FOUND({ what: 'delivery' })
        return d
      })
      // If the queue is away, the sweep picks the delivery up from the database.
      await deps
        .requeue(row.id, p.orgId, row.attempts)
        .catch((err) => request.log.warn({ err }, 'queueing a redelivery failed; the sweep retries'))
      return reply.code(202).send({ id: row.id, status: 'pending' })
    },
  )
}
