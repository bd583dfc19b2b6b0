import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import { principalOf, requirePermission } from '../http/guards.js'
import { PageQuery, pageOf, decodeCursor } from '../http/pagination.js'
import { KERNEL_PERMISSIONS as P } from '../identity/permissions.js'
import { encodeCursor } from '../http/pagination.js'
import type { AuditRow } from './chain.js'

const Entry = Type.Object({
  id: Type.String({ format: 'uuid' }),
  seq: Type.Union([Type.String(), Type.Null()], {
    description: 'Position in the chain; null for a moment until the entry is sealed.',
  }),
  at: Type.String({ format: 'date-time' }),
  actor: Type.Object({ kind: Type.String(), id: Type.String() }),
  action: Type.String(),
  target: Type.Union([Type.Object({ kind: Type.String(), id: Type.Union([Type.String(), Type.Null()]) }), Type.Null()]),
  data: Type.Record(Type.String(), Type.Unknown()),
  ip: Type.Union([Type.String(), Type.Null()]),
  requestId: Type.Union([Type.String(), Type.Null()]),
  hash: Type.Union([Type.String(), Type.Null()]),
  erasedAt: Type.Optional(
    Type.String({
      format: 'date-time',
      description:
        'When the payload was erased (retention or erasure of a data subject); data is then {} and the chain still verifies',
    }),
  ),
})

/** The organisation's own audit chain, newest first. */
export function registerAuditRoutes(app: Api, deps: { orgTx: OrgTx }): void {
  app.get(
    '/audit',
    {
      preHandler: requirePermission(P.auditRead),
      schema: {
        tags: ['audit'],
        summary: "Your organisation's audit log, newest first",
        querystring: Type.Object(
          {
            ...PageQuery,
            actor: Type.Optional(
              Type.String({
                maxLength: 320,
                description: 'Actor id (user id, API key id, or email for sign-in attempts).',
              }),
            ),
            action: Type.Optional(
              Type.String({ maxLength: 200, description: 'Exact action, or a prefix ending in `.` (e.g. `auth.`).' }),
            ),
            from: Type.Optional(Type.String({ format: 'date-time' })),
            to: Type.Optional(Type.String({ format: 'date-time' })),
          },
          { additionalProperties: false },
        ),
        response: { 200: pageOf(Entry) },
      },
    },
    async (request) => {
      const p = principalOf(request)
      const { actor, action, from, to } = request.query
      const before = decodeCursor(request.query.cursor)
      const limit = request.query.limit ?? 50
      const prefix = action?.endsWith('.') ? action : null
      const rows = await deps.orgTx(p.orgId, (tx) =>
        tx.sql<AuditRow>(
          `select *, seq::text as seq_text from audit_log
            where (?::text is null or actor_id = ?)
              and (?::text is null or action = ?)
              and (?::text is null or starts_with(action, ?))
              and (?::timestamptz is null or at >= ?::timestamptz)
              and (?::timestamptz is null or at < ?::timestamptz)
              and (?::uuid is null or id < ?::uuid)
            order by id desc limit ?`,
          [
            actor ?? null,
            actor ?? null,
            prefix ? null : (action ?? null),
            prefix ? null : (action ?? null),
            prefix,
            prefix,
            from ?? null,
            from ?? null,
            to ?? null,
            to ?? null,
            before,
            before,
            limit + 1,
          ],
        ),
      )
      const items = rows.slice(0, limit)
      return {
        items: items.map((r) => ({
          id: r.id,
          seq: (r as AuditRow & { seq_text: string | null }).seq_text,
          at: new Date(r.at).toISOString(),
          actor: { kind: r.actor_kind, id: r.actor_id },
          action: r.action,
          target: r.target_kind === null ? null : { kind: r.target_kind, id: r.target_id },
          data: (r.data ?? {}) as Record<string, unknown>,
          ip: r.ip,
          requestId: r.request_id,
          hash: r.hash,
          ...(r.erased_at ? { erasedAt: new Date(r.erased_at).toISOString() } : {}),
        })),
        nextCursor: rows.length > limit ? encodeCursor(items[items.length - 1]!.id) : null,
      }
    },
  )
}
