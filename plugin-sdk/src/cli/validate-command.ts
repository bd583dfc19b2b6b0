// `trellis-plugin validate`: what the marketplace checks, without packing.
import type { Command } from 'commander'
import { checkPlugin } from './check.js'
import { type Cli, EXIT, Exit } from './context.js'
import { dirOption, jsonOption } from './options.js'

export function registerValidate(program: Command, cli: Cli): void {
  program
    .command('validate')
    .description('manifest schema, capability lint and size limits (what the marketplace checks)')
    .addOption(dirOption())
    .addOption(jsonOption())
    .action(async (opts: { dir?: string; json?: boolean }) => {
      cli.json = Boolean(opts.json)
      const r = await checkPlugin(cli.dirOf(opts), false)
      if (cli.json)
        cli.io.stdout(
          `${JSON.stringify({
            ok: r.errors.length === 0,
            errors: r.errors,
            warnings: r.warnings,
            entries: r.build?.entries ?? null,
          })}\n`,
        )
      else {
        if (r.errors.length || r.warnings.length) cli.io.stderr(`${cli.issuesText([...r.errors, ...r.warnings])}\n`)
        cli.io.stdout(
          r.errors.length
            ? `${r.file.path}: ${r.errors.length} error(s), ${r.warnings.length} warning(s)\n`
            : `${r.file.path}: valid${r.warnings.length ? ` with ${r.warnings.length} warning(s)` : ''}\n`,
        )
      }
      if (r.errors.length) throw new Exit(EXIT.VALIDATION)
    })
}
