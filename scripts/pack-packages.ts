/**
 * `npm run pack -- <destination>`: every workspace package as an installable tarball, built to
 * JavaScript with type declarations — what a partner installs without this checkout or tsx.
 * The checkout itself stays source-first (exports point at `src/*.ts`, tests and `npm start`
 * run without a build step); this stages a copy of each package, and only the copy is built:
 * each `.ts` file gets its `.js` (esbuild) and `.d.ts` (tsc) beside it, so every path a module
 * reads relative to itself (package.json, the manifest schema, the sandbox's worker files, a
 * plugin's sources that the SDK bundles) stays where it was; `exports` and `bin` are rewritten
 * to the JavaScript, and `npm pack` packs the copy. See docs/adr/0039-sdk-tarballs.md.
 */
import { spawn, spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

interface PackageJson {
  name: string
  version: string
  exports?: Record<string, string | Record<string, string>>
  bin?: Record<string, string>
  devDependencies?: Record<string, string>
  scripts?: Record<string, string>
  [k: string]: unknown
}

/** The workspace folders, as the root package.json lists them. */
export function workspaceDirs(): string[] {
  const root = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { workspaces: string[] }
  return root.workspaces
}

/** Does the package run from TypeScript (its exports or bin point at `.ts` files, or its bin launches them)? */
function runsFromTypeScript(pkg: PackageJson): boolean {
  return JSON.stringify(pkg.exports ?? {}).includes('.ts"') || pkg.bin !== undefined
}

/** `.ts` files of a package that ship (not tests, not declarations). */
function typeScriptFiles(dir: string): string[] {
  const out: string[] = []
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue
    const file = join(e.parentPath, e.name)
    const rel = relative(dir, file).split(sep)
    if (rel.includes('node_modules') || rel[0] === 'test' || rel[0] === 'bench') continue
    if (/\.(test|spec)\.ts$|\.d\.ts$/.test(e.name) || !e.name.endsWith('.ts')) continue
    out.push(file)
  }
  return out
}

const jsOf = (p: string) => p.replace(/\.ts$/, '.js')
const dtsOf = (p: string) => p.replace(/\.ts$/, '.d.ts')

/** `exports` with every `.ts` target turned into `{ types, default }` of its build. */
function builtExports(exports: PackageJson['exports']): PackageJson['exports'] {
  if (!exports) return exports
  const out: NonNullable<PackageJson['exports']> = {}
  for (const [k, v] of Object.entries(exports))
    out[k] = typeof v === 'string' && v.endsWith('.ts') ? { types: dtsOf(v), default: jsOf(v) } : v
  return out
}

/** A launcher that runs the built CLI with the flags the kernel needs, passing signals and exit code through. */
function launcher(entry: string): string {
  return `#!/usr/bin/env node
// Runs the built CLI (no TypeScript loader) with the flags the sandbox needs on every Node line.
import { spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const child = spawn(process.execPath, ['--no-node-snapshot', join(here, ${JSON.stringify(relative('bin', entry))}), ...process.argv.slice(2)], {
  stdio: 'inherit',
})
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal))
child.on('exit', (code, signal) => (signal ? process.kill(process.pid, signal) : process.exit(code ?? 1)))
`
}

