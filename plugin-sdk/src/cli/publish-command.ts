// `trellis-plugin publish`: upload a signed package to the marketplace (packing it first unless given).
import { readFile } from 'node:fs/promises'
import { basename, relative, resolve } from 'node:path'
import type { Command } from 'commander'
import { publishPackage, readPackageManifest } from '../publish.js'
import { SDK } from '../sdk-errors.js'
import { type Cli, EXIT, Exit } from './context.js'
import { dirOption, jsonOption } from './options.js'
import { packChecked } from './pack-command.js'

interface PublishOptions {
  dir?: string
  package?: string
  signature?: string
  key?: string
  out?: string
  url?: string
  apiKey?: string
  changelog?: string
  json?: boolean
}

/** The package and its signature: the ones given, or a fresh pack of the plugin. */
async function packageToPublish(
  cli: Cli,
  opts: PublishOptions,
): Promise<{ tarballPath: string; signaturePath: string }> {
  if (opts.package) {
    const tarballPath = resolve(cli.io.cwd, opts.package)
    return { tarballPath, signaturePath: opts.signature ? resolve(cli.io.cwd, opts.signature) : `${tarballPath}.sig` }
  }
  const p = await packChecked(cli, cli.dirOf(opts), opts)
  if (!cli.json)
    cli.io.stderr(`packed ${relative(cli.io.cwd, p.tarballPath)} (${p.bytes} bytes), signed with ${p.fingerprint}\n`)
  return p
}

async function publish(cli: Cli, opts: PublishOptions): Promise<void> {
  cli.json = Boolean(opts.json)
  const url = opts.url ?? process.env.TRELLIS_URL
  const apiKey = opts.apiKey ?? process.env.TRELLIS_API_KEY
  if (!url)
    cli.fail(
      SDK.USAGE({ reason: 'publish needs --url or TRELLIS_URL (the Trellis API, e.g. https://trellis.example.com)' }),
    )
  if (!apiKey)
    cli.fail(
      SDK.USAGE({ reason: 'publish needs --api-key or TRELLIS_API_KEY (a partner API key with plugins.publish)' }),
    )
  const { tarballPath, signaturePath } = await packageToPublish(cli, opts)
  const tarball = await readFile(tarballPath).catch(() =>
    cli.fail(SDK.USAGE({ reason: `cannot read the package ${tarballPath}` })),
  )
  const signature = await readFile(signaturePath, 'utf8').catch(() =>
    cli.fail(SDK.USAGE({ reason: `cannot read the signature ${signaturePath} (pack writes it next to the package)` })),
  )
  const { name, version } = await readPackageManifest(tarball)
  const res = await publishPackage(name, {
    url: url!,
    apiKey: apiKey!,
    tarball,
    signature,
    fileName: basename(tarballPath),
    ...(opts.changelog ? { changelog: opts.changelog } : {}),
  })
  if (!res.ok) {
    const code = { auth: EXIT.AUTH, refused: EXIT.VALIDATION, network: EXIT.NETWORK, server: EXIT.ERROR }[res.kind]
    if (cli.json)
      cli.io.stdout(
        `${JSON.stringify({
          ok: false,
          error: { code: res.code, message: res.message, details: { status: res.status, kind: res.kind } },
        })}\n`,
      )
    else cli.io.stderr(`error ${res.code}: ${res.message}${res.status ? ` (HTTP ${res.status})` : ''}\n`)
    throw new Exit(code)
  }
  const v = res.version
  cli.print(
    `published ${v.name}@${v.version} as version ${v.id} (sha256 ${v.artifactSha256})\n  status ${v.status}: the marketplace runs its automated checks, then the version awaits review by a platform admin`,
    {
      id: v.id,
      name: v.name ?? name,
      version: v.version ?? version,
      status: v.status,
      artifactSha256: v.artifactSha256,
      fingerprint: v.fingerprint,
      package: tarballPath,
    },
  )
}

export function registerPublish(program: Command, cli: Cli): void {
  program
    .command('publish')
    .description('upload a signed package to the marketplace: pack (or --package), then checks and review')
    .addOption(dirOption())
    .option('--package <file>', 'a package written by pack (default: pack the plugin now)')
    .option('--signature <file>', 'its detached signature (default: <package>.sig)')
    .option('--key <file>', 'Ed25519 private key when packing (default: <keys dir>/signing-key.pem)')
    .option('-o, --out <dir>', 'where pack writes the tarball (default: the plugin directory)')
    .option('--url <url>', 'the Trellis API (default: $TRELLIS_URL)')
    .option('--api-key <key>', 'a partner API key with plugins.publish (default: $TRELLIS_API_KEY)')
    .option('--changelog <text>', 'what changed, for reviewers')
    .addOption(jsonOption())
    .action((opts: PublishOptions) => publish(cli, opts))
}
