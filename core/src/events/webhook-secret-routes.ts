import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import type { SecretBox } from '../crypto/secret-box.js'
import { KRN } from '../errors.js'
import { auditedWrite } from '../audit/audited-write.js'
import { auditMeta, principalOf, requirePermission } from '../http/guards.js'
import { KERNEL_PERMISSIONS as P } from '../identity/permissions.js'
import { kernelEvent } from './outbox.js'
import { newWebhookSecret } from './signing.js'
import { webhookSecretAd } from './delivery-types.js'
import { COLS, EndpointWithSecret, type EndpointRow, IdParams, view } from './webhook-schemas.js'

/** Rotating a webhook endpoint's signing secret. */
export function registerWebhookSecretRoutes(app: Api, deps: { orgTx: OrgTx; secrets: Pick<SecretBox, 'seal'> }): void {
  const guard = { preHandler: requirePermission(P.webhooksManage) }

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
      const row = await deps.orgTx(p.orgId, async (tx) => {
        // The old secret's end is set by the database's clock, as every delivery compares it with that clock.
        const [current] = await tx.sql<{ id: string; expires: Date }>(
          'select id, now() + make_interval(secs => ?) as expires from webhook_endpoints where id = ?::uuid for update',
          [grace, request.params.id],
        )
        if (!current) throw KRN.NOT_FOUND({ what: 'webhook endpoint' })
        const expires = new Date(current.expires).toISOString()
        const [updated] = await auditedWrite<EndpointRow>(tx, {
          write: {
            sql: `update webhook_endpoints set previous_secret_enc = secret_enc, secret_enc = ?, previous_secret_expires_at = ?::timestamptz, updated_at = now()
                  where id = ?::uuid returning ${COLS}`,
            params: [deps.secrets.seal(secret, webhookSecretAd(current.id)), expires, current.id],
          },
          auditOrg: p.orgId,
          audit: {
            ...auditMeta(request),
            action: 'webhook.secret_rotated',
            target: { kind: 'webhook', id: current.id },
            data: { previousSecretExpiresAt: expires },
          },
          events: [
            kernelEvent('kernel.webhook.secret_rotated', `webhook/${current.id}`, {
              endpointId: current.id,
              previousSecretExpiresAt: expires,
            }),
          ],
        })
        return updated!
      })
      return { ...view(row), secret }
    },
  )
}
