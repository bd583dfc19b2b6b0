// `trellis`: the kernel's commands (start, migrate, admin, audit, keys), with every kernel it
// starts assembled here — the marketplace, the first-party plugins and the demo.
import { runCli } from '@trellis/core'
import { platformExtensions } from './index.js'

await runCli(process.argv, { extensions: () => platformExtensions() })
