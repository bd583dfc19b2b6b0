import { randomBytes } from 'node:crypto'
import { Type } from '@sinclair/typebox'
import { v7 as uuidv7 } from 'uuid'
import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import { AUTH, KRN } from '../errors.js'
import { auditedWrite } from '../audit/audited-write.js'
import { kernelEvent } from '../events/outbox.js'
import { auditOf, principalOf, requirePermission } from '../http/guards.js'
import { PageQuery, pageOf, pageAfterCursor } from '../http/pagination.js'
import { KERNEL_PERMISSIONS as P, PERMISSION_PATTERN, missingPermissions } from './permissions.js'
import { hashToken } from './sessions.js'
import { formatApiKey } from './authenticate.js'
import { sqlArray } from '../db/database.js'

const ApiKeyView = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  prefix: Type.String({ description: 'The start of the key, to recognise it.' }),
  permissions: Type.Array(Type.String()),
  createdBy: Type.String({ format: 'uuid' }),
  createdAt: Type.String({ format: 'date-time' }),
  expiresAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  revokedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
})

interface KeyRow {
  id: string
  name: string
  permissions: string[]
  created_by: string
  created_at: Date
  expires_at: Date | null
  revoked_at: Date | null
}

const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null)
const toView = (r: KeyRow) => ({
  id: r.id,
  name: r.name,
  prefix: `trk_${r.id.replace(/-/g, '').slice(0, 8)}`,
  permissions: r.permissions,
  createdBy: r.created_by,
  createdAt: new Date(r.created_at).toISOString(),
  expiresAt: iso(r.expires_at),
  revokedAt: iso(r.revoked_at),
})

/** API keys: for machines, scoped to a subset of their creator's permissions, shown once. */
export function registerApiKeyRoutes(app: Api, deps: { orgTx: OrgTx }): void {
  app.post(
    '/api-keys',
    {
      preHandler: requirePermission(P.apiKeysManage),
      schema: {
        tags: ['identity'],
        summary: 'Create an API key (the secret is in this response only)',
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 200 }),
            permissions: Type.Array(Type.String({ pattern: PERMISSION_PATTERN, maxLength: 200 }), {
              minItems: 1,
              maxItems: 500,
              uniqueItems: true,
            }),
            expiresAt: Type.Optional(Type.String({ format: 'date-time' })),
          },
          { additionalProperties: false },
        ),
        response: { 201: Type.Intersect([ApiKeyView, Type.Object({ key: Type.String() })]) },
      },
    },
    async (request, reply) => {
      const p = principalOf(request)
      const { name, permissions, expiresAt } = request.body
      const missing = missingPermissions(p.permissions, permissions)
      if (missing.length) throw AUTH.PERMISSION_ESCALATION({ permissions: missing })
      if (expiresAt && new Date(expiresAt).getTime() <= Date.now())
        throw KRN.VALIDATION_FAILED({ reason: 'body/expiresAt must be in the future' })
      const id = uuidv7()
      const secret = randomBytes(32).toString('base64url')
      const [row] = await deps.orgTx(p.orgId, (tx) =>
        auditedWrite<KeyRow>(tx, {
          write: {
            sql: `insert into api_keys (id, tenant_id, org_kind, name, secret_hash, permissions, created_by, expires_at)
                  values (?::uuid, ?::uuid, ?, ?, ?, ?::text[], ?::uuid, ?::timestamptz) returning *`,
            params: [
              id,
              p.orgId,
              p.orgKind,
              name,
              hashToken(secret),
              sqlArray(permissions),
              p.userId,
              expiresAt ?? null,
            ],
          },
          auditOrg: p.orgId,
          audit: auditOf(
            request,
            'api_key.created',
            { kind: 'api_key', id },
            { name, permissions, expiresAt: expiresAt ?? null },
          ),
          events: [kernelEvent('kernel.api_key.created', `api_key/${id}`, { apiKeyId: id, name, permissions })],
          last: true,
        }),
      )
      // The key added to the view as it is, not spread into a copy of it.
      return reply.code(201).send(Object.assign(toView(row!), { key: formatApiKey(id, secret) }))
    },
  )

  app.get(
    '/api-keys',
    {
      preHandler: requirePermission(P.apiKeysManage),
      schema: {
        tags: ['identity'],
        summary: "List your organisation's API keys (never their secrets)",
        querystring: Type.Object(PageQuery, { additionalProperties: false }),
        response: { 200: pageOf(ApiKeyView) },
      },
    },
    async (request) => {
      const p = principalOf(request)
      return deps.orgTx(p.orgId, (tx) =>
        pageAfterCursor(tx, { select: 'select * from api_keys where' }, request.query, toView),
      )
    },
  )

  app.delete(
    '/api-keys/:id',
    {
      preHandler: requirePermission(P.apiKeysManage),
      schema: {
        tags: ['identity'],
        summary: 'Revoke an API key: it stops working at once',
        params: Type.Object({ id: Type.String({ format: 'uuid' }) }),
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      const p = principalOf(request)
      await deps.orgTx(p.orgId, async (tx) => {
        const id = request.params.id
        const rows = await auditedWrite(tx, {
          write: {
            sql: 'update api_keys set revoked_at = now() where id = ?::uuid and revoked_at is null returning id',
            params: [id],
          },
          auditOrg: p.orgId,
          audit: auditOf(request, 'api_key.revoked', { kind: 'api_key', id }),
          events: [kernelEvent('kernel.api_key.revoked', `api_key/${id}`, { apiKeyId: id })],
        })
        if (rows.length === 0) {
          const [exists] = await tx.sql('select 1 from api_keys where id = ?::uuid', [id])
          if (!exists) throw KRN.NOT_FOUND({ what: 'API key' })
        }
      })
      return reply.code(204).send(null)
    },
  )
}
