// The CLI round trip in a temp dir, through the real `trellis-plugin` launcher:
// create → build → validate → keys generate → pack, then the package is checked the way the
// marketplace will check it (exact files, SHA256SUMS, Ed25519 signature).
import t from 'tap'
import { execFile } from 'node:child_process'
import { createHash, createPublicKey, verify } from 'node:crypto'
import { mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { extract } from 'tar'
import { runCli } from '../src/cli/main.js'
import { verifyPackageSignature } from '../src/pack.js'
import { listWarmKernels, stopWarmKernels } from '../src/dev-warm.js'

const bin = fileURLToPath(new URL('../bin/trellis-plugin.js', import.meta.url))
const repoModules = fileURLToPath(new URL('../../node_modules', import.meta.url))
const root = await mkdtemp(join(tmpdir(), 'trellis-cli-'))
t.teardown(() => rm(root, { recursive: true, force: true }))
const keysDir = join(root, 'keys')
const dir = join(root, 'widgets')

function cli(
  args: string[],
  cwd = root,
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { cwd, env: { ...process.env, TRELLIS_KEYS_DIR: keysDir, ...env } },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
      },
    )
  })
}

// Error paths run the same CLI in-process (a launcher start costs a second of tsx start-up).
async function cliIn(args: string[], cwd = root): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = ''
  let stderr = ''
  process.env.TRELLIS_KEYS_DIR = keysDir
  const code = await runCli(args, {
    cwd,
    stdinIsTTY: false,
    stdout: (s) => void (stdout += s),
    stderr: (s) => void (stderr += s),
  })
  return { code, stdout, stderr }
}

