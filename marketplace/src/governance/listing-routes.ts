import { Type } from '@sinclair/typebox'
import { MKT_GOVERNANCE as MKT } from './errors.js'
import { catalogForPrincipal } from './catalog.js'
import { VersionRow, versionView, type VersionDbRow } from './version-view.js'
import {
  KRN,
  PLATFORM_ORG,
  PageQuery,
  principalOf,
  requirePermission,
  type Api,
  type ExtensionTx,
  type VersionState,
} from '@trellis/core'
import type { Services } from '../services.js'

const Listing = Type.Object({
  name: Type.String(),
  version: Type.String({ description: 'The newest approved version.' }),
  description: Type.String(),
  categories: Type.Array(Type.String()),
  publisher: Type.Object({
    id: Type.Union([Type.String(), Type.Null()]),
    name: Type.Union([Type.String(), Type.Null()]),
  }),
  capabilities: Type.Array(Type.String()),
  permissions: Type.Array(Type.String()),
  installs: Type.Integer({ description: 'Active installations across tenants.' }),
})
const Detail = Type.Intersect([Listing, Type.Object({ versions: Type.Array(VersionRow) })])

const encode = (name: string) => Buffer.from(JSON.stringify({ n: name })).toString('base64url')
function decode(cursor: string | undefined): string | null {
  if (!cursor) return null
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { n?: unknown }
    if (typeof v.n === 'string' && v.n.length <= 214) return v.n
  } catch {
    // fall through
  }
  throw KRN.INVALID_CURSOR()
}

type Latest = VersionDbRow & { publisher_name: string | null }

/**
 * Listings: every plugin with an approved version (its newest), searchable by text, category
 * and publisher; a partner's tenants see only what its channel catalog offers. Details show a
 * plugin's versions — approved and blocked ones to everyone, all of them to the publisher and
 * platform admins — with capabilities, permissions, check results and install counts.
 */
export function registerListingRoutes(app: Api, k: Services): void {
  const installs = async (names: string[]) => {
    if (names.length === 0) return new Map<string, number>()
    const rows = await k.tx.read(PLATFORM_ORG, (tx) =>
      tx.sql<{ name: string; installs: string }>('select * from trellis_install_counts(?::text[])', [names]),
    )
    return new Map(rows.map((r) => [r.name, Number(r.installs)]))
  }
  // Each version with its publisher's name (the organisation service reads it; newest first where asked).
  const withPublishers = async (tx: ExtensionTx, rows: VersionState[]): Promise<Latest[]> => {
    const publishers = await k.organisations.getMany(
      tx,
      rows.map((r) => r.publisher_id),
    )
    return rows.map((r) => ({
      ...(r as unknown as VersionDbRow),
      publisher_name: (r.publisher_id && publishers.get(r.publisher_id)?.name) || null,
    }))
  }
  const listing = (r: Latest, count: number) => ({
    name: r.name,
    version: r.version,
    description: (r.manifest.description as string | undefined) ?? '',
    categories: r.manifest.categories ?? [],
    publisher: { id: r.publisher_id, name: r.publisher_name },
    capabilities: r.manifest.capabilities ?? [],
    permissions: (r.manifest.permissions ?? []).map((x) => x.name),
    installs: count,
  })

  app.get(
    '/marketplace/plugins',
    {
      preHandler: requirePermission(),
      schema: {
        tags: ['marketplace'],
        summary: 'Listed plugins (newest approved version each): search by text, category, publisher',
        querystring: Type.Intersect([
          Type.Object({
            q: Type.Optional(Type.String({ maxLength: 200 })),
            category: Type.Optional(Type.String({ maxLength: 40 })),
            publisher: Type.Optional(Type.String({ format: 'uuid' })),
            uncurated: Type.Optional(
              Type.Boolean({
                description: 'Partners: every listed plugin, not only those your channel catalog offers (to edit it).',
              }),
            ),
          }),
          Type.Object(PageQuery),
        ]),
        response: {
          200: Type.Object({
            catalog: Type.Union([Type.Object({ displayName: Type.String() }), Type.Null()]),
            items: Type.Array(Listing),
            nextCursor: Type.Union([Type.String(), Type.Null()]),
          }),
        },
      },
    },
    async (request) => {
      const p = principalOf(request)
      const { q, category, publisher, cursor, uncurated } = request.query
      const limit = request.query.limit ?? 50
      const after = decode(cursor)
      const { rows, catalog } = await k.tx.read(p.orgId, async (tx) => {
        const catalog = await catalogForPrincipal(k, tx, p)
        // A partner may look past its own catalog (to choose what goes in it); a tenant never can.
        const curated = !(uncurated && p.orgKind === 'partner')
        const allowed = curated && catalog?.mode === 'allow_list' ? catalog.plugins : null
        const found = await k.versions.listed(tx, {
          text: q,
          category,
          publisherId: publisher,
          names: allowed,
          after,
          limit: limit + 1,
        })
        return { rows: await withPublishers(tx, found), catalog }
      })
      const page = rows.slice(0, limit)
      const counts = await installs(page.map((r) => r.name))
      return {
        catalog: catalog?.displayName ? { displayName: catalog.displayName } : null,
        items: page.map((r) => listing(r, counts.get(r.name) ?? 0)),
        nextCursor: rows.length > limit ? encode(page[page.length - 1]!.name) : null,
      }
    },
  )

  app.get(
    '/marketplace/plugins/:scope/:name',
    {
      preHandler: requirePermission(),
      schema: {
        tags: ['marketplace'],
        summary: 'A plugin: its versions with capabilities, permissions, check results; install count',
        params: Type.Object({
          scope: Type.String({ pattern: '^@[a-z0-9][a-z0-9-]*$' }),
          name: Type.String({ pattern: '^[a-z0-9][a-z0-9-]*$' }),
        }),
        response: { 200: Detail },
      },
    },
    async (request) => {
      const p = principalOf(request)
      const plugin = `${request.params.scope}/${request.params.name}`
      const rows = await k.tx.read(p.orgId, async (tx) =>
        withPublishers(tx, (await k.versions.versionsOf(tx, plugin)).reverse()),
      )
      const insider =
        (p.orgKind === 'platform' && p.orgId === PLATFORM_ORG) ||
        (p.orgKind === 'partner' && rows.some((r) => r.publisher_id === p.orgId))
      const visible = rows.filter((r) => insider || r.status === 'approved' || r.status === 'blocked')
      const latest = rows.find((r) => r.status === 'approved') ?? (insider ? rows[0] : undefined)
      if (!latest) throw MKT.PLUGIN_NOT_FOUND({ plugin })
      const counts = await installs([plugin])
      return { ...listing(latest, counts.get(plugin) ?? 0), versions: visible.map(versionView) }
    },
  )
}
