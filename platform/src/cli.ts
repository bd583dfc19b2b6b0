// `trellis`: the kernel's commands (start, migrate, admin, audit, keys), with every kernel it
// starts assembled here — the marketplace, the first-party plugins and the demo. Only the CLI's
// own entry loads at first: `--help` and `--version` answer without loading the kernel, and the
// assembly loads when a command starts one.
import { runCli } from '@trellis/core/cli'

const code = await runCli(process.argv, {
  extensions: async () => (await import('./index.js')).platformExtensions(),
})
// `start` resolves once the kernel listens and keeps running; every other command is done.
if (code) process.exit(code)
