// The package boundaries of docs/adr/0018-composition-root.md, checked on every runtime source
// file of every package (tests and benchmarks are tools, not packages): who may import whom,
// public entries only (a subpath only where the package's `exports` names it), no relative path
// into another package, and no dynamic import — a literal `import('x')` or a computed one — unless
// the allow-list below names it and says why.
import t from 'tap'
import { readdirSync, readFileSync, existsSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import type { Kernel } from '@trellis/core'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

/** Package folder → what of ours it may import (by package name). */
const PACKAGES: Record<string, { name: string; may: string[]; sources: string[] }> = {
  'plugin-sdk': { name: '@trellis/plugin-sdk', may: [], sources: ['src'] },
  sandbox: { name: '@trellis/sandbox', may: ['@trellis/plugin-sdk'], sources: ['src'] },
  migrations: { name: '@trellis/migrations', may: [], sources: ['src'] },
  // The migrations package is the kernel's schema.
  core: {
    name: '@trellis/core',
    may: ['@trellis/sandbox', '@trellis/plugin-sdk', '@trellis/migrations'],
    sources: ['src'],
  },
  marketplace: { name: '@trellis/marketplace', may: ['@trellis/core', '@trellis/plugin-sdk'], sources: ['src'] },
  'plugins/catalog': { name: '@trellis/catalog', may: ['@trellis/plugin-sdk'], sources: ['src'] },
  'plugins/pricing': { name: '@trellis/pricing', may: ['@trellis/plugin-sdk'], sources: ['src'] },
  'plugins/inventory': { name: '@trellis/inventory', may: ['@trellis/plugin-sdk'], sources: ['src'] },
  'plugins/orders': { name: '@trellis/orders', may: ['@trellis/plugin-sdk'], sources: ['src'] },
  'plugins/procurement': { name: '@trellis/procurement', may: ['@trellis/plugin-sdk'], sources: ['src'] },
  'plugins/returns': { name: '@trellis/returns', may: ['@trellis/plugin-sdk'], sources: ['src'] },
  'plugins/copilot': { name: '@trellis/copilot', may: ['@trellis/plugin-sdk'], sources: ['src'] },
  'plugins/partner-onboarding': { name: '@trellis/partner-onboarding', may: ['@trellis/plugin-sdk'], sources: ['src'] },
  // The Northwind loader reads its CSV files with the SDK's parser (the one CSV parser).
  'plugins/northwind': {
    name: '@trellis/northwind',
    may: ['@trellis/plugin-sdk'],
    sources: ['index.ts', 'import.ts', 'cli.ts', 'suppliers.ts'],
  },
  platform: { name: '@trellis/platform', may: ['*'], sources: ['src', 'bin'] },
}

/**
 * Dynamic imports allowed, each with its reason (file relative to the repo → specifiers).
 * Anything else loaded at run time is a dependency the graph above cannot see.
 */
const DYNAMIC_ALLOWED: Record<string, string[]> = {
  // Telemetry must load before pg, http and fastify; `--help` answers without loading the kernel;
  // `start` checks its environment (preflight) before the kernel loads.
  'core/src/cli/program.ts': [
    '../observability/telemetry.js',
    './commands.js',
    './preflight.js',
    '../config.js',
    '../knowledge/evaluate-command.js',
  ],
  // The governance commands (evidence, export) load their work only when one of them runs.
  'core/src/cli/governance-commands.ts': ['../governance/commands.js'],
  // `trellis --help` answers before the composition root (the kernel, the marketplace) loads.
  'platform/src/cli.ts': ['./index.js'],
  // The PDF reader (pdf.js) loads when the first PDF document arrives, not with the kernel.
  'core/src/knowledge/parse.ts': ['unpdf'],
  // OpenTelemetry's SDK loads only when an OTLP endpoint is configured.
  'core/src/observability/telemetry.ts': [
    '@opentelemetry/sdk-node',
    '@opentelemetry/exporter-trace-otlp-http',
    '@opentelemetry/auto-instrumentations-node',
    '@fastify/otel',
  ],
  // A start loads only what it uses (ADR 0114): BullMQ with Redis configured, the migrator when
  // migrations are to run, nodemailer with SMTP, the inference client with a remote model.
  'core/src/kernel.ts': ['./events/bullmq-queue.js'],
  'core/src/db/orm.ts': ['@mikro-orm/migrations'],
  'core/src/mail/mailer.ts': ['nodemailer'],
  'core/src/ai/providers/huggingface.ts': ['@huggingface/inference'],
  // tar loads on use (pack, publish): importing the SDK, which every plugin does, stays cheap.
  'plugin-sdk/src/pack.ts': ['tar'],
  'plugin-sdk/src/publish.ts': ['tar'],
  // The SDK's dev tooling (`trellis-plugin dev/test`) gets a kernel from the composition root, an
  // optional peer: the one place a package reaches past its dependencies (ARCHITECTURE.md).
  'plugin-sdk/src/dev-kernel.ts': ['@trellis/platform'],
}

const OURS = new Map(Object.entries(PACKAGES).map(([dir, p]) => [p.name, dir]))

function files(path: string): string[] {
  if (!existsSync(path)) return []
  if (!readdirSync(dirname(path)).includes(path.split(sep).pop()!)) return []
  try {
    return readdirSync(path, { withFileTypes: true }).flatMap((e) =>
      e.name === 'node_modules' ? [] : e.isDirectory() ? files(join(path, e.name)) : [join(path, e.name)],
    )
  } catch {
    return [path]
  }
}

const isSource = (f: string) => /\.(ts|mts|js|mjs)$/.test(f) && !/\.test\.(ts|js|mjs)$/.test(f) && !f.endsWith('.d.ts')

interface Use {
  specifier: string | undefined
  kind: 'static' | 'dynamic' | 'require'
  line: number
}

/** Every module a file uses: static imports and re-exports, `import()`, `require()` and `require.resolve()`. */
export function usesOf(file: string, text: string): Use[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true)
  const out: Use[] = []
  const line = (n: ts.Node) => sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1
  const literal = (e: ts.Expression | undefined) =>
    e && (ts.isStringLiteral(e) || ts.isNoSubstitutionTemplateLiteral(e)) ? e.text : undefined
  const visit = (n: ts.Node) => {
    if ((ts.isImportDeclaration(n) || ts.isExportDeclaration(n)) && n.moduleSpecifier)
      out.push({ specifier: literal(n.moduleSpecifier as ts.Expression), kind: 'static', line: line(n) })
    else if (ts.isImportTypeNode(n) && ts.isLiteralTypeNode(n.argument))
      out.push({ specifier: literal(n.argument.literal as ts.Expression), kind: 'static', line: line(n) })
    else if (ts.isCallExpression(n)) {
      if (n.expression.kind === ts.SyntaxKind.ImportKeyword)
        out.push({ specifier: literal(n.arguments[0]), kind: 'dynamic', line: line(n) })
      else {
        const callee = n.expression.getText(sf)
        if (
          callee === 'require' ||
          callee === 'require.resolve' ||
          (callee.endsWith('.resolve') && callee.includes('require'))
        )
          out.push({ specifier: literal(n.arguments[0]), kind: 'require', line: line(n) })
      }
    }
    ts.forEachChild(n, visit)
  }
  visit(sf)
  return out
}