/** The `.ts` file a source launcher in `bin/` runs (it names it as `join(here, '..', 'src', …)`). */
function launchedEntry(pkgDir: string, binFile: string): string {
  const text = readFileSync(join(pkgDir, binFile), 'utf8')
  const m = /join\(here, ((?:'[^']+',?\s*)+)\)/.exec(text)
  if (!m) throw new Error(`${binFile}: cannot tell which TypeScript file it launches`)
  const parts = [...m[1]!.matchAll(/'([^']+)'/g)].map((p) => p[1]!)
  return relative(pkgDir, resolve(pkgDir, 'bin', ...parts))
}

/** `npm pack --json` of the staged package `at` into `destination`; resolves to its stdout. */
function npmPack(at: string, destination: string): Promise<string> {
  return new Promise((done, fail) => {
    const child = spawn('npm', ['pack', '--json', '--pack-destination', destination], { cwd: at })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', fail)
    child.on('close', (code) => (code === 0 ? done(stdout) : fail(new Error(`npm pack ${at}: ${stderr}`))))
  })
}

export interface PackResult {
  name: string
  tarball: string
}

/**
 * Stages, builds and packs the packages in `dirs` (workspace folders) into `destination`.
 * `typesOf` names the folders whose declarations are written (default: every built package;
 * `[]` for none — faster, for a run that only installs and executes).
 */
export async function packPackages(
  destination: string,
  options: { dirs?: string[]; typesOf?: string[]; log?: (line: string) => void } = {},
): Promise<PackResult[]> {
  const log = options.log ?? (() => {})
  const dirs = options.dirs ?? workspaceDirs()
  const stage = mkdtempSync(join(tmpdir(), 'trellis-pack-'))
  mkdirSync(destination, { recursive: true })
  try {
    const built: string[] = []
    for (const dir of dirs) {
      const from = join(ROOT, dir)
      cpSync(from, join(stage, dir), {
        recursive: true,
        filter: (src) => {
          const rel = relative(from, src).split(sep)
          return !rel.includes('node_modules') && rel[0] !== 'test' && !/\.test\.ts$/.test(src)
        },
      })
      const pkg = JSON.parse(readFileSync(join(from, 'package.json'), 'utf8')) as PackageJson
      if (runsFromTypeScript(pkg)) built.push(dir)
    }
    const sources = built.flatMap((dir) => typeScriptFiles(join(ROOT, dir)))
    log(`building ${sources.length} modules of ${built.length} packages`)
    await build({
      entryPoints: sources,
      outdir: stage,
      outbase: ROOT,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      supported: { 'import-attributes': true },
      bundle: false,
      sourcemap: 'linked',
      logLevel: 'error',
    })
    const typed = options.typesOf ? built.filter((d) => options.typesOf!.includes(d)) : built
    if (typed.length > 0) {
      log(`writing type declarations of ${typed.join(', ')}`)
      const tsconfig = join(stage, 'tsconfig.types.json')
      writeFileSync(
        tsconfig,
        JSON.stringify({
          extends: join(ROOT, 'tsconfig.json'),
          compilerOptions: {
            noEmit: false,
            declaration: true,
            emitDeclarationOnly: true,
            noEmitOnError: false,
            checkJs: false,
            rootDir: ROOT,
            outDir: stage,
          },
          include: typed.map((dir) => join(ROOT, dir, '**', '*.ts')),
          exclude: ['**/node_modules/**', '**/*.test.ts', ...typed.map((dir) => join(ROOT, dir, 'test'))],
        }),
      )
      // Type errors of work in progress elsewhere do not stop the declarations being written.
      spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', tsconfig], {
        stdio: 'ignore',
      })
    }
    const results: PackResult[] = []
    for (const dir of dirs) {
      const at = join(stage, dir)
      const pkg = JSON.parse(readFileSync(join(at, 'package.json'), 'utf8')) as PackageJson
      if (built.includes(dir)) {
        pkg.exports = builtExports(pkg.exports)
        for (const binFile of Object.values(pkg.bin ?? {}))
          writeFileSync(join(at, binFile), launcher(jsOf(launchedEntry(join(ROOT, dir), binFile))))
      }
      // A package nothing imports or runs (no `exports`, `main` or `bin`: the console, a built
      // folder of static files) ships what it built; its dependencies built it, and a partner's
      // install would fetch them (vite, React, the form library: ~70 packages) for nothing.
      if (!pkg.exports && !pkg.main && !pkg.bin) delete pkg.dependencies
      delete pkg.devDependencies
      delete pkg.scripts
      writeFileSync(join(at, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`)
    }
    // `npm pack` is mostly npm's own start: four at a time, each result kept in the order of `dirs`.
    let next = 0
    const packOne = async (): Promise<void> => {
      for (let i = next++; i < dirs.length; i = next++) {
        const at = join(stage, dirs[i]!)
        const stdout = await npmPack(at, resolve(destination))
        const [{ name, filename }] = JSON.parse(stdout) as Array<{ name: string; filename: string }>
        results[i] = { name, tarball: join(resolve(destination), basename(filename)) }
        log(`${name} → ${basename(filename)}`)
      }
    }
    await Promise.all(Array.from({ length: Math.min(4, dirs.length) }, packOne))
    return results
  } finally {
    rmSync(stage, { recursive: true, force: true })
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const args = process.argv.slice(2)
  const destination = args.find((a) => !a.startsWith('--')) ?? join(ROOT, 'dist', 'packages')
  const results = await packPackages(destination, {
    typesOf: args.includes('--no-types') ? [] : undefined,
    log: (line) => process.stderr.write(`${line}\n`),
  })
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`)
}
