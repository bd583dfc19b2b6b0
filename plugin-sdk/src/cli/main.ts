// `trellis-plugin`: create, build, validate, test, dev, dev-kernel, logs, keys generate, pack, publish — one file
// per command (*-command.ts). Exit codes: 0 ok, 1 error (and failed tests), 2 usage,
// 3 validation failed (or publish refused by the marketplace's checks), 4 auth (signing key, or
// publish answered 401/403), 5 network (publish).
import { readFileSync } from 'node:fs'
import { Command, CommanderError } from 'commander'
import { createCli, EXIT, exitCodeOfError, type Io } from './context.js'
import { registerBuild } from './build-command.js'
import { registerCreate } from './create-command.js'
import { registerDev } from './dev-command.js'
import { registerDevKernel } from './dev-kernel-command.js'
import { registerKeys } from './keys-command.js'
import { registerLogs } from './logs-command.js'
import { registerPack } from './pack-command.js'
import { registerPublish } from './publish-command.js'
import { registerTest } from './test-command.js'
import { registerValidate } from './validate-command.js'

export { EXIT } from './context.js'
export type { Io } from './context.js'
export { RESERVED_SCOPES } from './create-command.js'

/** The version of this package, as `trellis-plugin --version` prints it. */
export const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version

/** The commands, in the order `--help` lists them. */
const COMMANDS = [
  registerCreate,
  registerBuild,
  registerValidate,
  registerTest,
  registerDev,
  registerDevKernel,
  registerLogs,
  registerKeys,
  registerPack,
  registerPublish,
]

/** Runs the CLI with `argv` (without node and script); resolves to the exit code. */
export async function runCli(argv: string[], io: Partial<Io> = {}): Promise<number> {
  const cli = createCli(io)
  const program = new Command('trellis-plugin')
    .description('Build, validate, sign and pack Trellis plugins.')
    .version(VERSION, '-V, --version', 'print the version')
    .exitOverride()
    .configureOutput({ writeOut: cli.io.stdout, writeErr: cli.io.stderr })
    .showSuggestionAfterError()
  for (const register of COMMANDS) register(program, cli)
  try {
    await program.parseAsync(argv, { from: 'user' })
    return EXIT.OK
  } catch (err) {
    // --help exits 0; help shown because a command is missing, and every parse error, is usage.
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE
    return exitCodeOfError(cli, err)
  }
}
