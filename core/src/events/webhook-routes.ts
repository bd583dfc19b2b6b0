import { Type } from '@sinclair/typebox'
import { v7 as uuidv7 } from 'uuid'
import { isIP } from 'node:net'
import type { Api } from '../http/types.js'
import { orgTx, type KernelContext } from '../kernel-context.js'
import { EVT, KRN } from '../errors.js'
import { appendAudit } from '../audit/audit-log.js'
import { auditMeta, principalOf, requirePermission } from '../http/guards.js'
import { PageQuery, pageOf, decodeCursor, toPage } from '../http/pagination.js'
import { KERNEL_PERMISSIONS as P } from '../identity/permissions.js'
import { sqlArray, type Tx } from '../db/database.js'
import { EVENT_PATTERN } from './catalogue.js'
import { emitEvents, kernelEvent } from './outbox.js'
import { newWebhookSecret } from './signing.js'
import { webhookSecretAd } from './delivery-types.js'

const Uuid = Type.String({ format: 'uuid' })
const Types = Type.Array(Type.String({ pattern: EVENT_PATTERN, maxLength: 200 }), {
  minItems: 1,
  maxItems: 100,
  uniqueItems: true,
  description: 'Event types or patterns: `kernel.role.created`, `kernel.role.*`, `*`.',
})
const Url = Type.String({
  minLength: 1,
  maxLength: 2000,
  description: 'http(s) URL; loopback, private and link-local addresses are refused unless allow-listed.',
})
const Endpoint = Type.Object({
  id: Uuid,
  url: Type.String(),
  types: Type.Array(Type.String()),
  description: Type.String(),
  status: Type.String(),
  disabledReason: Type.Union([Type.String(), Type.Null()]),
  previousSecretExpiresAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
})
const EndpointWithSecret = Type.Intersect([
  Endpoint,
  Type.Object({ secret: Type.String({ description: 'Shown once: `whsec_…`, the Standard Webhooks signing secret.' }) }),
])
const Attempt = Type.Object({
  attempt: Type.Integer(),
  at: Type.String({ format: 'date-time' }),
  statusCode: Type.Union([Type.Integer(), Type.Null()]),
  durationMs: Type.Integer(),
  error: Type.Union([Type.String(), Type.Null()]),
  response: Type.Union([Type.String(), Type.Null()]),
})
const Delivery = Type.Object({
  id: Uuid,
  endpointId: Uuid,
  eventId: Uuid,
  eventType: Type.String(),
  status: Type.String({ description: 'pending, delivered, or failed (for good: see failureReason)' }),
  failureReason: Type.Union(
    [Type.Literal('dead_letter'), Type.Literal('gone'), Type.Literal('endpoint_disabled'), Type.Null()],
    {
      description:
        'Why a failed delivery failed: dead_letter (its last retry failed), gone (the receiver answered 410 Gone; the endpoint was disabled), endpoint_disabled (the endpoint was disabled while it waited)',
    },
  ),
  attempts: Type.Integer(),
  lastStatus: Type.Union([Type.Integer(), Type.Null()]),
  nextAttemptAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  log: Type.Array(Attempt),
})
const IdParams = Type.Object({ id: Uuid })
const STATUS_FILTERS = [
  'pending',
  'retrying',
  'delivered',
  'failed',
  'dead_letter',
  'gone',
  'endpoint_disabled',
] as const
const DeliveryQuery = {
  ...PageQuery,
  status: Type.Optional(
    Type.Union(
      STATUS_FILTERS.map((s) => Type.Literal(s)),
      {
        description:
          'pending (waiting for an attempt), retrying (pending after a failed attempt), delivered, failed (for good, whatever the reason), dead_letter (the last retry failed), gone (410 Gone), endpoint_disabled',
      },
    ),
  ),
  eventType: Type.Optional(Type.String({ maxLength: 200, description: 'Only deliveries of this event type.' })),
}

