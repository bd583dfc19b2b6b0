// Manifest schema, then a build (entries and sizes), then the lint: what the marketplace runs.
import { buildPlugin, readManifestFile } from '../build.js'
import { lintPlugin, validateManifest } from '../manifest.js'

/** Checks the plugin in `dir` as the marketplace will; `write` keeps the bundle in dist/. */
export async function checkPlugin(dir: string, write: boolean) {
  const file = await readManifestFile(dir)
  const v = validateManifest(file.json)
  if (!v.ok) return { file, errors: v.errors, warnings: v.warnings, build: undefined }
  const build = await buildPlugin({ dir, write })
  const lint = lintPlugin({
    manifest: v.manifest,
    entries: build.entries,
    sizes: { bundleBytes: Buffer.byteLength(build.code), sourceMapBytes: Buffer.byteLength(build.sourceMap) },
  })
  return { file, manifest: v.manifest, errors: lint.errors, warnings: [...v.warnings, ...lint.warnings], build }
}
