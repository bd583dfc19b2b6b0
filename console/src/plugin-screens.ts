/**
 * Plugin screens: what an installed plugin's manifest declares in its `console` section (lists,
 * detail views, create forms, actions with confirmation over its own routes), found through the
 * installations (admins) or the marketplace listing (everyone else, at the default mount).
 * Only data crosses: the console renders it; no plugin code runs here.
 */
import { api, call } from './api/client'

type Column = { field: string; label: string }

export interface ScreenPage {
  id: string
  title: string
  permission?: string
  list: {
    route: string
    key?: string
    columns: Column[]
    filters?: Array<{ param: string; label: string; options?: string[] }>
  }
  detail?: {
    route: string
    fields?: Column[]
    tables?: Array<{ field: string; label: string; columns: Column[] }>
    tasks?: { field: string; label: string }
  }
  create?: { label: string; route: string }
  actions?: Array<{ label: string; route: string; confirm?: string; when?: Record<string, unknown> }>
}

export interface PluginScreens {
  plugin: string
  mount: string
  pages: ScreenPage[]
  /** Request body schemas of the plugin's routes, by `METHOD /path`. */
  bodies: Record<string, object>
}

/** A setting as the manifest's settings schema declares it (`secret: true`: write-only). */
export type SettingSchema = { type?: string; title?: string; description?: string; secret?: boolean }

type Manifest = {
  console?: { pages?: ScreenPage[] }
  routes?: Array<{ method: string; path: string; request?: { body?: object } }>
  settings?: { properties?: Record<string, SettingSchema> }
}

function screensOf(plugin: string, mount: string, manifest: Manifest): PluginScreens | undefined {
  const pages = manifest.console?.pages ?? []
  if (!pages.length) return undefined
  const bodies: Record<string, object> = {}
  for (const r of manifest.routes ?? []) if (r.request?.body) bodies[`${r.method} ${r.path}`] = r.request.body
  return { plugin, mount, pages, bodies }
}

export async function manifestOf(plugin: string, versionId?: string): Promise<Manifest | undefined> {
  const [scope, name] = plugin.split('/')
  const detail = await call(() =>
    api.GET('/v1/marketplace/plugins/{scope}/{name}', { params: { path: { scope, name } } }),
  ).catch(() => undefined)
  const version = detail?.versions.find((v) => (versionId ? v.id === versionId : v.version === detail.version))
  return version?.manifest as Manifest | undefined
}

export async function loadPluginScreens(canListInstallations: boolean): Promise<PluginScreens[]> {
  const found: PluginScreens[] = []
  if (canListInstallations) {
    const page = await call(() => api.GET('/v1/installations', { params: { query: { limit: 100 } } }))
    for (const inst of page.items) {
      if (inst.status !== 'active') continue
      const m = await manifestOf(inst.plugin, inst.versionId)
      const s = m && screensOf(inst.plugin, inst.mount, m)
      if (s) found.push(s)
    }
    return found
  }
  const listing = await call(() => api.GET('/v1/marketplace/plugins', { params: { query: { limit: 100 } } }))
  for (const p of listing.items) {
    const m = await manifestOf(p.name)
    const s = m && screensOf(p.name, p.name.split('/')[1] ?? p.name, m)
    if (s) found.push(s)
  }
  return found
}

/** `GET /orders/:number` with the item → the URL under the plugin's mount. */
export function routeUrl(mount: string, route: string, item?: Record<string, unknown>, key = 'id') {
  const [method, path] = route.split(' ', 2) as [string, string]
  const filled = path.replace(/:(\w+)/g, () => encodeURIComponent(String(item?.[key] ?? '')))
  return { method, url: `/v1/x/${mount}${filled}` }
}

/** Whether an action applies to the item (`when`: field → value or list of values). */
export function applies(when: Record<string, unknown> | undefined, item: Record<string, unknown>): boolean {
  return Object.entries(when ?? {}).every(([k, v]) => (Array.isArray(v) ? v.includes(item[k]) : item[k] === v))
}
