// `trellis-plugin logs`: the plugin's recent invocations in a running kernel — by default the one
// `trellis-plugin dev` serves from this directory (it leaves its address and token in
// dist/dev-server.json) — each with its outcome, timings, log lines, its input and the host calls it
// made (op, arguments, result or error, duration), as the kernel keeps them: bounded and masked.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Command } from 'commander'
import type { DevInvocation } from '../dev-kernel.js'
import { DEV_SERVER_FILE, formatInvocation } from '../dev-server.js'
import { PUBLISH } from '../publish.js'
import { SDK } from '../sdk-errors.js'
import type { Cli } from './context.js'
import { dirOption, jsonOption } from './options.js'
import { formatTranscript, type TranscriptView } from './transcript-format.js'

type LoggedInvocation = DevInvocation & { input?: unknown; transcript?: TranscriptView | null }

interface LogsOptions {
  dir?: string
  url?: string
  token?: string
  limit: string
  json?: boolean
  transcript: boolean
}

async function get<T>(cli: Cli, url: string, token: string): Promise<T> {
  let res: Response
  try {
    res = await fetch(url, { headers: { authorization: `Bearer ${token}` } })
  } catch (err) {
    cli.fail(PUBLISH.PUBLISH_UNREACHABLE({ url, reason: (err as Error).message }))
  }
  const body = (await res.json().catch(() => null)) as { code?: string; detail?: string } | null
  if (!res.ok)
    cli.fail(SDK.USAGE({ reason: `${url} answered ${res.status} ${body?.code ?? ''} ${body?.detail ?? ''}`.trim() }))
  return body as T
}

export function registerLogs(program: Command, cli: Cli): void {
  program
    .command('logs')
    .description(
      "the plugin's recent invocations in a running kernel (default: this directory's `dev`), with their logs, input and host calls",
    )
    .addOption(dirOption())
    .option('--url <url>', 'the kernel (default: the running `trellis-plugin dev` of this directory, or TRELLIS_URL)')
    .option('--token <token>', "a tenant admin's token or API key (default: the dev server's, or TRELLIS_TOKEN)")
    .option('-n, --limit <n>', 'how many invocations, newest last', '20')
    .option('--no-transcript', "leave out each invocation's input and host calls")
    .addOption(jsonOption())
    .action(async (opts: LogsOptions) => {
      cli.json = Boolean(opts.json)
      const dir = cli.dirOf(opts)
      const limit = Number(opts.limit)
      if (!Number.isInteger(limit) || limit < 1 || limit > 200)
        cli.fail(SDK.USAGE({ reason: `--limit must be 1 to 200, not "${opts.limit}"` }))
      const dev = JSON.parse(await readFile(join(dir, DEV_SERVER_FILE), 'utf8').catch(() => '{}')) as {
        url?: string
        token?: string
      }
      const url = opts.url ?? process.env.TRELLIS_URL ?? dev.url
      const token = opts.token ?? process.env.TRELLIS_TOKEN ?? dev.token
      if (!url || !token)
        cli.fail(
          SDK.USAGE({
            reason:
              'no running `trellis-plugin dev` here: start it, or give --url and --token (TRELLIS_URL, TRELLIS_TOKEN)',
          }),
        )
      const manifest = JSON.parse(
        await readFile(join(dir, 'trellis.plugin.json'), 'utf8').catch(() =>
          cli.fail(SDK.MANIFEST_NOT_FOUND({ path: join(dir, 'trellis.plugin.json') })),
        ),
      ) as { name: string }
      const base = url!.replace(/\/+$/, '')
      const installations = await get<{ items: Array<{ id: string; plugin: string }> }>(
        cli,
        `${base}/v1/installations?limit=200`,
        token!,
      )
      const inst = installations.items.find((i) => i.plugin === manifest.name)
      if (!inst) cli.fail(SDK.USAGE({ reason: `${manifest.name} is not installed in that tenant` }))
      const page = await get<{ items: LoggedInvocation[] }>(
        cli,
        `${base}/v1/installations/${inst!.id}/invocations?limit=${limit}`,
        token!,
      )
      const invocations = [...page.items].reverse()
      if (cli.json) cli.io.stdout(`${JSON.stringify({ ok: true, plugin: manifest.name, invocations })}\n`)
      else if (invocations.length === 0) cli.io.stdout(`${manifest.name}: no invocations yet\n`)
      else
        for (const inv of invocations)
          cli.io.stdout(`${[formatInvocation(inv), ...(opts.transcript ? formatTranscript(inv) : [])].join('\n')}\n`)
    })
}
