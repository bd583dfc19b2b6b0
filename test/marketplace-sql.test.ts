// The marketplace reaches the kernel through core's extension API only (docs/adr/0017-extension-api.md):
// its SQL names only what the marketplace's own migrations create. Which tables and functions
// are the kernel's is read from the migrations themselves: whatever a migration outside the
// marketplace's (files named `*marketplace*`) creates. Altering a kernel table from a marketplace
// migration (the checks lease on plugin_versions) does not make it the marketplace's.
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const MIGRATIONS = join(ROOT, 'migrations')

/** Names of the tables and functions a set of migration files creates. */
function created(files: string[]): Set<string> {
  const names = new Set<string>()
  for (const f of files) {
    const text = readFileSync(join(MIGRATIONS, f), 'utf8')
    for (const m of text.matchAll(
      /create\s+(?:table|(?:or\s+replace\s+)?function)\s+(?:if\s+not\s+exists\s+)?([a-z_][a-z0-9_]*)/gi,
    ))
      names.add(m[1]!.toLowerCase())
  }
  return names
}

const migrationFiles = readdirSync(MIGRATIONS).filter((f) => /^\d{4}-\d{2}-\d{2}-.*\.ts$/.test(f))
const isMarketplace = (f: string) => f.includes('marketplace')
const marketplaceOwned = created(migrationFiles.filter(isMarketplace))
/** Tables and functions of the kernel: created by a migration that is not the marketplace's. */
export const KERNEL_OWNED = created(migrationFiles.filter((f) => !isMarketplace(f)))

const SQL_START = /^\s*(select|insert|update|delete|with)\b/i

/** The SQL texts of a source file: arguments of `.sql(…)`/`.sqlOnce(…)`, and strings that start like SQL. */
function sqlTexts(file: string, text: string): Array<{ sql: string; line: number }> {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true)
  const out: Array<{ sql: string; line: number }> = []
  const seen = new Set<ts.Node>()
  const line = (n: ts.Node) => sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1
  const textOf = (n: ts.Node): string | undefined => {
    if (ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n)) return n.text
    if (ts.isTemplateExpression(n))
      return [n.head.text, ...n.templateSpans.map((s) => ` \${} ${s.literal.text}`)].join('')
    return undefined
  }
  const visit = (n: ts.Node) => {
    if (
      ts.isCallExpression(n) &&
      ts.isPropertyAccessExpression(n.expression) &&
      ['sql', 'sqlOnce'].includes(n.expression.name.text) &&
      n.arguments[0]
    ) {
      const s = textOf(n.arguments[0])
      seen.add(n.arguments[0])
      if (s !== undefined) out.push({ sql: s, line: line(n) })
    } else if (!seen.has(n)) {
      const s = textOf(n)
      if (s !== undefined && SQL_START.test(s)) out.push({ sql: s, line: line(n) })
    }
    ts.forEachChild(n, visit)
  }
  visit(sf)
  return out
}

/** The kernel tables and functions an SQL text names (as a whole word, not a column like `tenant_id`). */
export function kernelNamesIn(sql: string): string[] {
  const words = new Set((sql.toLowerCase().match(/[a-z_][a-z0-9_]*/g) ?? []) as string[])
  return [...KERNEL_OWNED].filter((name) => words.has(name) && !marketplaceOwned.has(name)).sort()
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? sources(join(dir, e.name))
      : /\.ts$/.test(e.name) && !/\.test\.ts$/.test(e.name)
        ? [join(dir, e.name)]
        : [],
  )
}

/** Every place marketplace/src names a kernel table or function in SQL. */
export function marketplaceKernelSql(): string[] {
  const found: string[] = []
  for (const file of sources(join(ROOT, 'marketplace', 'src')))
    for (const { sql, line } of sqlTexts(file, readFileSync(file, 'utf8')))
      for (const name of kernelNamesIn(sql)) found.push(`${relative(ROOT, file)}:${line}: ${name}`)
  return found
}

t.test('the kernel-owned list comes from the migrations', async (t) => {
  for (const name of ['partners', 'tenants', 'memberships', 'users', 'plugin_versions', 'trellis_auth_memberships'])
    t.ok(KERNEL_OWNED.has(name), `${name} is the kernel's`)
  for (const name of ['marketplace_scopes', 'marketplace_keys', 'marketplace_catalogs', 'trellis_install_counts'])
    t.ok(marketplaceOwned.has(name) && !KERNEL_OWNED.has(name), `${name} is the marketplace's`)
})

t.test("the marketplace's SQL names no kernel table or function", async (t) => {
  t.same(marketplaceKernelSql(), [])
})

t.test('the checker catches what it is for', async (t) => {
  const at = (text: string) => sqlTexts('x.ts', text).flatMap((s) => kernelNamesIn(s.sql))
  t.same(at("await tx.sql('select id from partners where id = ?::uuid', [id])"), ['partners'])
  t.same(at('await tx.sql(`select v.* from plugin_versions v join tenants t on t.id = ?`)'), [
    'plugin_versions',
    'tenants',
  ])
  t.same(at("const q = 'select tenant_id from trellis_auth_memberships(?::uuid)'"), ['trellis_auth_memberships'])
  // biome-ignore lint/suspicious/noTemplateCurlyInString: the source text of a template with a placeholder
  t.same(at('await tx.sql(`update ${table} set x = 1 from users`)'), ['users'])
  t.same(at("await tx.sql('select partner_id, tenant_id from marketplace_catalogs')"), [], 'columns are not tables')
  t.same(at("throw new Error('only partners publish')"), [], 'prose is not SQL')
})