function exportsOf(dir: string): string[] | 'none' {
  const pkg = JSON.parse(readFileSync(join(ROOT, dir, 'package.json'), 'utf8')) as { exports?: Record<string, string> }
  return pkg.exports ? Object.keys(pkg.exports) : 'none'
}

/** What is wrong with one use in `file` of package `dir` (undefined: nothing). */
export function problemOf(dir: string, file: string, use: Use): string | undefined {
  const rel = relative(ROOT, file)
  const spec = use.specifier
  if (use.kind === 'dynamic') {
    if (spec === undefined) return 'a computed dynamic import (the dependency cannot be seen)'
    if (!(DYNAMIC_ALLOWED[rel] ?? []).includes(spec)) return `a dynamic import of ${spec} not on the allow-list`
  }
  if (spec === undefined) return use.kind === 'require' ? 'a computed require' : 'a computed import'
  if (spec.startsWith('.')) {
    const target = resolve(dirname(file), spec)
    if (!target.startsWith(join(ROOT, dir) + sep)) return `${spec} reaches outside the package by a relative path`
    return undefined
  }
  const m = /^(@trellis\/[^/]+)(\/.*)?$/.exec(spec)
  if (!m) return undefined
  const [, name, sub] = m
  const own = PACKAGES[dir]!
  if (name === own.name) return `${spec}: a package does not import itself by name`
  const allowedHere = own.may.includes('*') || own.may.includes(name!) || (DYNAMIC_ALLOWED[rel] ?? []).includes(spec)
  if (!allowedHere) return `${own.name} may not depend on ${name}`
  if (sub) {
    const targetDir = OURS.get(name!)
    const declared = targetDir ? exportsOf(targetDir) : 'none'
    const ok = declared === 'none' ? sub === '/package.json' : declared.includes(`.${sub}`)
    if (!ok) return `${spec}: not a public entry of ${name}`
  }
  return undefined
}

