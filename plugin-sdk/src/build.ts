/**
 * `trellis-plugin build`: bundles a plugin with esbuild into the sandbox's bundle contract —
 * one CommonJS-shaped script (`dist/plugin.js`) and its source map. Node-only.
 */
import { createHash } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import { runInNewContext } from 'node:vm'
import { build, type Plugin as EsbuildPlugin } from 'esbuild'
import type { BundleEntries } from './protocol.js'
import { SDK } from './sdk-errors.js'

/** Directory of this SDK package (what `@trellis/plugin-sdk` resolves to inside bundles). */
export const SDK_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..')

/** Options of {@link buildPlugin}. */
export interface BuildOptions {
  /** Plugin project directory (holds trellis.plugin.json). */
  dir: string
  /** Entry module relative to `dir`; default `src/index.ts`. */
  entry?: string
  /** Write `dist/plugin.js` and `dist/plugin.js.map`; default true. */
  write?: boolean
  /** Minify; default false (readable bundles review better). */
  minify?: boolean
}

/** What a build produced. */
export interface BuildResult {
  /** Bundle source. */
  code: string
  /** Source map JSON text. */
  sourceMap: string
  /** Hex sha256 of `code` (what the sandbox checks). */
  sha256: string
  /** Entries the bundle declares, read by evaluating it in a bare VM context. */
  entries: BundleEntries
  /** Where the files are (or would be) written. */
  bundlePath: string
  /** Source map path. */
  sourceMapPath: string
  /** esbuild warnings, as text. */
  warnings: string[]
}

// `@trellis/plugin-sdk` inside a bundle is the isolate-safe entry of the SDK that builds it.
const sdkResolver: EsbuildPlugin = {
  name: 'trellis-plugin-sdk',
  setup(b) {
    b.onResolve({ filter: /^@trellis\/plugin-sdk(\/.*)?$/ }, (args) => {
      if (args.path === '@trellis/plugin-sdk') return { path: join(SDK_DIR, 'src', 'plugin.ts') }
      if (args.path === '@trellis/plugin-sdk/runtime') return { path: join(SDK_DIR, 'src', 'runtime.ts') }
      if (args.path === '@trellis/plugin-sdk/csv') return { path: join(SDK_DIR, 'src', 'csv.ts') }
      return {
        errors: [{ text: `${args.path} is not available inside a plugin bundle; import from "@trellis/plugin-sdk"` }],
      }
    })
    // The SDK's CSV parser inside an isolate: csv-parse's build that brings its own Buffer.
    b.onResolve({ filter: /^csv-parse\/sync$/ }, () => ({
      path: createRequire(join(SDK_DIR, 'package.json')).resolve('csv-parse/browser/esm/sync'),
    }))
  },
}

