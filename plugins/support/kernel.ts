// Test support shared by the ERP plugins' tests and the Northwind importer's test: builds the
// plugins from their folders (exactly what `trellis-plugin build` produces) and installs them in
// dependency order.
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  buildPlugin,
  lintPlugin,
  loadDevKernel,
  validateManifest,
  type BundleEntries,
  type DevBundle,
  type DevKernel,
} from '@trellis/plugin-sdk'
import { createTestDatabase, type DbKind } from '../../core/test/helpers/test-kernel.js'

export const PLUGINS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..')

/** Dependencies before dependents. */
export const ERP_PLUGINS = ['catalog', 'pricing', 'inventory', 'orders'] as const
/** The ERP plugins with the supply side: procurement and returns. */
export const SUPPLY_PLUGINS = [...ERP_PLUGINS, 'procurement', 'returns'] as const
/** `insights` declares metrics over the ERP plugins (no code of its own). */
export type ErpPlugin = (typeof SUPPLY_PLUGINS)[number] | 'insights'

const built = new Map<string, Promise<DevBundle & { entries: BundleEntries }>>()

/** The plugin's bundle, built in memory once per process. */
export function bundleOf(id: ErpPlugin): Promise<DevBundle & { entries: BundleEntries }> {
  let b = built.get(id)
  if (!b) {
    b = (async () => {
      const dir = join(PLUGINS_DIR, id)
      const res = await buildPlugin({ dir, write: false })
      const { default: manifest } = await import(join(dir, 'trellis.plugin.json'), { with: { type: 'json' } })
      return { manifest, code: res.code, sourceMap: res.sourceMap, entries: res.entries }
    })()
    built.set(id, b)
  }
  return b
}

/**
 * A dev kernel (one tenant) with the given ERP plugins installed, on the embedded database or
 * on a fresh PostgreSQL database of its own (dropped when the kernel closes).
 */
export async function startErpKernel(
  ids: readonly ErpPlugin[] = ERP_PLUGINS,
  settings: Partial<Record<ErpPlugin, Record<string, any>>> = {},
  db: DbKind = 'pglite',
): Promise<DevKernel> {
  const start = await loadDevKernel()
  const pg = db === 'postgres' ? await createTestDatabase() : undefined
  let dev: DevKernel
  try {
    dev = await start(pg ? { databaseUrl: pg.url } : {})
  } catch (err) {
    await pg?.drop()
    throw err
  }
  const close = async () => {
    await dev.close()
    await pg?.drop()
  }
  try {
    for (const id of ids) await dev.install(await bundleOf(id), settings[id] ? { settings: settings[id] } : {})
  } catch (err) {
    await close()
    throw err
  }
  return { ...dev, close }
}

/** What `trellis-plugin validate` reports: the manifest checks, then the capability lint on the built entries. */
export async function lintErp(id: ErpPlugin): Promise<{ errors: string[]; warnings: string[] }> {
  const b = await bundleOf(id)
  const v = validateManifest(b.manifest)
  if (!v.ok) return { errors: v.errors.map((i) => `${i.pointer} ${i.message}`), warnings: [] }
  const lint = lintPlugin({
    manifest: v.manifest,
    entries: b.entries,
    sizes: { bundleBytes: Buffer.byteLength(b.code), sourceMapBytes: Buffer.byteLength(b.sourceMap ?? '') },
  })
  return {
    errors: lint.errors.map((i) => `${i.rule} ${i.pointer} ${i.message}`),
    warnings: lint.warnings.map((i) => `${i.rule} ${i.pointer} ${i.message}`),
  }
}