t.test('every package keeps to its boundaries', async (t) => {
  for (const [dir, pkg] of Object.entries(PACKAGES)) {
    const found: string[] = []
    for (const src of pkg.sources)
      for (const file of files(join(ROOT, dir, src)).filter(isSource))
        for (const use of usesOf(file, readFileSync(file, 'utf8'))) {
          const problem = problemOf(dir, file, use)
          if (problem) found.push(`${relative(ROOT, file)}:${use.line}: ${problem}`)
        }
    t.same(found, [], `${pkg.name} (${dir})`)
  }
})

t.test('core exports its public entry, and the CLI entry that loads nothing of the kernel', async (t) => {
  t.same(exportsOf('core'), ['.', './cli'])
})

t.test("core's public Kernel leaves out its internal context", async (t) => {
  const kernel = { app: {} } as unknown as Kernel
  // @ts-expect-error `ctx` (the services' record, with writers such as PluginVersions.setStatus) is core's own
  t.equal(kernel.ctx, undefined, 'the type checker refuses kernel.ctx; the registry is the only writer outside core')
})

t.test('the checker catches what it is for', async (t) => {
  const at = (dir: string, path: string, text: string) => {
    const file = join(ROOT, dir, path)
    return usesOf(file, text)
      .map((u) => problemOf(dir, file, u))
      .filter(Boolean)
  }
  t.match(at('marketplace', 'src/x.ts', "const m = await import(['@trellis', 'core'].join('/'))"), [/computed dynamic/])
  t.match(at('marketplace', 'src/x.ts', 'const m = await import(specifier)'), [/computed dynamic/])
  t.match(at('marketplace', 'src/x.ts', "const m = await import('@trellis/core')"), [/allow-list/])
  t.match(at('marketplace', 'src/x.ts', "import { orgTx } from '@trellis/core/kernel-context.js'"), [
    /not a public entry/,
  ])
  t.match(at('marketplace', 'src/x.ts', "import { x } from '../../core/src/kernel.js'"), [/outside the package/])
  t.match(at('core', 'src/x.ts', "import { x } from '@trellis/marketplace'"), [/may not depend/])
  t.match(at('plugins/orders', 'src/x.ts', "import { x } from '@trellis/pricing'"), [/may not depend/])
  t.match(at('plugin-sdk', 'src/x.ts', "import type { K } from '@trellis/core'"), [/may not depend/])
  // biome-ignore lint/suspicious/noTemplateCurlyInString: source text of a computed require the check must catch
  t.match(at('platform', 'src/x.ts', 'const p = require.resolve(`${name}/package.json`)'), [/computed require/])
  t.same(at('platform', 'src/x.ts', "import { createKernel } from '@trellis/core'"), [])
  t.same(at('marketplace', 'src/x.ts', "import type { X } from './y.js'"), [])
})