t.test('create scaffolds a template without prompting when stdin is not a TTY', async (t) => {
  const noName = await cliIn(['create'])
  t.equal(noName.code, 2, 'no name and no TTY is a usage error')
  t.match(noName.stderr, /SDK_ERR_USAGE/)
  t.equal((await cliIn(['create', 'Bad_Name'])).code, 2, 'a name that is no package name is a usage error')
  const unscoped = await cliIn(['create', 'widgets', '--out', 'bare'])
  t.equal(unscoped.code, 2, 'a bare name without --scope and no TTY is a usage error')
  t.match(unscoped.stderr, /SDK_ERR_USAGE.*--scope @your-org/)
  const bare = await cliIn(['create', 'widgets', '--scope', '@acme', '--out', 'bare', '--json'])
  t.equal(bare.code, 0, bare.stderr)
  t.equal(JSON.parse(bare.stdout).name, '@acme/widgets', 'a bare name gets the --scope')
  t.equal(JSON.parse(await readFile(join(root, 'bare', 'trellis.plugin.json'), 'utf8')).name, '@acme/widgets')
  t.equal(JSON.parse(await readFile(join(root, 'bare', 'package.json'), 'utf8')).name, '@acme/widgets')
  for (const args of [
    ['create', '@local/widgets'],
    ['create', '@trellis/widgets'],
    ['create', 'widgets', '--scope', 'local'],
    ['create', 'widgets', '--scope', '@trellis'],
  ]) {
    const reserved = await cliIn([...args, '--out', 'reserved', '--json'])
    t.equal(reserved.code, 2, `${args.join(' ')}: a reserved scope is refused`)
    t.equal(JSON.parse(reserved.stdout).error.code, 'SDK_ERR_SCOPE_RESERVED')
  }
  await t.rejects(readdir(join(root, 'reserved')), 'nothing is written for a reserved scope')
  const disagree = await cliIn(['create', '@acme/widgets', '--scope', '@other', '--out', 'disagree'])
  t.equal(disagree.code, 2)
  t.match(disagree.stderr, /disagrees/)
  t.equal((await cliIn(['create', '--nope'])).code, 2, 'an unknown option is a usage error')
  t.equal((await cliIn([])).code, 2, 'no command is a usage error')
  t.equal((await cliIn(['bild'])).code, 2, 'an unknown command is a usage error')
  const pkgVersion = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')).version
  for (const flag of ['--version', '-V']) {
    const v = await cliIn([flag])
    t.equal(v.code, 0, flag)
    t.equal(v.stdout.trim(), pkgVersion, `${flag} prints the package version`)
  }
  const launched = await cli(['--version'])
  t.equal(launched.code, 0)
  t.equal(launched.stdout.trim(), pkgVersion, 'the launcher prints the version too')
  const help = await cliIn(['--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /-V, --version/)
  t.match(help.stdout, /create .*\n.*build .*\n.*validate .*\n.*test .*\n.*dev .*\n.*keys .*\n.*pack /s)
  const res = await cli(['create', '@acme/widgets', '--json', '--description', 'Widgets for wholesalers'])
  t.equal(res.code, 0, res.stderr)
  const out = JSON.parse(res.stdout)
  t.same(out.ok, true)
  t.same(out.files.sort(), [
    '.gitignore',
    'README.md',
    'package.json',
    'src/errors.ts',
    'src/index.ts',
    'test/plugin.test.ts',
    'trellis.plugin.json',
    'tsconfig.json',
  ])
  const manifest = JSON.parse(await readFile(join(dir, 'trellis.plugin.json'), 'utf8'))
  t.equal(manifest.name, '@acme/widgets')
  t.equal(manifest.description, 'Widgets for wholesalers')
  t.equal(JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')).name, '@acme/widgets', 'the same name')
  const src = await readFile(join(dir, 'src', 'index.ts'), 'utf8')
  t.match(src, /return problem\(WIDGETS\.QTY_TOO_LARGE, /, "the scaffold's route answers the SDK's typed problem")
  t.notMatch(src, /error:/, 'no hand-made { error } bodies')
  const again = await cliIn(['create', '@acme/widgets'])
  t.equal(again.code, 1)
  t.match(again.stderr, /SDK_ERR_TARGET_EXISTS/)
})

t.test('on a TTY, create prompts only for what the flags did not give', async (t) => {
  const asked: string[] = []
  const answers = ['', '@acme/asked', '']
  const prompt = async (q: string) => (asked.push(q), answers.shift() ?? '')
  let stdout = ''
  const code = await runCli(['create', '--description', 'Given by flag'], {
    cwd: root,
    stdinIsTTY: true,
    prompt,
    stdout: (s) => void (stdout += s),
    stderr: () => {},
  })
  t.equal(code, 0, stdout)
  t.same(
    asked,
    ['Plugin name (@scope/name): ', 'Plugin name (@scope/name): ', 'Directory (./asked): '],
    'asks again for an empty name; never for the description',
  )
  t.equal(JSON.parse(await readFile(join(root, 'asked', 'trellis.plugin.json'), 'utf8')).description, 'Given by flag')
  asked.length = 0
  t.equal(
    await runCli(['create', '@acme/flagged', '--yes'], {
      cwd: root,
      stdinIsTTY: true,
      prompt,
      stdout: () => {},
      stderr: () => {},
    }),
    0,
  )
  t.same(asked, [], '--yes never prompts')
  answers.push('', '@acme', '')
  t.equal(
    await runCli(['create', 'scoped', '--description', 'x'], {
      cwd: root,
      stdinIsTTY: true,
      prompt,
      stdout: () => {},
      stderr: () => {},
    }),
    0,
  )
  t.same(asked, ['Publisher scope (@your-org): ', 'Publisher scope (@your-org): ', 'Directory (./scoped): '])
  t.equal(JSON.parse(await readFile(join(root, 'scoped', 'package.json'), 'utf8')).name, '@acme/scoped')
  await rm(join(root, 'scoped'), { recursive: true })
  await rm(join(root, 'asked'), { recursive: true })
  await rm(join(root, 'flagged'), { recursive: true })
})

t.test(
  "trellis-plugin test runs the template's tests against the real kernel, and fails when the plugin breaks",
  async (t) => {
    await mkdir(join(dir, 'node_modules', '@trellis'), { recursive: true })
    await symlink(join(repoModules, '@trellis', 'plugin-sdk'), join(dir, 'node_modules', '@trellis', 'plugin-sdk'))
    await symlink(join(repoModules, '@trellis', 'platform'), join(dir, 'node_modules', '@trellis', 'platform'))
    // The warm kernel the runs share, kept in this file's own directory and stopped at its end.
    const stateDir = join(root, 'dev-kernel')
    t.teardown(() => stopWarmKernels(stateDir))
    const env = { TRELLIS_DEV_KERNEL_DIR: stateDir }
    const res = await cli(['test'], dir, env)
    t.equal(res.code, 0, res.stdout + res.stderr)
    t.match(res.stdout, /# pass 4/)
    t.match(res.stdout, /# fail 0/)
    const [first] = await listWarmKernels(stateDir)
    t.ok(first, 'the first run left the warm kernel running')
    const src = join(dir, 'src', 'index.ts')
    const original = await readFile(src, 'utf8')
    await writeFile(src, original.replace('{ announced: true }', '{ announced: false }'))
    const broken = await cli(['test'], dir, env)
    await writeFile(src, original)
    t.equal(broken.code, 1, 'a broken event handler fails the tests: the warm kernel runs the new code')
    t.match(broken.stdout, /# fail 1/)
    t.same(
      (await listWarmKernels(stateDir)).map((k) => k.pid),
      [first!.pid],
      'the second run used the same kernel',
    )
  },
)

t.test('build writes one bundle and its source map', async (t) => {
  const res = await cli(['build', '--json'], dir)
  t.equal(res.code, 0, res.stderr)
  const out = JSON.parse(res.stdout)
  t.same(out.entries, { route: ['POST /items'], event: ['widgets.item.created'] })
  t.same((await readdir(join(dir, 'dist'))).sort(), ['plugin.js', 'plugin.js.map'])
  const code = await readFile(join(dir, 'dist', 'plugin.js'), 'utf8')
  t.equal(out.sha256, createHash('sha256').update(code).digest('hex'))
  t.notMatch(code, /require\(/, 'no require() in the bundle')
  const map = JSON.parse(await readFile(join(dir, 'dist', 'plugin.js.map'), 'utf8'))
  t.ok(map.sources.includes('../src/index.ts'))
  t.notOk(
    map.sources.some((s: string) => s.includes(repoModules) || s.startsWith('../../')),
    'no paths of the machine that built it',
  )
  const human = await cliIn(['build'], dir)
  t.match(human.stdout, /built dist\/plugin\.js .*\n {2}route: POST \/items\n {2}event: widgets\.item\.created/)
})

t.test('validate passes the template and fails drift with exit code 3', async (t) => {
  const ok = await cli(['validate', '--json'], dir)
  t.equal(ok.code, 0, ok.stdout + ok.stderr)
  t.same(JSON.parse(ok.stdout), {
    ok: true,
    errors: [],
    warnings: [],
    entries: { route: ['POST /items'], event: ['widgets.item.created'] },
  })
  const manifestPath = join(dir, 'trellis.plugin.json')
  const original = await readFile(manifestPath, 'utf8')
  const m = JSON.parse(original)
  m.routes.push({ method: 'GET', path: '/items/:id' })
  m.capabilities.push('http:fetch:*')
  m.version = 'one'
  await writeFile(manifestPath, JSON.stringify(m))
  const bad = await cliIn(['validate', '--json'], dir)
  t.equal(bad.code, 3)
  t.same(
    JSON.parse(bad.stdout).errors.map((e: { pointer: string; rule: string }) => [e.pointer, e.rule]),
    [['/version', 'semver']],
  )
  m.version = '0.2.0'
  await writeFile(manifestPath, JSON.stringify(m))
  const lint = await cliIn(['validate'], dir)
  t.equal(lint.code, 3)
  t.match(lint.stderr, /error \/routes\/1 .*GET \/items\/:id.*\[route-unhandled\]/)
  t.match(lint.stderr, /error \/capabilities\/3 .*\[http-fetch-wildcard\]/)
  await writeFile(manifestPath, '{ not json')
  t.equal((await cliIn(['validate'], dir)).code, 3)
  await writeFile(manifestPath, original)
  t.equal((await cliIn(['validate', '--dir', join(root, 'nowhere')])).code, 1, 'no manifest')
})

t.test('keys generate writes an Ed25519 pair with a 0600 private key and refuses to overwrite it', async (t) => {
  const res = await cli(['keys', 'generate', '--json'])
  t.equal(res.code, 0, res.stderr)
  const out = JSON.parse(res.stdout)
  t.equal(out.privateKeyPath, join(keysDir, 'signing-key.pem'))
  t.equal((await stat(out.privateKeyPath)).mode & 0o777, 0o600)
  t.equal(createPublicKey(await readFile(out.publicKeyPath, 'utf8')).asymmetricKeyType, 'ed25519')
  t.match(out.fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/)
  const again = await cliIn(['keys', 'generate'])
  t.equal(again.code, 1)
  t.match(again.stderr, /SDK_ERR_KEY_EXISTS/)
})

t.test('pack writes a signed tarball holding exactly the package files', async (t) => {
  const noKey = await cliIn(['pack', '--key', join(root, 'missing.pem')], dir)
  t.equal(noKey.code, 4)
  t.match(noKey.stderr, /SDK_ERR_KEY_NOT_FOUND/)
  const res = await cli(['pack', '--json'], dir)
  t.equal(res.code, 0, res.stderr)
  const out = JSON.parse(res.stdout)
  t.equal(out.tarballPath, join(dir, 'acme-widgets-0.1.0.tgz'))
  t.equal(out.signaturePath, join(dir, 'acme-widgets-0.1.0.tgz.sig'))
  const tgz = await readFile(out.tarballPath)
  t.equal(out.sha256, createHash('sha256').update(tgz).digest('hex'))

  const unpacked = join(root, 'unpacked')
  await mkdir(unpacked)
  const entries: string[] = []
  await extract({ file: out.tarballPath, cwd: unpacked, onReadEntry: (e) => void entries.push(`${e.type} ${e.path}`) })
  t.same(entries, ['File trellis.plugin.json', 'File dist/plugin.js', 'File dist/plugin.js.map', 'File SHA256SUMS'])
  const sums = (await readFile(join(unpacked, 'SHA256SUMS'), 'utf8')).trim().split('\n')
  t.equal(sums.length, 3)
  for (const line of sums) {
    const [hash, path] = line.split('  ') as [string, string]
    t.equal(
      createHash('sha256')
        .update(await readFile(join(unpacked, path)))
        .digest('hex'),
      hash,
      `SHA256SUMS matches ${path}`,
    )
  }
  t.equal(
    await readFile(join(unpacked, 'dist', 'plugin.js'), 'utf8'),
    await readFile(join(dir, 'dist', 'plugin.js'), 'utf8'),
  )
  t.equal(
    await readFile(join(unpacked, 'trellis.plugin.json'), 'utf8'),
    await readFile(join(dir, 'trellis.plugin.json'), 'utf8'),
  )

  const signature = Buffer.from((await readFile(out.signaturePath, 'utf8')).trim(), 'base64')
  const publicKey = createPublicKey(await readFile(join(keysDir, 'signing-key.pub.pem'), 'utf8'))
  t.ok(verify(null, tgz, publicKey, signature), 'the signature verifies with node:crypto')
  const tampered = Buffer.from(tgz)
  tampered[tampered.length - 10] ^= 0x01
  t.notOk(verify(null, tampered, publicKey, signature), 'and fails over tampered bytes')
  t.ok(
    verifyPackageSignature(
      tgz,
      signature.toString('base64'),
      publicKey.export({ format: 'pem', type: 'spki' }) as string,
    ),
  )
  t.notOk(
    verifyPackageSignature(
      tampered,
      signature.toString('base64'),
      publicKey.export({ format: 'pem', type: 'spki' }) as string,
    ),
  )

  const second = await cliIn(['pack', '--json'], dir)
  t.equal(JSON.parse(second.stdout).sha256, out.sha256, 'packing is reproducible')
})

t.test('pack refuses a plugin that fails validation, and a key others can read', async (t) => {
  await writeFile(join(root, 'loose.pem'), await readFile(join(keysDir, 'signing-key.pem')), { mode: 0o644 })
  const loose = await cliIn(['pack', '--key', join(root, 'loose.pem')], dir)
  t.equal(loose.code, 4)
  t.match(loose.stderr, /SDK_ERR_KEY_INVALID.*readable by others/)
  const src = join(dir, 'src', 'index.ts')
  const original = await readFile(src, 'utf8')
  await writeFile(
    src,
    original.replace(
      "routes: { 'POST /items': createItem },",
      "routes: { 'POST /items': createItem, 'DELETE /items/:id': async () => ({ status: 204 }) },",
    ),
  )
  const res = await cliIn(['pack', '--json'], dir)
  t.equal(res.code, 3)
  const out = JSON.parse(res.stdout)
  t.equal(out.error.code, 'SDK_ERR_VALIDATION_FAILED')
  t.same(
    out.errors.map((e: { rule: string }) => e.rule),
    ['route-undeclared'],
  )
  await writeFile(
    src,
    original.replace(
      "import { collection, definePlugin, problem } from '@trellis/plugin-sdk'",
      "import { collection, definePlugin, problem } from '@trellis/plugin-sdk'\nimport { readFileSync } from 'node:fs'\nvoid readFileSync",
    ),
  )
  const nodeApi = await cliIn(['build'], dir)
  t.equal(nodeApi.code, 1)
  t.match(nodeApi.stderr, /SDK_ERR_BUILD_FAILED.*node:fs/s)
  await writeFile(src, original)
})
