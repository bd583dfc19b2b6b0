// The loader's hooks (register.mjs): they run on Node's module-hooks thread.
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { transform, version } from 'esbuild'

// ES-module TypeScript only (what this checkout has): a `.cts` file would need CommonJS.
const TS = /\.m?ts$/
const options = /** @type {const} */ ({
  loader: 'ts',
  format: 'esm',
  target: `node${process.versions.node}`,
  sourcemap: 'inline',
})
// Transpiled files are kept between processes (a test run starts hundreds), keyed by the
// file's path and text, esbuild's version and the options.
const cacheDir = join(tmpdir(), `trellis-ts-${process.getuid?.() ?? 'user'}`)
mkdirSync(cacheDir, { recursive: true })
const salt = `${version}\n${JSON.stringify(options)}\n`

/** @type {import('node:module').ResolveHook} */
export async function resolve(specifier, context, nextResolve) {
  const parent = context.parentURL
  if (
    parent?.startsWith('file:') &&
    TS.test(parent) &&
    specifier.endsWith('.js') &&
    (specifier.startsWith('./') || specifier.startsWith('../'))
  ) {
    const ts = new URL(`${specifier.slice(0, -3)}.ts`, parent)
    if (existsSync(ts)) return { url: ts.href, format: 'module', shortCircuit: true }
  }
  return nextResolve(specifier, context)
}

/** @type {import('node:module').LoadHook} */
export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !TS.test(url)) return nextLoad(url, context)
  const file = fileURLToPath(url)
  const text = readFileSync(file, 'utf8')
  const cached = join(
    cacheDir,
    `${createHash('sha256').update(salt).update(file).update('\n').update(text).digest('hex')}.js`,
  )
  let source
  try {
    source = readFileSync(cached, 'utf8')
  } catch {
    source = (await transform(text, { ...options, sourcefile: file })).code
    // Written aside and renamed, so a process reading it at the same moment sees all or nothing.
    const aside = `${cached}.${process.pid}.${Math.random().toString(36).slice(2)}`
    writeFileSync(aside, source)
    renameSync(aside, cached)
  }
  return { format: 'module', source, shortCircuit: true }
}
