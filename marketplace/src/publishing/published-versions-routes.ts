import { Type } from '@sinclair/typebox'
import { PageQuery, decodeCursor, pageOf, toPageOf, type Api } from '@trellis/core'
import { VersionRow, versionView, type VersionDbRow } from '../governance/version-view.js'
import { publisherOf } from './publisher.js'
import type { Services } from '../services.js'

/**
 * A publisher's own versions of every plugin, in every status (checking, failed checks, in
 * review, approved, rejected, blocked), newest first: what its publishing page shows, with each
 * version's check results and review decision.
 */
export function registerPublishedVersionsRoutes(app: Api, k: Services): void {
  app.get(
    '/marketplace/publisher/versions',
    {
      schema: {
        tags: ['marketplace'],
        summary:
          'Your published versions in every status, newest first, with their check results and review decisions (publishers)',
        querystring: Type.Object(PageQuery),
        response: { 200: pageOf(VersionRow) },
      },
    },
    async (request) => {
      const p = publisherOf(request)
      const limit = request.query.limit ?? 50
      const rows = await k.tx.read(p.orgId, (tx) =>
        k.versions.publishedBy(tx, p.orgId, { before: decodeCursor(request.query.cursor), limit: limit + 1 }),
      )
      return toPageOf(rows as unknown as VersionDbRow[], limit, versionView)
    },
  )
}
