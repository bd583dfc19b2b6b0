import { Type } from '@sinclair/typebox'
import { v7 as uuidv7 } from 'uuid'
import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import type { SecretBox } from '../crypto/secret-box.js'
import { KRN } from '../errors.js'
import { auditedWrite } from '../audit/audited-write.js'
import { auditMeta, principalOf, requirePermission } from '../http/guards.js'
import { PageQuery, pageOf, pageAfterCursor } from '../http/pagination.js'
import { KERNEL_PERMISSIONS as P } from '../identity/permissions.js'
import { sqlArray, type Tx } from '../db/database.js'
import { kernelEvent, subscribersChanged } from './outbox.js'
import { newWebhookSecret } from './signing.js'
import { webhookSecretAd } from './delivery-types.js'
import { type WebhookEgress, checkUrl, rememberingVerdicts } from './webhook-url.js'
import { COLS, Endpoint, EndpointWithSecret, type EndpointRow, IdParams, Types, Url, view } from './webhook-schemas.js'

export interface WebhookRouteDeps {
  orgTx: OrgTx
  /** Checks endpoint URLs against the egress rules deliveries follow. */
  egress: WebhookEgress
  /** Seals signing secrets at rest. */
  secrets: Pick<SecretBox, 'seal'>
}

// A change's own subscription generation (ADR 0105), returned beside the endpoint by the writes.
const STAMP = 'subscribers_gen::text'
type StampedRow = EndpointRow & { subscribers_gen: string | null }

/** Webhook endpoints of the caller's organisation (their secrets and delivery log have their own files). */
export function registerWebhookRoutes(app: Api, deps: WebhookRouteDeps): void {
  const guard = { preHandler: requirePermission(P.webhooksManage) }
  const egress = rememberingVerdicts(deps.egress)

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
      const url = await checkUrl(egress, request.body.url)
      const { types, description = '' } = request.body
      const id = uuidv7()
      const secret = newWebhookSecret()
      let used: Tx | undefined
      const [row] = await deps.orgTx(p.orgId, (tx) => {
        used = tx
        return auditedWrite<StampedRow>(tx, {
          write: {
            sql: `insert into webhook_endpoints (id, tenant_id, url, types, description, secret_enc) values (?::uuid, ?::uuid, ?, ?::text[], ?, ?) returning ${COLS}, ${STAMP}`,
            params: [id, p.orgId, url, sqlArray(types), description, deps.secrets.seal(secret, webhookSecretAd(id))],
          },
          auditOrg: p.orgId,
          audit: {
            ...auditMeta(request),
            action: 'webhook.created',
            target: { kind: 'webhook', id },
            data: { url, types, description },
          },
          events: [kernelEvent('kernel.webhook.created', `webhook/${id}`, { endpointId: id, url, types })],
          last: true,
        })
      })
      subscribersChanged(used, row!.subscribers_gen, types)
      return reply.code(201).send({ ...view(row!), secret })
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
      return deps.orgTx(p.orgId, (tx) =>
        pageAfterCursor(tx, { select: `select ${COLS} from webhook_endpoints where` }, request.query, view),
      )
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
      const [row] = await deps.orgTx(p.orgId, (tx) =>
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
      const url = b.url === undefined ? null : await checkUrl(egress, b.url)
      const changes = Object.keys(b)
      const id = request.params.id
      let used: Tx | undefined
      const [row] = await deps.orgTx(p.orgId, (tx) => {
        used = tx
        return auditedWrite<StampedRow>(tx, {
          write: {
            sql: `update webhook_endpoints set url = coalesce(?, url), types = coalesce(?::text[], types), description = coalesce(?, description),
                    status = coalesce(?, status), disabled_reason = case when ?::text = 'disabled' then 'disabled by a user' when ?::text = 'active' then null else disabled_reason end,
                    updated_at = now()
                  where id = ?::uuid returning ${COLS}, ${STAMP}`,
            params: [
              url,
              b.types ? sqlArray(b.types) : null,
              b.description ?? null,
              b.status ?? null,
              b.status ?? null,
              b.status ?? null,
              id,
            ],
          },
          auditOrg: p.orgId,
          audit: {
            ...auditMeta(request),
            action: b.status === 'disabled' ? 'webhook.disabled' : 'webhook.updated',
            target: { kind: 'webhook', id },
            data: { ...b, ...(url ? { url } : {}) },
          },
          events: [kernelEvent('kernel.webhook.updated', `webhook/${id}`, { endpointId: id, changes })],
          last: true,
        })
      })
      if (!row) throw KRN.NOT_FOUND({ what: 'webhook endpoint' })
      if (b.types || b.status) subscribersChanged(used, row.subscribers_gen, row.types)
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
      const id = request.params.id
      let used: Tx | undefined
      await deps.orgTx(p.orgId, async (tx) => {
        used = tx
        const [current] = await tx.sql<{ url: string }>(
          'select url from webhook_endpoints where id = ?::uuid for update',
          [id],
        )
        if (!current) throw KRN.NOT_FOUND({ what: 'webhook endpoint' })
        await auditedWrite(tx, {
          write: { sql: 'delete from webhook_endpoints where id = ?::uuid returning id', params: [id] },
          auditOrg: p.orgId,
          audit: {
            ...auditMeta(request),
            action: 'webhook.deleted',
            target: { kind: 'webhook', id },
            data: { url: current.url },
          },
          events: [kernelEvent('kernel.webhook.deleted', `webhook/${id}`, { endpointId: id })],
          last: true,
        })
      })
      subscribersChanged(used)
      return reply.code(204).send(null)
    },
  )
}
