// `trellis-plugin`: create, build, validate, test, dev, keys generate, pack, publish. Exit codes:
// 0 ok, 1 error (and failed tests), 2 usage, 3 validation failed (or publish refused by the
// marketplace's checks), 4 auth (signing key, or publish answered 401/403), 5 network (publish).
import { readFileSync } from 'node:fs'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { createInterface } from 'node:readline/promises'
import { basename, dirname, join, relative, resolve } from 'node:path'
import { Command, CommanderError, Option } from 'commander'
import { buildPlugin, readManifestFile } from '../build.js'
import { TrellisError } from '../errors.js'
import { lintPlugin, validateManifest, type ManifestIssue } from '../manifest.js'
import { defaultKeysDir, generateSigningKeys, loadSigningKey, packPlugin } from '../pack.js'
import { SDK } from '../sdk-errors.js'
import { templateFiles } from './template.js'
import { runPluginTests } from '../run-tests.js'
import { runDev } from '../dev-server.js'
import { publishPackage, readPackageManifest } from '../publish.js'

/** The version of this package, as `trellis-plugin --version` prints it. */
export const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version

/** Exit codes of `trellis-plugin`. */
export const EXIT = Object.freeze({ OK: 0, ERROR: 1, USAGE: 2, VALIDATION: 3, AUTH: 4, NETWORK: 5 })

const NAME = /^@[a-z0-9][a-z0-9-]*\/[a-z0-9][a-z0-9-]*$/
const BARE_NAME = /^[a-z0-9][a-z0-9-]*$/
/** The scope a bare name gets; change it to your publisher scope before publishing. */
export const DEFAULT_SCOPE = '@local'

interface Io {
  stdout: (s: string) => void
  stderr: (s: string) => void
  stdinIsTTY: boolean
  cwd: string
  /** Asks one question (default: readline on stdin/stderr); used only when stdin is a TTY. */
  prompt?: (question: string) => Promise<string>
  /** Stops long-running commands (`dev`); default: SIGINT/SIGTERM. */
  signal?: AbortSignal
  /** Called when `dev` is serving (tests use it). */
  onDevReady?: (info: { url: string; basePath: string; token: string }) => void
}

