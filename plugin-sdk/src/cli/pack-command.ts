// `trellis-plugin pack`: build, validate, and write the signed package.
import { join, relative, resolve } from 'node:path'
import type { Command } from 'commander'
import { defaultKeysDir, loadSigningKey, packPlugin, type PackResult } from '../pack.js'
import { SDK } from '../sdk-errors.js'
import { checkPlugin } from './check.js'
import type { Cli } from './context.js'
import { dirOption, jsonOption } from './options.js'

/** Checks the plugin in `dir` and packs it signed with the key at `key` (default: the keys dir); fails when it is invalid. */
export async function packChecked(
  cli: Cli,
  dir: string,
  opts: { key?: string; out?: string },
): Promise<PackResult & { warnings: Awaited<ReturnType<typeof checkPlugin>>['warnings'] }> {
  const privateKey = await loadSigningKey(
    opts.key ? resolve(cli.io.cwd, opts.key) : join(defaultKeysDir(), 'signing-key.pem'),
  )
  const r = await checkPlugin(dir, true)
  if (r.errors.length || !r.build || !r.manifest) {
    if (!cli.json) cli.io.stderr(`${cli.issuesText([...r.errors, ...r.warnings])}\n`)
    return cli.fail(SDK.VALIDATION_FAILED({ errors: r.errors.length }), { errors: r.errors, warnings: r.warnings })
  }
  const p = await packPlugin({
    name: r.manifest.name,
    version: r.manifest.version,
    manifest: r.file.raw,
    bundle: r.build.code,
    sourceMap: r.build.sourceMap,
    outDir: opts.out ? resolve(cli.io.cwd, opts.out) : dir,
    privateKey,
  })
  return { ...p, warnings: r.warnings }
}

export function registerPack(program: Command, cli: Cli): void {
  program
    .command('pack')
    .description('build, validate, and write a signed <name>-<version>.tgz with its .sig')
    .addOption(dirOption())
    .option('--key <file>', 'Ed25519 private key (default: <keys dir>/signing-key.pem)')
    .option('-o, --out <dir>', 'where to write the tarball (default: the plugin directory)')
    .addOption(jsonOption())
    .action(async (opts: { dir?: string; key?: string; out?: string; json?: boolean }) => {
      cli.json = Boolean(opts.json)
      const p = await packChecked(cli, cli.dirOf(opts), opts)
      if (!cli.json && p.warnings.length) cli.io.stderr(`${cli.issuesText(p.warnings)}\n`)
      cli.print(
        `packed ${relative(cli.io.cwd, p.tarballPath)} (${p.bytes} bytes, sha256 ${p.sha256})\nsigned ${relative(cli.io.cwd, p.signaturePath)} with ${p.fingerprint}`,
        { ...p },
      )
    })
}
