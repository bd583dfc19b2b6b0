// Entry of the `trellis-plugin` launcher (bin/trellis-plugin.js runs this file under tsx).
import { runCli } from './main.js'

process.exitCode = await runCli(process.argv.slice(2))
