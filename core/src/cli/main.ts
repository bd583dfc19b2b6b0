// `trellis` with the kernel alone (no marketplace, no first-party plugins): the full product's
// entry is the composition root's (@trellis/platform, platform/src/cli.ts).
import { runCli } from './program.js'

const code = await runCli(process.argv, { extensions: () => [] })
if (code) process.exit(code)