class Exit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`)
  }
}

function exitCodeOf(err: TrellisError): number {
  if (SDK.USAGE.is(err)) return EXIT.USAGE
  if (SDK.MANIFEST_INVALID.is(err) || SDK.VALIDATION_FAILED.is(err)) return EXIT.VALIDATION
  if (SDK.KEY_NOT_FOUND.is(err) || SDK.KEY_INVALID.is(err)) return EXIT.AUTH
  return EXIT.ERROR
}

/** Runs the CLI with `argv` (without node and script); resolves to the exit code. */
export async function runCli(argv: string[], io: Partial<Io> = {}): Promise<number> {
  const out: Io = {
    stdout: io.stdout ?? ((s) => void process.stdout.write(s)),
    stderr: io.stderr ?? ((s) => void process.stderr.write(s)),
    stdinIsTTY: io.stdinIsTTY ?? Boolean(process.stdin.isTTY),
    cwd: io.cwd ?? process.cwd(),
    prompt: io.prompt,
    signal: io.signal,
    onDevReady: io.onDevReady,
  }
  let json = false
  const print = (human: string, data: Record<string, unknown>) =>
    json ? out.stdout(`${JSON.stringify({ ok: true, ...data })}\n`) : out.stdout(`${human}\n`)
  const fail = (err: TrellisError, extra: Record<string, unknown> = {}): never => {
    if (json)
      out.stdout(
        `${JSON.stringify({
          ok: false,
          error: { code: err.code, message: err.message, details: err.details ?? null },
          ...extra,
        })}\n`,
      )
    else out.stderr(`error ${err.code}: ${err.message}\n`)
    throw new Exit(exitCodeOf(err))
  }
  const dirOf = (opts: { dir?: string }) => resolve(out.cwd, opts.dir ?? '.')
  const issuesText = (issues: ManifestIssue[]) =>
    issues
      .map((i) => `  ${i.severity === 'error' ? 'error' : 'warn '} ${i.pointer || '/'}  ${i.message}  [${i.rule}]`)
      .join('\n')

  // Manifest schema, then a build (entries and sizes), then the lint: what the marketplace runs.
  async function check(dir: string, write: boolean) {
    const file = await readManifestFile(dir)
    const v = validateManifest(file.json)
    if (!v.ok) return { file, errors: v.errors, warnings: v.warnings, build: undefined }
    const build = await buildPlugin({ dir, write })
    const lint = lintPlugin({
      manifest: v.manifest,
      entries: build.entries,
      sizes: { bundleBytes: Buffer.byteLength(build.code), sourceMapBytes: Buffer.byteLength(build.sourceMap) },
    })
    return { file, manifest: v.manifest, errors: lint.errors, warnings: [...v.warnings, ...lint.warnings], build }
  }

  const program = new Command('trellis-plugin')
    .description('Build, validate, sign and pack Trellis plugins.')
    .version(VERSION, '-V, --version', 'print the version')
    .exitOverride()
    .configureOutput({ writeOut: out.stdout, writeErr: out.stderr })
    .showSuggestionAfterError()
  const jsonOption = () => new Option('--json', 'machine-readable output on stdout')
  const dirOption = () => new Option('-d, --dir <dir>', 'plugin directory (default: current directory)')

  program
    .command('create')
    .description('scaffold a plugin: one collection, one route, one event handler and a test')
    .argument('[name]', `package name, @scope/name (a bare name gets the scope ${DEFAULT_SCOPE})`)
    .option('--description <text>', 'one-line description')
    .option('-o, --out <dir>', 'directory to create (default: ./<name without scope>)')
    .option('-y, --yes', 'accept defaults, never prompt')
    .addOption(jsonOption())
    .action(
      async (
        nameArg: string | undefined,
        opts: { description?: string; out?: string; yes?: boolean; json?: boolean },
      ) => {
        json = Boolean(opts.json)
        const interactive = out.stdinIsTTY && !opts.yes && !json
        const rl =
          interactive && !out.prompt ? createInterface({ input: process.stdin, output: process.stderr }) : undefined
        const ask = interactive ? (out.prompt ?? ((q: string) => rl!.question(q))) : undefined
        try {
          let name = nameArg
          for (let tries = 0; !name && ask && tries < 3; tries++)
            name = (await ask('Plugin name (@scope/name): ')).trim()
          if (!name) fail(SDK.USAGE({ reason: 'create needs a name (@scope/name) when it cannot prompt' }))
          if (BARE_NAME.test(name!)) name = `${DEFAULT_SCOPE}/${name}`
          if (!NAME.test(name!))
            fail(SDK.USAGE({ reason: `"${name}" is not @scope/name (lower-case letters, digits and -)` }))
          const short = name!.split('/')[1]!
          let description = opts.description
          if (description === undefined && ask)
            description = (await ask('Description (A Trellis plugin): ')).trim() || undefined
          description ??= 'A Trellis plugin'
          let target = opts.out
          if (target === undefined && ask) target = (await ask(`Directory (./${short}): `)).trim() || undefined
          const dir = resolve(out.cwd, target ?? short)
          if ((await readdir(dir).catch(() => [])).length > 0) fail(SDK.TARGET_EXISTS({ path: dir }))
          const files = templateFiles({ name: name!, description })
          for (const [rel, text] of Object.entries(files)) {
            await mkdir(dirname(join(dir, rel)), { recursive: true })
            await writeFile(join(dir, rel), text)
          }
          print(
            `created ${name} in ${relative(out.cwd, dir) || '.'}\n  next: cd ${relative(out.cwd, dir) || '.'} && npm install && npm test && npx trellis-plugin validate`,
            { name, dir, files: Object.keys(files) },
          )
        } finally {
          rl?.close()
        }
      },
    )

  program
    .command('build')
    .description('bundle the plugin into dist/plugin.js and dist/plugin.js.map')
    .addOption(dirOption())
    .option('--entry <file>', 'entry module', 'src/index.ts')
    .addOption(jsonOption())
    .action(async (opts: { dir?: string; entry: string; json?: boolean }) => {
      json = Boolean(opts.json)
      const dir = dirOf(opts)
      const b = await buildPlugin({ dir, entry: opts.entry })
      const bytes = Buffer.byteLength(b.code)
      const list = Object.entries(b.entries)
        .map(([k, v]) => `  ${k}: ${(v as string[]).join(', ')}`)
        .join('\n')
      print(`built ${relative(out.cwd, b.bundlePath)} (${bytes} bytes, sha256 ${b.sha256})\n${list}`, {
        bundle: b.bundlePath,
        sourceMap: b.sourceMapPath,
        bytes,
        sha256: b.sha256,
        entries: b.entries,
        warnings: b.warnings,
      })
    })

  program
    .command('validate')
    .description('manifest schema, capability lint and size limits (what the marketplace checks)')
    .addOption(dirOption())
    .addOption(jsonOption())
    .action(async (opts: { dir?: string; json?: boolean }) => {
      json = Boolean(opts.json)
      const r = await check(dirOf(opts), false)
      if (json)
        out.stdout(
          `${JSON.stringify({
            ok: r.errors.length === 0,
            errors: r.errors,
            warnings: r.warnings,
            entries: r.build?.entries ?? null,
          })}\n`,
        )
      else {
        if (r.errors.length || r.warnings.length) out.stderr(`${issuesText([...r.errors, ...r.warnings])}\n`)
        out.stdout(
          r.errors.length
            ? `${r.file.path}: ${r.errors.length} error(s), ${r.warnings.length} warning(s)\n`
            : `${r.file.path}: valid${r.warnings.length ? ` with ${r.warnings.length} warning(s)` : ''}\n`,
        )
      }
      if (r.errors.length) throw new Exit(EXIT.VALIDATION)
    })

  program
    .command('test')
    .description("run the plugin's tests (test/**/*.test.ts) against the real kernel and sandbox")
    .addOption(dirOption())
    .argument('[files...]', 'test files (default: every test/**/*.test.ts)')
    .action(async (files: string[], opts: { dir?: string }) => {
      const r = await runPluginTests(dirOf(opts), { files, stdout: out.stdout, stderr: out.stderr })
      if (r.files.length === 0) out.stderr('no test files under test/\n')
      if (r.code !== 0) throw new Exit(EXIT.ERROR)
    })

  program
    .command('dev')
    .description('serve the plugin from a local kernel (embedded database, real sandbox); rebuild and reload on change')
    .addOption(dirOption())
    .option('-p, --port <port>', 'port to listen on', '4000')
    .option('--settings <json>', 'installation settings as JSON')
    .option('--egress-allow <hosts>', 'comma-separated private hosts ctx.http.fetch may reach (e.g. 127.0.0.1)')
    .action(async (opts: { dir?: string; port: string; settings?: string; egressAllow?: string }) => {
      const port = Number(opts.port)
      if (!Number.isInteger(port) || port < 0 || port > 65535)
        fail(SDK.USAGE({ reason: `--port must be 0 to 65535, not "${opts.port}"` }))
      let settings: Record<string, never> | undefined
      if (opts.settings !== undefined) {
        try {
          settings = JSON.parse(opts.settings)
        } catch {
          fail(SDK.USAGE({ reason: '--settings must be a JSON object' }))
        }
      }
      const dir = dirOf(opts)
      const check0 = await check(dir, false)
      if (check0.errors.length) {
        out.stderr(`${issuesText([...check0.errors, ...check0.warnings])}\n`)
        fail(SDK.VALIDATION_FAILED({ errors: check0.errors.length }))
      }
      const ac = new AbortController()
      const stop = () => ac.abort()
      if (!out.signal) {
        process.once('SIGINT', stop)
        process.once('SIGTERM', stop)
      }
      out.signal?.addEventListener('abort', stop, { once: true })
      try {
        await runDev({
          dir,
          port,
          ...(settings ? { settings } : {}),
          ...(opts.egressAllow
            ? {
                egressAllow: opts.egressAllow
                  .split(',')
                  .map((h) => h.trim())
                  .filter(Boolean),
              }
            : {}),
          log: (line) => out.stdout(`${line}\n`),
          signal: ac.signal,
          onReady: (info) => out.onDevReady?.({ url: info.url, basePath: info.basePath, token: info.token }),
        })
      } finally {
        process.off('SIGINT', stop)
        process.off('SIGTERM', stop)
      }
    })

  const keys = program.command('keys').description('signing keys')
  keys
    .command('generate')
    .description('generate an Ed25519 signing key pair (private key mode 0600)')
    .option('--keys-dir <dir>', 'where to write the keys (default: $TRELLIS_KEYS_DIR or ~/.trellis/keys)')
    .option('--force', 'replace an existing key')
    .addOption(jsonOption())
    .action(async (opts: { keysDir?: string; force?: boolean; json?: boolean }) => {
      json = Boolean(opts.json)
      const dir = opts.keysDir ? resolve(out.cwd, opts.keysDir) : defaultKeysDir()
      const k = await generateSigningKeys(dir, { force: opts.force })
      print(
        `private key ${k.privateKeyPath} (mode 0600, keep it secret)\npublic key  ${k.publicKeyPath} (register it with the marketplace)\nfingerprint ${k.fingerprint}`,
        { ...k },
      )
    })

  program
    .command('pack')
    .description('build, validate, and write a signed <name>-<version>.tgz with its .sig')
    .addOption(dirOption())
    .option('--key <file>', 'Ed25519 private key (default: <keys dir>/signing-key.pem)')
    .option('-o, --out <dir>', 'where to write the tarball (default: the plugin directory)')
    .addOption(jsonOption())
    .action(async (opts: { dir?: string; key?: string; out?: string; json?: boolean }) => {
      json = Boolean(opts.json)
      const dir = dirOf(opts)
      const keyPath = opts.key ? resolve(out.cwd, opts.key) : join(defaultKeysDir(), 'signing-key.pem')
      const privateKey = await loadSigningKey(keyPath)
      const r = await check(dir, true)
      if (r.errors.length || !r.build || !r.manifest) {
        if (!json) out.stderr(`${issuesText([...r.errors, ...r.warnings])}\n`)
        fail(SDK.VALIDATION_FAILED({ errors: r.errors.length }), { errors: r.errors, warnings: r.warnings })
      }
      const p = await packPlugin({
        name: r.manifest!.name,
        version: r.manifest!.version,
        manifest: r.file.raw,
        bundle: r.build!.code,
        sourceMap: r.build!.sourceMap,
        outDir: opts.out ? resolve(out.cwd, opts.out) : dir,
        privateKey,
      })
      if (!json && r.warnings.length) out.stderr(`${issuesText(r.warnings)}\n`)
      print(
        `packed ${relative(out.cwd, p.tarballPath)} (${p.bytes} bytes, sha256 ${p.sha256})\nsigned ${relative(out.cwd, p.signaturePath)} with ${p.fingerprint}`,
        { ...p, warnings: r.warnings },
      )
    })

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
    .action(
      async (opts: {
        dir?: string
        package?: string
        signature?: string
        key?: string
        out?: string
        url?: string
        apiKey?: string
        changelog?: string
        json?: boolean
      }) => {
        json = Boolean(opts.json)
        const url = opts.url ?? process.env.TRELLIS_URL
        const apiKey = opts.apiKey ?? process.env.TRELLIS_API_KEY
        if (!url)
          fail(
            SDK.USAGE({
              reason: 'publish needs --url or TRELLIS_URL (the Trellis API, e.g. https://trellis.example.com)',
            }),
          )
        if (!apiKey)
          fail(
            SDK.USAGE({
              reason: 'publish needs --api-key or TRELLIS_API_KEY (a partner API key with plugins.publish)',
            }),
          )
        let tarballPath: string
        let signaturePath: string
        if (opts.package) {
          tarballPath = resolve(out.cwd, opts.package)
          signaturePath = opts.signature ? resolve(out.cwd, opts.signature) : `${tarballPath}.sig`
        } else {
          const dir = dirOf(opts)
          const privateKey = await loadSigningKey(
            opts.key ? resolve(out.cwd, opts.key) : join(defaultKeysDir(), 'signing-key.pem'),
          )
          const r = await check(dir, true)
          if (r.errors.length || !r.build || !r.manifest) {
            if (!json) out.stderr(`${issuesText([...r.errors, ...r.warnings])}\n`)
            fail(SDK.VALIDATION_FAILED({ errors: r.errors.length }), { errors: r.errors, warnings: r.warnings })
          }
          const p = await packPlugin({
            name: r.manifest!.name,
            version: r.manifest!.version,
            manifest: r.file.raw,
            bundle: r.build!.code,
            sourceMap: r.build!.sourceMap,
            outDir: opts.out ? resolve(out.cwd, opts.out) : dir,
            privateKey,
          })
          if (!json)
            out.stderr(`packed ${relative(out.cwd, p.tarballPath)} (${p.bytes} bytes), signed with ${p.fingerprint}\n`)
          tarballPath = p.tarballPath
          signaturePath = p.signaturePath
        }
        const tarball = await readFile(tarballPath).catch(() =>
          fail(SDK.USAGE({ reason: `cannot read the package ${tarballPath}` })),
        )
        const signature = await readFile(signaturePath, 'utf8').catch(() =>
          fail(
            SDK.USAGE({ reason: `cannot read the signature ${signaturePath} (pack writes it next to the package)` }),
          ),
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
          const code = { auth: EXIT.AUTH, refused: EXIT.VALIDATION, network: EXIT.NETWORK, server: EXIT.ERROR }[
            res.kind
          ]
          if (json)
            out.stdout(
              `${JSON.stringify({
                ok: false,
                error: { code: res.code, message: res.message, details: { status: res.status, kind: res.kind } },
              })}\n`,
            )
          else out.stderr(`error ${res.code}: ${res.message}${res.status ? ` (HTTP ${res.status})` : ''}\n`)
          throw new Exit(code)
        }
        const v = res.version
        print(
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
      },
    )

  try {
    await program.parseAsync(argv, { from: 'user' })
    return EXIT.OK
  } catch (err) {
    if (err instanceof Exit) return err.code
    if (err instanceof CommanderError) {
      // --help exits 0; help shown because a command is missing, and every parse error, is usage.
      return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE
    }
    if (err instanceof TrellisError) {
      try {
        fail(err)
      } catch (e) {
        if (e instanceof Exit) return e.code
      }
    }
    out.stderr(`error: ${(err as Error)?.stack ?? String(err)}\n`)
    return EXIT.ERROR
  }
}
