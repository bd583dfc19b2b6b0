// `trellis-plugin create`: scaffold a plugin under its publisher scope.
import { mkdir, readdir, writeFile } from 'node:fs/promises'
import { createInterface } from 'node:readline/promises'
import { dirname, join, relative, resolve } from 'node:path'
import type { Command } from 'commander'
import { SDK } from '../sdk-errors.js'
import type { Cli } from './context.js'
import { templateFiles } from './template.js'
import { jsonOption } from './options.js'

const NAME = /^@[a-z0-9][a-z0-9-]*\/[a-z0-9][a-z0-9-]*$/
const BARE_NAME = /^[a-z0-9][a-z0-9-]*$/
const SCOPE = /^@[a-z0-9][a-z0-9-]*$/

/**
 * Scopes no publisher may use: the marketplace refuses to publish under them
 * (`MKT_ERR_SCOPE_RESERVED`), so a plugin scaffolded under one could never be published.
 */
export const RESERVED_SCOPES: readonly string[] = Object.freeze(['@trellis', '@local', '@platform', '@marketplace'])

interface CreateOptions {
  scope?: string
  description?: string
  out?: string
  yes?: boolean
  json?: boolean
}

/** `@acme`, `acme` → `@acme`; refuses what is no scope, and the reserved scopes. */
function scopeOf(cli: Cli, raw: string): string {
  const scope = raw.startsWith('@') ? raw : `@${raw}`
  if (!SCOPE.test(scope))
    cli.fail(SDK.USAGE({ reason: `"${raw}" is not a scope (@ then lower-case letters, digits and -)` }))
  if (RESERVED_SCOPES.includes(scope)) cli.fail(SDK.SCOPE_RESERVED({ scope }))
  return scope
}

/** The full `@scope/name` from the argument, `--scope` and, on a terminal, the answers to `ask`. */
async function nameOf(
  cli: Cli,
  nameArg: string | undefined,
  opts: CreateOptions,
  ask: ((q: string) => Promise<string>) | undefined,
): Promise<string> {
  let name = nameArg
  for (let tries = 0; !name && ask && tries < 3; tries++) name = (await ask('Plugin name (@scope/name): ')).trim()
  if (!name) return cli.fail(SDK.USAGE({ reason: 'create needs a name (@scope/name) when it cannot prompt' }))
  if (BARE_NAME.test(name)) {
    let scope = opts.scope
    for (let tries = 0; !scope && ask && tries < 3; tries++) scope = (await ask('Publisher scope (@your-org): ')).trim()
    if (!scope)
      cli.fail(
        SDK.USAGE({
          reason: `create needs your publisher scope: create @your-org/${name}, or create ${name} --scope @your-org`,
        }),
      )
    name = `${scopeOf(cli, scope!)}/${name}`
  }
  if (!NAME.test(name))
    cli.fail(SDK.USAGE({ reason: `"${name}" is not @scope/name (lower-case letters, digits and -)` }))
  const scope = scopeOf(cli, name.split('/')[0]!)
  if (opts.scope && scopeOf(cli, opts.scope) !== scope)
    cli.fail(SDK.USAGE({ reason: `--scope ${opts.scope} disagrees with the scope of ${name}` }))
  return name
}

async function create(cli: Cli, nameArg: string | undefined, opts: CreateOptions): Promise<void> {
  cli.json = Boolean(opts.json)
  const interactive = cli.io.stdinIsTTY && !opts.yes && !cli.json
  const rl =
    interactive && !cli.io.prompt ? createInterface({ input: process.stdin, output: process.stderr }) : undefined
  const ask = interactive ? (cli.io.prompt ?? ((q: string) => rl!.question(q))) : undefined
  try {
    const name = await nameOf(cli, nameArg, opts, ask)
    const short = name.split('/')[1]!
    let description = opts.description
    if (description === undefined && ask)
      description = (await ask('Description (A Trellis plugin): ')).trim() || undefined
    description ??= 'A Trellis plugin'
    let target = opts.out
    if (target === undefined && ask) target = (await ask(`Directory (./${short}): `)).trim() || undefined
    const dir = resolve(cli.io.cwd, target ?? short)
    if ((await readdir(dir).catch(() => [])).length > 0) cli.fail(SDK.TARGET_EXISTS({ path: dir }))
    const files = templateFiles({ name, description })
    for (const [rel, text] of Object.entries(files)) {
      await mkdir(dirname(join(dir, rel)), { recursive: true })
      await writeFile(join(dir, rel), text)
    }
    const where = relative(cli.io.cwd, dir) || '.'
    cli.print(
      `created ${name} in ${where}\n  next: cd ${where} && npm install && npm test && npx trellis-plugin validate`,
      {
        name,
        dir,
        files: Object.keys(files),
      },
    )
  } finally {
    rl?.close()
  }
}

export function registerCreate(program: Command, cli: Cli): void {
  program
    .command('create')
    .description('scaffold a plugin: one collection, one route, one event handler and a test')
    .argument('[name]', 'package name: @scope/name, or a bare name with --scope')
    .option('--scope <scope>', 'your publisher scope, e.g. @acme (asked on a terminal when the name has none)')
    .option('--description <text>', 'one-line description')
    .option('-o, --out <dir>', 'directory to create (default: ./<name without scope>)')
    .option('-y, --yes', 'accept defaults, never prompt')
    .addOption(jsonOption())
    .action((nameArg: string | undefined, opts: CreateOptions) => create(cli, nameArg, opts))
}
