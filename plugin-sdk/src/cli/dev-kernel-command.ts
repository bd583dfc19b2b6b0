// `trellis-plugin dev-kernel status|stop`: the warm kernel that `test` and `dev` share between runs.
import type { Command } from 'commander'
import { listWarmKernels, stopWarmKernels, warmStateDir } from '../dev-warm.js'
import type { Cli } from './context.js'
import { jsonOption } from './options.js'

export function registerDevKernel(program: Command, cli: Cli): void {
  const cmd = program
    .command('dev-kernel')
    .description(
      'the warm kernel `test` and `dev` keep running between runs (it stops by itself after 30 idle minutes)',
    )
  cmd
    .command('status')
    .description('the running warm kernels: process, address, since when')
    .addOption(jsonOption())
    .action(async (opts: { json?: boolean }) => {
      cli.json = Boolean(opts.json)
      const kernels = (await listWarmKernels()).map(({ pid, url, startedAt }) => ({ pid, url, startedAt }))
      cli.print(
        kernels.length
          ? kernels.map((k) => `pid ${k.pid}  ${k.url}  since ${k.startedAt}`).join('\n')
          : `no warm dev kernel runs (state in ${warmStateDir()})`,
        { kernels },
      )
    })
  cmd
    .command('stop')
    .description('stop the warm kernels (the next `test` or `dev` starts a new one)')
    .addOption(jsonOption())
    .action(async (opts: { json?: boolean }) => {
      cli.json = Boolean(opts.json)
      const stopped = await stopWarmKernels()
      cli.print(stopped.length ? `stopped ${stopped.map((p) => `pid ${p}`).join(', ')}` : 'no warm dev kernel ran', {
        stopped,
      })
    })
}
