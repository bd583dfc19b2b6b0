import type { PluginManifest } from '@trellis/plugin-sdk'
import type { Database } from '../db/database.js'
import { PLATFORM_ORG } from '../db/database.js'
import { defaultMount } from './installations.js'
import { openApiPath, routeTable } from './route-table.js'

type Spec = {
  paths?: Record<string, Record<string, unknown>>
  tags?: Array<{ name: string; description?: string }>
} & Record<string, unknown>

let cached: { at: number; mounted: Mounted[] } | undefined
const TTL_MS = 5000

/** A plugin version's manifest and where its routes answer. */
interface Mounted {
  manifest: PluginManifest
  mount: string
}

/** The newest approved version of every plugin, at its default mount: what any tenant may install. */
async function catalogue(k: { db: Pick<Database, 'inOrg'> }): Promise<Mounted[]> {
  if (!cached || Date.now() - cached.at > TTL_MS) {
    const rows = await k.db.inOrg(PLATFORM_ORG, (tx) =>
      tx.sql<{ manifest: PluginManifest }>(
        `select distinct on (name) manifest from plugin_versions where status = 'approved' order by name, id desc`,
      ),
    )
    cached = {
      at: Date.now(),
      mounted: rows.map((r) => ({ manifest: r.manifest, mount: defaultMount(r.manifest.name) })),
    }
  }
  return cached.mounted
}

/** What the tenant has installed and active: each at its installed version and mount. */
async function installedBy(k: { db: Pick<Database, 'inOrg'> }, tenantId: string): Promise<Mounted[]> {
  return k.db.inOrg(tenantId, (tx) =>
    tx.sql<Mounted>(
      `select v.manifest, i.mount from plugin_installations i join plugin_versions v on v.id = i.version_id
        where i.status = 'active' order by i.plugin`,
    ),
  )
}

/**
 * The OpenAPI document with plugin routes as served under `/v1/x/<mount>/…`, with the request
 * and response schemas the kernel enforces for them: for a tenant, only what it has installed
 * (its installed version, at its mount); otherwise every available plugin (its newest version).
 */
export async function withPluginPaths(
  k: { db: Pick<Database, 'inOrg'> },
  spec: Spec,
  tenantId?: string,
): Promise<Spec> {
  const mounted = tenantId ? await installedBy(k, tenantId) : await catalogue(k)
  if (mounted.length === 0) return spec
  const paths = { ...(spec.paths ?? {}) }
  const tags = [...(spec.tags ?? [])]
  for (const { manifest: m, mount } of mounted) {
    tags.push({
      name: m.name,
      description: tenantId
        ? `${m.description ?? 'Plugin'} (${m.name}@${m.version}, installed)`
        : `${m.description ?? 'Plugin'} (${m.name}@${m.version}; answers for tenants that installed it)`,
    })
    for (const r of routeTable(m)) {
      const path = `/v1/x/${mount}${openApiPath(r.pattern)}`
      const params = [
        ...r.segments.flatMap((s) =>
          'param' in s
            ? [{ name: s.param, in: 'path', required: true, schema: paramSchema(r.declared.request?.params, s.param) }]
            : [],
        ),
        ...queryParams(r.declared.request?.query),
      ]
      const responses: Record<string, unknown> = {}
      for (const [status, schema] of Object.entries(r.declared.response ?? {}))
        responses[status] = { description: `${status} response`, content: { 'application/json': { schema } } }
      if (Object.keys(responses).length === 0) responses.default = { description: "The plugin's response" }
      paths[path] = {
        ...(paths[path] ?? {}),
        [r.method.toLowerCase()]: {
          tags: [m.name],
          summary: r.declared.description ?? r.entry,
          ...(r.declared.permission ? { description: `Needs the permission \`${r.declared.permission}\`.` } : {}),
          ...(params.length ? { parameters: params } : {}),
          ...(r.declared.request?.body !== undefined
            ? { requestBody: { required: true, content: { 'application/json': { schema: r.declared.request.body } } } }
            : {}),
          responses,
        },
      }
    }
  }
  return { ...spec, paths, tags }
}

/** The query parameters a route declares (`request.query`, an object schema), one per property. */
function queryParams(schema: unknown): Array<Record<string, unknown>> {
  const s = schema as { properties?: Record<string, { description?: string }>; required?: string[] } | undefined
  return Object.entries(s?.properties ?? {}).map(([name, prop]) => ({
    name,
    in: 'query',
    required: s?.required?.includes(name) ?? false,
    ...(prop.description ? { description: prop.description } : {}),
    schema: prop,
  }))
}

function paramSchema(schema: unknown, name: string): unknown {
  const props = (schema as { properties?: Record<string, unknown> } | undefined)?.properties
  return props?.[name] ?? { type: 'string' }
}