/** Builds the plugin in `dir`. Throws SDK_ERR_BUILD_FAILED with esbuild's messages. */
export async function buildPlugin(options: BuildOptions): Promise<BuildResult> {
  const dir = resolve(options.dir)
  const entry = options.entry ?? 'src/index.ts'
  const entryPath = resolve(dir, entry)
  const outDir = join(dir, 'dist')
  const bundlePath = join(outDir, 'plugin.js')
  const sourceMapPath = `${bundlePath}.map`
  const specifier = `./${relative(dir, entryPath).split(sep).join('/')}`
  // biome-ignore lint/suspicious/noImplicitAnyLet: esbuild's result type depends on the options passed below
  let result
  try {
    result = await build({
      stdin: {
        contents: [
          `import * as pluginModule from ${JSON.stringify(specifier)}`,
          `import { bundleFromModule } from '@trellis/plugin-sdk/runtime'`,
          `const bundle = bundleFromModule(pluginModule)`,
          `export const entries = bundle.entries`,
          `export const invoke = bundle.invoke`,
        ].join('\n'),
        resolveDir: dir,
        sourcefile: 'trellis-bundle-entry.js',
        loader: 'js',
      },
      bundle: true,
      format: 'cjs',
      platform: 'neutral',
      target: 'es2022',
      mainFields: ['module', 'main'],
      conditions: ['trellis-plugin'],
      sourcemap: 'external',
      sourcesContent: true,
      minify: options.minify ?? false,
      outfile: bundlePath,
      write: false,
      logLevel: 'silent',
      absWorkingDir: dir,
      plugins: [sdkResolver],
    })
  } catch (err) {
    const errors = (
      err as { errors?: Array<{ text: string; location?: { file: string; line: number; column: number } | null }> }
    ).errors
    const reason = errors?.length
      ? errors
          .map((e) => (e.location ? `${e.location.file}:${e.location.line}:${e.location.column}: ${e.text}` : e.text))
          .join('\n')
      : (err as Error).message
    throw SDK.BUILD_FAILED({ reason })
  }
  const js = result.outputFiles.find((f) => f.path.endsWith('.js'))!
  const mapFile = result.outputFiles.find((f) => f.path.endsWith('.map'))!
  const code = js.text
  const sourceMap = rewriteSources(mapFile.text, dir, outDir)
  const entries = readEntries(code)
  if (options.write ?? true) {
    await mkdir(outDir, { recursive: true })
    await writeFile(bundlePath, code)
    await writeFile(sourceMapPath, sourceMap)
  }
  return {
    code,
    sourceMap,
    sha256: createHash('sha256').update(code).digest('hex'),
    entries,
    bundlePath,
    sourceMapPath,
    warnings: result.warnings.map((w) => w.text),
  }
}

// Sources outside the project (the SDK itself, when it is not installed in the project) would
// otherwise carry the builder's own directory layout into published source maps.
function rewriteSources(mapText: string, dir: string, outDir: string): string {
  const map = JSON.parse(mapText) as { sources: string[] }
  map.sources = map.sources.map((s) => {
    const abs = resolve(outDir, s)
    if (!isAbsolute(s) && !relative(dir, abs).startsWith('..')) return s
    const inSdk = relative(SDK_DIR, abs)
    if (!inSdk.startsWith('..') && !isAbsolute(inSdk))
      return `../node_modules/@trellis/plugin-sdk/${inSdk.split(sep).join('/')}`
    return s
  })
  return JSON.stringify(map)
}

/**
 * Evaluates a bundle the way the sandbox does (`module`, `exports`, no Node globals) and
 * returns its declared entries. Developer-side check only: node:vm is not a sandbox.
 */
export function readEntries(code: string): BundleEntries {
  let exp: { entries?: BundleEntries; invoke?: unknown }
  try {
    const factory = runInNewContext(
      `(function (module, exports) {\n${code}\n})`,
      {},
      { timeout: 2000, filename: 'dist/plugin.js' },
    ) as (m: unknown, e: unknown) => void
    const mod = { exports: {} as Record<string, unknown> }
    factory(mod, mod.exports)
    exp = mod.exports as typeof exp
  } catch (err) {
    const code = (err as { code?: string }).code
    throw SDK.BUILD_FAILED({ reason: `the bundle does not load: ${code ? `${code}: ` : ''}${(err as Error).message}` })
  }
  if (typeof exp.invoke !== 'function' || typeof exp.entries !== 'object' || exp.entries === null)
    throw SDK.BUILD_FAILED({ reason: 'the bundle does not export { entries, invoke }' })
  return JSON.parse(JSON.stringify(exp.entries)) as BundleEntries
}

/** Reads and parses `trellis.plugin.json` of `dir` (SDK_ERR_MANIFEST_NOT_FOUND / _INVALID when unreadable). */
export async function readManifestFile(dir: string): Promise<{ path: string; raw: string; json: unknown }> {
  const path = join(resolve(dir), 'trellis.plugin.json')
  let raw: string
  try {
    raw = await readFile(path, 'utf8')
  } catch {
    throw SDK.MANIFEST_NOT_FOUND({ path })
  }
  try {
    return { path, raw, json: JSON.parse(raw) }
  } catch (err) {
    throw SDK.MANIFEST_INVALID({ issues: [{ pointer: '', message: `is not JSON: ${(err as Error).message}` }] })
  }
}
