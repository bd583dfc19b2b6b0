import type { PluginManifest } from '@trellis/plugin-sdk'
import type { Database } from '../db/database.js'
import { PLATFORM_ORG } from '../db/database.js'
import { defaultMount } from './installations.js'
import { openApiPath, routeTable } from './route-table.js'

type Spec = {
  paths?: Record<string, Record<string, unknown>>
  tags?: Array<{ name: string; description?: string }>
} & Record<string, unknown>

let cached: { at: number; manifests: PluginManifest[] } | undefined
const TTL_MS = 5000

/**
 * The OpenAPI document with every available plugin's routes (its newest version), as served
 * under `/v1/x/<name without scope>/…`, with the request and response schemas the kernel
 * enforces for them.
 */
export async function withPluginPaths(k: { db: Pick<Database, 'inOrg'> }, spec: Spec): Promise<Spec> {
  if (!cached || Date.now() - cached.at > TTL_MS) {
    const rows = await k.db.inOrg(PLATFORM_ORG, (tx) =>
      tx.sql<{ manifest: PluginManifest }>(
        `select distinct on (name) manifest from plugin_versions where status = 'approved' order by name, id desc`,
      ),
    )
    cached = { at: Date.now(), manifests: rows.map((r) => r.manifest) }
  }
  if (cached.manifests.length === 0) return spec
  const paths = { ...(spec.paths ?? {}) }
  const tags = [...(spec.tags ?? [])]
  for (const m of cached.manifests) {
    tags.push({
      name: m.name,
      description: `${m.description ?? 'Plugin'} (${m.name}@${m.version}; answers for tenants that installed it)`,
    })
    for (const r of routeTable(m)) {
      const path = `/v1/x/${defaultMount(m.name)}${openApiPath(r.pattern)}`
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
