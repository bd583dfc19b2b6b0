import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import { orgTx, type KernelContext } from '../kernel-context.js'
import { AUTH, KRN } from '../errors.js'
import { appendAudit } from '../audit/audit-log.js'
import { auditMeta, principalOf, requirePermission } from '../http/guards.js'
import { PageQuery, pageOf, decodeCursor, encodeCursor, toPage } from '../http/pagination.js'
import { KERNEL_PERMISSIONS as P } from '../identity/permissions.js'
import { PLATFORM_ORG } from '../db/database.js'
import type { PluginVersion } from './versions.js'

const Uuid = Type.String({ format: 'uuid' })
const VersionView = Type.Object({
  id: Uuid,
  name: Type.String(),
  version: Type.String(),
  sha256: Type.String({ description: 'sha256 of the bundle; the kernel verifies it whenever it loads the bundle.' }),
  manifest: Type.Record(Type.String(), Type.Unknown()),
  publisherId: Type.Union([Uuid, Type.Null()]),
  status: Type.String({ description: 'available, or blocked (no installation of it serves).' }),
  createdAt: Type.String({ format: 'date-time' }),
})
const PublisherInvocation = Type.Object({
  id: Uuid,
  version: Type.String(),
  entryKind: Type.String(),
  entryName: Type.String(),
  startedAt: Type.String({ format: 'date-time' }),
  wallMs: Type.Number(),
  cpuMs: Type.Number(),
  hostCalls: Type.Integer(),
  outcome: Type.String(),
  errorCode: Type.Union([Type.String(), Type.Null()]),
})
const IdParams = Type.Object({ id: Uuid })
const MAX_BUNDLE_BODY = 40 * 1024 * 1024

const versionView = (v: Omit<PluginVersion, 'code' | 'sourceMap'>) => ({
  id: v.id,
  name: v.name,
  version: v.version,
  sha256: v.sha256,
  manifest: v.manifest as unknown as Record<string, unknown>,
  publisherId: v.publisherId,
  status: v.status,
  createdAt: v.createdAt,
})

const isPlatform = (p: { orgKind: string; orgId: string }) => p.orgKind === 'platform' && p.orgId === PLATFORM_ORG

/**
 * Plugin versions: until the marketplace reviews them, a platform admin registers a built
 * bundle directly. Listing is open to every signed-in caller (no code is returned).
 */