interface DeliveryRow {
  id: string
  endpoint_id: string
  event_id: string
  event_type: string
  status: string
  failure_reason: 'dead_letter' | 'gone' | 'endpoint_disabled' | null
  attempts: number
  last_status: number | null
  next_attempt_at: Date | null
  log: Array<Record<string, unknown>>
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

function deliveryView(d: DeliveryRow) {
  return {
    id: d.id,
    endpointId: d.endpoint_id,
    eventId: d.event_id,
    eventType: d.event_type,
    status: d.status,
    failureReason: d.status === 'failed' ? d.failure_reason : null,
    attempts: d.attempts,
    lastStatus: d.last_status,
    nextAttemptAt: d.status === 'pending' ? iso(d.next_attempt_at) : null,
    log: d.log.map((a) => ({
      attempt: a.attempt as number,
      at: iso(a.at as string)!,
      statusCode: (a.statusCode as number | null) ?? null,
      durationMs: a.durationMs as number,
      error: (a.error as string | null) ?? null,
      response: (a.response as string | null) ?? null,
    })),
  }
}

interface EndpointRow {
  id: string
  url: string
  types: string[]
  description: string
  status: string
  disabled_reason: string | null
  previous_secret_expires_at: Date | null
  created_at: Date
  updated_at: Date
}

const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString())
const view = (r: EndpointRow) => ({
  id: r.id,
  url: r.url,
  types: r.types,
  description: r.description,
  status: r.status,
  disabledReason: r.disabled_reason,
  previousSecretExpiresAt: iso(r.previous_secret_expires_at),
  createdAt: iso(r.created_at)!,
  updatedAt: iso(r.updated_at)!,
})
const COLS = 'id, url, types, description, status, disabled_reason, previous_secret_expires_at, created_at, updated_at'

/** Refuses what can never be delivered: not http(s), credentials in the URL, or a non-public address literal. */
async function checkUrl(k: KernelContext, raw: string): Promise<string> {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw EVT.URL_NOT_ALLOWED({ reason: 'not a URL' })
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw EVT.URL_NOT_ALLOWED({ reason: 'must be http or https' })
  if (url.username || url.password) throw EVT.URL_NOT_ALLOWED({ reason: 'must not carry credentials' })
  const host = url.hostname.replace(/^\[|\]$/g, '')
  // Literal addresses are checked now (WHATWG URL has already turned 2130706433 or 0x7f.1 into
  // 127.0.0.1); names are checked again at every delivery, when they are resolved.
  if (isIP(host) && !k.events.egress.allowsAddress(host))
    throw EVT.URL_NOT_ALLOWED({ reason: `${host} is a loopback, private, link-local or reserved address` })
  if (!isIP(host)) {
    try {
      await k.events.egress.resolve(url)
    } catch (err) {
      if (EVT.EGRESS_DENIED.is(err)) throw EVT.URL_NOT_ALLOWED({ reason: (err as Error).message })
      // An unresolvable name is accepted: DNS may not be set up yet; deliveries will say so.
    }
  }
  return url.toString()
}

