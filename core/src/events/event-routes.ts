import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import { principalOf, requirePermission } from '../http/guards.js'
import { PageQuery, pageOf, decodeCursor, toPage } from '../http/pagination.js'
import { KERNEL_PERMISSIONS as P } from '../identity/permissions.js'
import { KERNEL_EVENTS } from './catalogue.js'

const EventView = Type.Object({
  id: Type.String({ format: 'uuid' }),
  tenantId: Type.String({ format: 'uuid' }),
  type: Type.String(),
  source: Type.String(),
  subject: Type.String(),
  sequence: Type.Union([Type.Integer(), Type.Null()], {
    description:
      "The event's number in its subject's stream (1, 2, 3 …), given when it is fanned out to subscribers; null until then, and for good when nobody subscribed to it as it was emitted.",
  }),
  time: Type.String({ format: 'date-time' }),
  data: Type.Record(Type.String(), Type.Unknown()),
})

/** The tenant's events, and the catalogue of event types with the JSON Schemas of their payloads. */
export function registerEventRoutes(app: Api, deps: { orgTx: OrgTx }): void {
  app.get(
    '/events',
    {
      preHandler: requirePermission(P.eventsRead),
      schema: {
        tags: ['events'],
        summary: "Your organisation's events, oldest first",
        querystring: Type.Object(
          {
            ...PageQuery,
            type: Type.Optional(Type.String({ maxLength: 200, description: 'Only events of this type.' })),
            since: Type.Optional(
              Type.String({ format: 'date-time', description: 'Only events at or after this time.' }),
            ),
            until: Type.Optional(Type.String({ format: 'date-time', description: 'Only events before this time.' })),
          },
          { additionalProperties: false },
        ),
        response: { 200: pageOf(EventView) },
      },
    },
    async (request) => {
      const p = principalOf(request)
      const { type, since, until } = request.query
      const after = decodeCursor(request.query.cursor)
      const limit = request.query.limit ?? 50
      const rows = await deps.orgTx(p.orgId, (tx) =>
        tx.sql<{
          id: string
          tenant_id: string
          type: string
          source: string
          subject: string
          seq: string | null
          time: Date
          data: Record<string, unknown>
        }>(
          `select id, tenant_id, type, source, subject, seq, time, data from events
            where (?::uuid is null or id > ?::uuid) and (?::text is null or type = ?::text)
              and (?::timestamptz is null or time >= ?::timestamptz) and (?::timestamptz is null or time < ?::timestamptz)
            order by id limit ?`,
          [
            after,
            after,
            type ?? null,
            type ?? null,
            since ?? null,
            since ?? null,
            until ?? null,
            until ?? null,
            limit + 1,
          ],
        ),
      )
      const page = toPage(rows, limit)
      return {
        items: page.items.map((r) => ({
          id: r.id,
          tenantId: r.tenant_id,
          type: r.type,
          source: r.source,
          subject: r.subject,
          sequence: r.seq === null ? null : Number(r.seq),
          time: new Date(r.time).toISOString(),
          data: r.data,
        })),
        nextCursor: page.nextCursor,
      }
    },
  )

  app.get(
    '/events/types',
    {
      preHandler: requirePermission(),
      schema: {
        tags: ['events'],
        summary: 'Event types and the JSON Schemas of their payloads',
        response: {
          200: Type.Object({
            items: Type.Array(Type.Object({ type: Type.String(), description: Type.String(), schema: Type.Unknown() })),
          }),
        },
      },
    },
    async () => ({
      items: Object.entries(KERNEL_EVENTS).map(([type, e]) => ({
        type,
        description: e.description,
        schema: JSON.parse(JSON.stringify(e.data)),
      })),
    }),
  )
}
