// `trellis-plugin keys generate`: the Ed25519 pair packages are signed with.
import { resolve } from 'node:path'
import type { Command } from 'commander'
import { defaultKeysDir, generateSigningKeys } from '../pack.js'
import type { Cli } from './context.js'
import { jsonOption } from './options.js'

export function registerKeys(program: Command, cli: Cli): void {
  const keys = program.command('keys').description('signing keys')
  keys
    .command('generate')
    .description('generate an Ed25519 signing key pair (private key mode 0600)')
    .option('--keys-dir <dir>', 'where to write the keys (default: $TRELLIS_KEYS_DIR or ~/.trellis/keys)')
    .option('--force', 'replace an existing key')
    .addOption(jsonOption())
    .action(async (opts: { keysDir?: string; force?: boolean; json?: boolean }) => {
      cli.json = Boolean(opts.json)
      const dir = opts.keysDir ? resolve(cli.io.cwd, opts.keysDir) : defaultKeysDir()
      const k = await generateSigningKeys(dir, { force: opts.force })
      cli.print(
        `private key ${k.privateKeyPath} (mode 0600, keep it secret)\npublic key  ${k.publicKeyPath} (register it with the marketplace)\nfingerprint ${k.fingerprint}`,
        { ...k },
      )
    })
}
