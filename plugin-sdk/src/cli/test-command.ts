// `trellis-plugin test`: the plugin's own tests, against the real kernel and sandbox.
import type { Command } from 'commander'
import { runPluginTests } from '../run-tests.js'
import { type Cli, EXIT, Exit } from './context.js'
import { dirOption } from './options.js'

export function registerTest(program: Command, cli: Cli): void {
  program
    .command('test')
    .description("run the plugin's tests (test/**/*.test.ts) against the real kernel and sandbox")
    .addOption(dirOption())
    .option('--no-warm', 'start a kernel for each test file instead of using the warm one kept between runs')
    .argument('[files...]', 'test files (default: every test/**/*.test.ts)')
    .action(async (files: string[], opts: { dir?: string; warm: boolean }) => {
      const r = await runPluginTests(cli.dirOf(opts), {
        files,
        warm: opts.warm,
        stdout: cli.io.stdout,
        stderr: cli.io.stderr,
      })
      if (r.files.length === 0) cli.io.stderr('no test files under test/\n')
      if (r.code !== 0) throw new Exit(EXIT.ERROR)
    })
}
