// `trellis-plugin dev`: the plugin served by a local kernel, rebuilt and reloaded on change.
import type { Command } from 'commander'
import { runDev } from '../dev-server.js'
import { SDK } from '../sdk-errors.js'
import { checkPlugin } from './check.js'
import type { Cli } from './context.js'
import { dirOption } from './options.js'

export function registerDev(program: Command, cli: Cli): void {
  program
    .command('dev')
    .description('serve the plugin from a local kernel (embedded database, real sandbox); rebuild and reload on change')
    .addOption(dirOption())
    .option('-p, --port <port>', 'port to listen on', '4000')
    .option('--settings <json>', 'installation settings as JSON')
    .option('--egress-allow <hosts>', 'comma-separated private hosts ctx.http.fetch may reach (e.g. 127.0.0.1)')
    .option('--no-warm', 'start a kernel in this process instead of using the warm one kept between runs')
    .action(async (opts: { dir?: string; port: string; settings?: string; egressAllow?: string; warm: boolean }) => {
      const port = Number(opts.port)
      if (!Number.isInteger(port) || port < 0 || port > 65535)
        cli.fail(SDK.USAGE({ reason: `--port must be 0 to 65535, not "${opts.port}"` }))
      let settings: Record<string, never> | undefined
      if (opts.settings !== undefined) {
        try {
          settings = JSON.parse(opts.settings)
        } catch {
          cli.fail(SDK.USAGE({ reason: '--settings must be a JSON object' }))
        }
      }
      const dir = cli.dirOf(opts)
      // The checked build is written to dist/ and installed first: one build before "ready", not two.
      const first = await checkPlugin(dir, true)
      if (first.errors.length) {
        cli.io.stderr(`${cli.issuesText([...first.errors, ...first.warnings])}\n`)
        cli.fail(SDK.VALIDATION_FAILED({ errors: first.errors.length }))
      }
      const ac = new AbortController()
      const stop = () => ac.abort()
      if (!cli.io.signal) {
        process.once('SIGINT', stop)
        process.once('SIGTERM', stop)
      }
      cli.io.signal?.addEventListener('abort', stop, { once: true })
      const egressAllow = opts.egressAllow
        ?.split(',')
        .map((h) => h.trim())
        .filter(Boolean)
      try {
        await runDev({
          dir,
          port,
          warm: opts.warm && process.env.TRELLIS_DEV_KERNEL !== 'process',
          ...(first.build ? { built: first.build } : {}),
          ...(settings ? { settings } : {}),
          ...(egressAllow ? { egressAllow } : {}),
          log: (line) => cli.io.stdout(`${line}\n`),
          signal: ac.signal,
          onReady: (info) => cli.io.onDevReady?.({ url: info.url, basePath: info.basePath, token: info.token }),
        })
      } finally {
        process.off('SIGINT', stop)
        process.off('SIGTERM', stop)
      }
    })
}
