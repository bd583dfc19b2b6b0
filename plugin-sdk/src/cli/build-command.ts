// `trellis-plugin build`: the bundle and its source map in dist/.
import { relative } from 'node:path'
import type { Command } from 'commander'
import { buildPlugin } from '../build.js'
import type { Cli } from './context.js'
import { dirOption, jsonOption } from './options.js'

export function registerBuild(program: Command, cli: Cli): void {
  program
    .command('build')
    .description('bundle the plugin into dist/plugin.js and dist/plugin.js.map')
    .addOption(dirOption())
    .option('--entry <file>', 'entry module', 'src/index.ts')
    .addOption(jsonOption())
    .action(async (opts: { dir?: string; entry: string; json?: boolean }) => {
      cli.json = Boolean(opts.json)
      const b = await buildPlugin({ dir: cli.dirOf(opts), entry: opts.entry })
      const bytes = Buffer.byteLength(b.code)
      const list = Object.entries(b.entries)
        .map(([k, v]) => `  ${k}: ${(v as string[]).join(', ')}`)
        .join('\n')
      cli.print(`built ${relative(cli.io.cwd, b.bundlePath)} (${bytes} bytes, sha256 ${b.sha256})\n${list}`, {
        bundle: b.bundlePath,
        sourceMap: b.sourceMapPath,
        bytes,
        sha256: b.sha256,
        entries: b.entries,
        warnings: b.warnings,
      })
    })
}