export function registerVersionRoutes(app: Api, k: KernelContext): void {
  app.post(
    '/plugins/versions',
    {
      bodyLimit: MAX_BUNDLE_BODY,
      preHandler: requirePermission(P.platformAdmin),
      schema: {
        tags: ['plugins'],
        summary: 'Register a built plugin version (platform admins): checked like `trellis-plugin validate`, loaded in the sandbox',
        body: Type.Object(
          {
            manifest: Type.Record(Type.String(), Type.Unknown(), { description: 'trellis.plugin.json' }),
            code: Type.String({ minLength: 1, description: 'dist/plugin.js' }),
            sourceMap: Type.Optional(Type.String({ description: 'dist/plugin.js.map' })),
            sha256: Type.Optional(Type.String({ pattern: '^[0-9a-fA-F]{64}$' })),
            publisherId: Type.Optional(Type.Union([Uuid, Type.Null()], { description: 'The partner that publishes it: it may read the plugin\'s invocation records.' })),
          },
          { additionalProperties: false },
        ),
        response: { 201: VersionView },
      },
    },
    async (request, reply) => {
      const p = principalOf(request)
      if (!isPlatform(p)) throw AUTH.FORBIDDEN({ permission: P.platformAdmin })
      const meta = auditMeta(request)
      const version = await orgTx(k, PLATFORM_ORG, async (tx) => {
        const v = await k.plugins.versions.register(tx, request.body, (b) => k.plugins.probe(b), `${p.kind}:${p.id}`)
        await appendAudit(tx, PLATFORM_ORG, { ...meta, action: 'plugin.version.registered', target: { kind: 'plugin_version', id: v.id }, data: { name: v.name, version: v.version, sha256: v.sha256, capabilities: v.manifest.capabilities } })
        return v
      })
      reply.code(201)
      return versionView(version)
    },
  )

  app.get(
    '/plugins/versions',
    {
      preHandler: requirePermission(),
      schema: { tags: ['plugins'], summary: 'Registered plugin versions', querystring: Type.Intersect([Type.Object({ name: Type.Optional(Type.String({ maxLength: 214 })) }), Type.Object(PageQuery)]), response: { 200: pageOf(VersionView) } },
    },
    async (request) => {
      const limit = request.query.limit ?? 50
      const rows = await k.db.inOrg(principalOf(request).orgId, (tx) => k.plugins.versions.list(tx, request.query.name, decodeCursor(request.query.cursor), limit + 1))
      return toPage(rows.map(versionView), limit)
    },
  )

  app.get(
    '/plugins/versions/:id',
    { preHandler: requirePermission(), schema: { tags: ['plugins'], summary: 'One plugin version', params: IdParams, response: { 200: VersionView } } },
    async (request) => {
      const v = await k.db.inOrg(principalOf(request).orgId, (tx) => k.plugins.versions.byId(tx, request.params.id))
      if (!v) throw KRN.NOT_FOUND({ what: 'plugin version' })
      return versionView(v)
    },
  )

  for (const action of ['block', 'unblock'] as const) {
    app.post(
      `/plugins/versions/:id/${action}`,
      {
        preHandler: requirePermission(P.platformAdmin),
        schema: { tags: ['plugins'], summary: action === 'block' ? 'Block a version everywhere: its installations stop serving at once' : 'Lift a block', params: IdParams, response: { 200: VersionView } },
      },
      async (request) => {
        const p = principalOf(request)
        if (!isPlatform(p)) throw AUTH.FORBIDDEN({ permission: P.platformAdmin })
        const meta = auditMeta(request)
        const v = await orgTx(k, PLATFORM_ORG, async (tx) => {
          const updated = await k.plugins.versions.setStatus(tx, request.params.id, action === 'block' ? 'blocked' : 'available')
          await appendAudit(tx, PLATFORM_ORG, { ...meta, action: `plugin.version.${action}ed`, target: { kind: 'plugin_version', id: updated.id }, data: { name: updated.name, version: updated.version } })
          return updated
        })
        return versionView(v)
      },
    )
  }

  app.get(
    '/plugins/:scope/:name/invocations',
    {
      preHandler: requirePermission(),
      schema: {
        tags: ['plugins'],
        summary: 'Invocation records of a plugin across tenants, for its publisher (no tenant, caller or log data)',
        params: Type.Object({ scope: Type.String({ pattern: '^@[a-z0-9][a-z0-9-]*$' }), name: Type.String({ pattern: '^[a-z0-9][a-z0-9-]*$' }) }),
        querystring: Type.Object(PageQuery),
        response: { 200: pageOf(PublisherInvocation) },
      },
    },
    async (request) => {
      const p = principalOf(request)
      const plugin = `${request.params.scope}/${request.params.name}`
      const limit = request.query.limit ?? 50
      await k.plugins.recorder.flush()
      const rows = await k.db.inOrg(p.orgId, async (tx) => {
        const [own] = await tx.sql<{ publisher_id: string | null }>('select publisher_id from plugin_versions where name = ? and publisher_id is not null limit 1', [plugin])
        const publisher = p.orgKind === 'partner' && p.permissions.has(P.pluginsPublish) && own?.publisher_id === p.orgId
        if (!publisher && !isPlatform(p)) throw KRN.NOT_FOUND({ what: `plugin ${plugin}` })
        return tx.sql<Record<string, unknown>>('select * from trellis_plugin_invocations(?, ?::uuid, ?)', [plugin, decodeCursor(request.query.cursor), limit + 1])
      })
      const items = rows.slice(0, limit).map((r) => ({
        id: r.id as string,
        version: r.version as string,
        entryKind: r.entry_kind as string,
        entryName: r.entry_name as string,
        startedAt: new Date(r.started_at as string).toISOString(),
        wallMs: Number(r.wall_ms),
        cpuMs: Number(r.cpu_ms),
        hostCalls: Number(r.host_calls),
        outcome: r.outcome as string,
        errorCode: (r.error_code as string | null) ?? null,
      }))
      return { items, nextCursor: rows.length > limit ? encodeCursor(items[items.length - 1]!.id) : null }
    },
  )
}