/** Webhook endpoints of the caller's organisation, their secrets, and their delivery log. */
export function registerWebhookRoutes(app: Api, k: KernelContext): void {
  const guard = { preHandler: requirePermission(P.webhooksManage) }

  app.post(
    '/webhooks',
    {
      ...guard,
      schema: {
        tags: ['webhooks'],
        summary: 'Create a webhook endpoint; its signing secret is shown once',
        body: Type.Object(
          { url: Url, types: Types, description: Type.Optional(Type.String({ maxLength: 500 })) },
          { additionalProperties: false },
        ),
        response: { 201: EndpointWithSecret },
      },
    },
    async (request, reply) => {
      const p = principalOf(request)
      const url = await checkUrl(k, request.body.url)
      const { types, description = '' } = request.body
      const id = uuidv7()
      const secret = newWebhookSecret()
      const row = await orgTx(k, p.orgId, async (tx) => {
        const [created] = await tx.sql<EndpointRow>(
          `insert into webhook_endpoints (id, tenant_id, url, types, description, secret_enc) values (?::uuid, ?::uuid, ?, ?::text[], ?, ?) returning ${COLS}`,
          [id, p.orgId, url, sqlArray(types), description, k.secrets.seal(secret, webhookSecretAd(id))],
        )
        await appendAudit(tx, p.orgId, {
          ...auditMeta(request),
          action: 'webhook.created',
          target: { kind: 'webhook', id },
          data: { url, types, description },
        })
        await emitEvents(tx, kernelEvent('kernel.webhook.created', `webhook/${id}`, { endpointId: id, url, types }))
        return created!
      })
      return reply.code(201).send({ ...view(row), secret })
    },
  )

  app.get(
    '/webhooks',
    {
      ...guard,
      schema: {
        tags: ['webhooks'],
        summary: 'List webhook endpoints',
        querystring: Type.Object(PageQuery, { additionalProperties: false }),
        response: { 200: pageOf(Endpoint) },
      },
    },
    async (request) => {
      const p = principalOf(request)
      const after = decodeCursor(request.query.cursor)
      const limit = request.query.limit ?? 50
      const rows = await orgTx(k, p.orgId, (tx) =>
        tx.sql<EndpointRow>(
          `select ${COLS} from webhook_endpoints where (?::uuid is null or id > ?::uuid) order by id limit ?`,
          [after, after, limit + 1],
        ),
      )
      const page = toPage(rows, limit)
      return { items: page.items.map(view), nextCursor: page.nextCursor }
    },
  )

  app.get(
    '/webhooks/:id',
    {
      ...guard,
      schema: { tags: ['webhooks'], summary: 'One webhook endpoint', params: IdParams, response: { 200: Endpoint } },
    },
    async (request) => {
      const p = principalOf(request)
      const [row] = await orgTx(k, p.orgId, (tx) =>
        tx.sql<EndpointRow>(`select ${COLS} from webhook_endpoints where id = ?::uuid`, [request.params.id]),
      )
      if (!row) throw KRN.NOT_FOUND({ what: 'webhook endpoint' })
      return view(row)
    },
  )

  app.patch(
    '/webhooks/:id',
    {
      ...guard,
      schema: {
        tags: ['webhooks'],
        summary: 'Change a webhook endpoint: URL, types, description, or status (disable / enable)',
        params: IdParams,
        body: Type.Object(
          {
            url: Type.Optional(Url),
            types: Type.Optional(Types),
            description: Type.Optional(Type.String({ maxLength: 500 })),
            status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('disabled')])),
          },
          { additionalProperties: false, minProperties: 1 },
        ),
        response: { 200: Endpoint },
      },
    },
    async (request) => {
      const p = principalOf(request)
      const b = request.body
      const url = b.url === undefined ? null : await checkUrl(k, b.url)
      const row = await orgTx(k, p.orgId, async (tx) => {
        const [updated] = await tx.sql<EndpointRow>(
          `update webhook_endpoints set url = coalesce(?, url), types = coalesce(?::text[], types), description = coalesce(?, description),
                  status = coalesce(?, status), disabled_reason = case when ?::text = 'disabled' then 'disabled by a user' when ?::text = 'active' then null else disabled_reason end,
                  updated_at = now()
            where id = ?::uuid returning ${COLS}`,
          [
            url,
            b.types ? sqlArray(b.types) : null,
            b.description ?? null,
            b.status ?? null,
            b.status ?? null,
            b.status ?? null,
            request.params.id,
          ],
        )
        if (!updated) throw KRN.NOT_FOUND({ what: 'webhook endpoint' })
        const changes = Object.keys(b)
        await appendAudit(tx, p.orgId, {
          ...auditMeta(request),
          action: b.status === 'disabled' ? 'webhook.disabled' : 'webhook.updated',
          target: { kind: 'webhook', id: updated.id },
          data: { ...b, ...(url ? { url } : {}) },
        })
        await emitEvents(
          tx,
          kernelEvent('kernel.webhook.updated', `webhook/${updated.id}`, { endpointId: updated.id, changes }),
        )
        return updated
      })
      return view(row)
    },
  )

  app.delete(
    '/webhooks/:id',
    {
      ...guard,
      schema: {
        tags: ['webhooks'],
        summary: 'Delete a webhook endpoint and its delivery log',
        params: IdParams,
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      const p = principalOf(request)
      await orgTx(k, p.orgId, async (tx) => {
        const [gone] = await tx.sql<{ id: string; url: string }>(
          'delete from webhook_endpoints where id = ?::uuid returning id, url',
          [request.params.id],
        )
        if (!gone) throw KRN.NOT_FOUND({ what: 'webhook endpoint' })
        await appendAudit(tx, p.orgId, {
          ...auditMeta(request),
          action: 'webhook.deleted',
          target: { kind: 'webhook', id: gone.id },
          data: { url: gone.url },
        })
        await emitEvents(tx, kernelEvent('kernel.webhook.deleted', `webhook/${gone.id}`, { endpointId: gone.id }))
      })
      return reply.code(204).send(null)
    },
  )

  app.post(
    '/webhooks/:id/rotate-secret',
    {
      ...guard,
      schema: {
        tags: ['webhooks'],
        summary: 'Rotate the signing secret; the old one keeps signing (alongside the new) for the grace period',
        params: IdParams,
        body: Type.Optional(
          Type.Object(
            { graceSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 7 * 86400, default: 86400 })) },
            { additionalProperties: false },
          ),
        ),
        response: { 200: EndpointWithSecret },
      },
    },
    async (request) => {
      const p = principalOf(request)
      const grace = request.body?.graceSeconds ?? 86400
      const secret = newWebhookSecret()
      const row = await orgTx(k, p.orgId, async (tx) => {
        const [current] = await tx.sql<{ id: string; secret_enc: string }>(
          'select id, secret_enc from webhook_endpoints where id = ?::uuid for update',
          [request.params.id],
        )
        if (!current) throw KRN.NOT_FOUND({ what: 'webhook endpoint' })
        const [updated] = await tx.sql<EndpointRow>(
          `update webhook_endpoints set previous_secret_enc = secret_enc, secret_enc = ?, previous_secret_expires_at = now() + make_interval(secs => ?), updated_at = now()
            where id = ?::uuid returning ${COLS}`,
          [k.secrets.seal(secret, webhookSecretAd(current.id)), grace, current.id],
        )
        const expires = iso(updated!.previous_secret_expires_at)!
        await appendAudit(tx, p.orgId, {
          ...auditMeta(request),
          action: 'webhook.secret_rotated',
          target: { kind: 'webhook', id: current.id },
          data: { previousSecretExpiresAt: expires },
        })
        await emitEvents(
          tx,
          kernelEvent('kernel.webhook.secret_rotated', `webhook/${current.id}`, {
            endpointId: current.id,
            previousSecretExpiresAt: expires,
          }),
        )
        return updated!
      })
      return { ...view(row), secret }
    },
  )

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
      const limit = request.query.limit ?? 50
      const rows = await orgTx(k, p.orgId, (tx) =>
        listDeliveries(tx, null, { ...request.query, before: decodeCursor(request.query.cursor), limit }),
      )
      const page = toPage(rows, limit)
      return { items: page.items.map(deliveryView), nextCursor: page.nextCursor }
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
      const limit = request.query.limit ?? 50
      const rows = await orgTx(k, p.orgId, async (tx) => {
        const [ep] = await tx.sql('select 1 from webhook_endpoints where id = ?::uuid', [request.params.id])
        if (!ep) throw KRN.NOT_FOUND({ what: 'webhook endpoint' })
        return listDeliveries(tx, request.params.id, {
          ...request.query,
          before: decodeCursor(request.query.cursor),
          limit,
        })
      })
      const page = toPage(rows, limit)
      return { items: page.items.map(deliveryView), nextCursor: page.nextCursor }
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
      const row = await orgTx(k, p.orgId, async (tx) => {
        const [ep] = await tx.sql<{ status: string }>('select status from webhook_endpoints where id = ?::uuid', [
          request.params.id,
        ])
        if (!ep) throw KRN.NOT_FOUND({ what: 'webhook endpoint' })
        if (ep.status !== 'active') throw EVT.ENDPOINT_DISABLED()
        const [d] = await tx.sql<{ id: string; attempts: number }>(
          `update webhook_deliveries set status = 'pending', failure_reason = null, next_attempt_at = now(), updated_at = now(),
                  -- A redelivery is sent out of order, by design: it neither waits for nor holds back other events about its subject.
                  order_seq = case when status = 'pending' then order_seq end
            where id = ?::uuid and endpoint_id = ?::uuid returning id, attempts`,
          [request.params.deliveryId, request.params.id],
        )
        if (!d) throw KRN.NOT_FOUND({ what: 'delivery' })
        await appendAudit(tx, p.orgId, {
          ...auditMeta(request),
          action: 'webhook.redelivered',
          target: { kind: 'webhook', id: request.params.id },
          data: { deliveryId: d.id },
        })
        return d
      })
      // If the queue is away, the sweep picks the delivery up from the database.
      await k.events
        .requeue(row.id, p.orgId, row.attempts)
        .catch((err) => request.log.warn({ err }, 'queueing a redelivery failed; the sweep retries'))
      return reply.code(202).send({ id: row.id, status: 'pending' })
    },
  )
}
