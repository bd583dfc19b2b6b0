import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import type { Database } from '../db/database.js'
import type { Branding } from './entities.js'
import { BrandingSchema } from './schemas.js'

/** The branding the console shows (white-label): a partner's for itself and its tenants. */
export function registerBrandingRoutes(app: Api, deps: { db: Pick<Database, 'unscoped'> }): void {
  app.get(
    '/branding',
    {
      schema: {
        tags: ['tenancy'],
        summary:
          "The branding the console shows: your organisation's (a tenant inherits its partner's), or, signed out, the one for ?domain=",
        security: [],
        querystring: Type.Object(
          { domain: Type.Optional(Type.String({ maxLength: 253 })) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ source: Type.String(), branding: BrandingSchema }) },
      },
    },
    async (request) => {
      const p = request.principal
      const rows = await deps.db.unscoped((tx) => {
        if (p)
          return tx.sql<{ branding: Branding }>(
            'select branding from partners where id = ?::uuid or id = (select partner_id from tenants where id = ?::uuid)',
            [p.orgId, p.orgId],
          )
        if (request.query.domain)
          return tx.sql<{ branding: Branding }>(
            `select branding from partners where branding->>'customDomain' = lower(?)`,
            [request.query.domain],
          )
        return Promise.resolve([] as Array<{ branding: Branding }>)
      })
      return rows[0]
        ? { source: 'partner', branding: rows[0].branding }
        : { source: 'platform', branding: { displayName: 'Trellis', primaryColor: '#2f6f4e' } }
    },
  )
}
