import type { ManifestRoute, PluginManifest } from '@trellis/plugin-sdk'

/** One declared plugin route, ready to match concrete paths. */
export interface PluginRoute {
  /** The bundle entry name, `"<METHOD> <path>"`. */
  entry: string
  method: string
  pattern: string
  segments: Array<{ literal: string } | { param: string }>
  declared: ManifestRoute
}

/** A route and the parameters matched from the path. */
export interface RouteMatch {
  route: PluginRoute
  params: Record<string, string>
}

const tables = new WeakMap<PluginManifest, PluginRoute[]>()

const split = (path: string) => path.split('/').filter((s) => s !== '')

/** The routes a manifest declares (computed once per manifest object). */
export function routeTable(manifest: PluginManifest): PluginRoute[] {
  let table = tables.get(manifest)
  if (!table) {
    table = (manifest.routes ?? []).map((r) => ({
      entry: `${r.method} ${r.path}`,
      method: r.method,
      pattern: r.path,
      segments: split(r.path).map((s) => (s.startsWith(':') ? { param: s.slice(1) } : { literal: s })),
      declared: r,
    }))
    // Literal segments win over parameters at the same position (`/orders/new` before `/orders/:id`).
    table.sort((a, b) => weight(b) - weight(a))
    tables.set(manifest, table)
  }
  return table
}

function weight(r: PluginRoute): number {
  return r.segments.reduce((w, s, i) => w + ('literal' in s ? 2 ** (16 - Math.min(i, 16)) : 0), 0)
}

/**
 * Finds the route for a method and a path relative to the plugin's mount. Returns `undefined`
 * when nothing matches; `methodMismatch` when the path matches under another method.
 */
export function matchRoute(
  manifest: PluginManifest,
  method: string,
  path: string,
): RouteMatch | { methodMismatch: true } | undefined {
  const parts = split(path)
  let pathMatched = false
  for (const route of routeTable(manifest)) {
    if (route.segments.length !== parts.length) continue
    const params: Record<string, string> = {}
    let ok = true
    for (let i = 0; i < parts.length && ok; i++) {
      const seg = route.segments[i]!
      let value: string
      try {
        value = decodeURIComponent(parts[i]!)
      } catch {
        return undefined
      }
      if ('literal' in seg) ok = seg.literal === value
      else params[seg.param] = value
    }
    if (!ok) continue
    if (route.method !== method && !(method === 'HEAD' && route.method === 'GET')) {
      pathMatched = true
      continue
    }
    return { route, params }
  }
  return pathMatched ? { methodMismatch: true } : undefined
}

/** The OpenAPI form of a route pattern: `/orders/:id` → `/orders/{id}`. */
export function openApiPath(pattern: string): string {
  return pattern.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}')
}
