/**
 * The SDK as partners get it: every package packed as a built tarball (`npm run pack`, JavaScript
 * with type declarations, no tsx to run), a plugin created with `trellis-plugin create @acme/hello`
 * in an empty directory outside this checkout, installed from those tarballs only (third-party
 * packages from the registry or npm's cache), its tests run twice against the kernel installed
 * from the tarballs (the first run starts the warm dev kernel, the second reuses it; `dev-kernel
 * stop` stops it); then the README's marketplace walk-through, run as written in the plugin's
 * folder against a kernel the tarballs' `trellis start` started while the tests ran: published,
 * approved, installed, used.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { packPackages } from '../../scripts/pack-packages.js'
import { stopWarmKernels } from '../src/dev-warm.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
// Packing, and npm resolving ~600 packages without a lockfile, take minutes on a loaded machine.
t.setTimeout(1_500_000)
// The README's walk-through signs in as the default platform admin with the password it was given.
const ADMIN_PASSWORD = 'tarballs-admin-password'

interface Ran {
  code: number | null
  out: string
  stdout: string
}

/** Runs a command outside the checkout with an environment that knows nothing of it. */
function run(cmd: string, args: string[], cwd: string, ms: number, env: Record<string, string> = {}): Promise<Ran> {
  const child = spawn(cmd, args, {
    cwd,
    env: { PATH: process.env.PATH!, HOME: process.env.HOME!, npm_config_update_notifier: 'false', ...env },
  })
  let out = ''
  let stdout = ''
  child.stdout.on('data', (d) => {
    out += d
    stdout += d
  })
  child.stderr.on('data', (d) => (out += d))
  const timer = setTimeout(() => child.kill('SIGKILL'), ms)
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, out, stdout })
    }),
  )
}

t.test('a plugin made outside the checkout installs from the tarballs, passes its tests and publishes', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'trellis-tarballs-'))
  // The warm dev kernel the plugin's tests start is this test's own; stopped (if the test did not
  // get to stop it) before its directory goes.
  const devKernel = { TRELLIS_DEV_KERNEL_DIR: join(root, 'dev-kernel') }
  t.teardown(async () => {
    await stopWarmKernels(devKernel.TRELLIS_DEV_KERNEL_DIR)
    rmSync(root, { recursive: true, force: true })
  })
  const tarballs = join(root, 'tarballs')
  // Where the minutes go, printed as comments: pack, create, install, each test run, the walk-through.
  let lap = Date.now()
  const took = (what: string) => {
    t.comment(`${what}: ${Date.now() - lap} ms`)
    lap = Date.now()
  }
  const packed = await packPackages(tarballs, { typesOf: ['plugin-sdk'] })
  const byName = Object.fromEntries(packed.map((p) => [p.name, `file:${p.tarball}`]))
  const sdk = byName['@trellis/plugin-sdk']!
  took('pack')

  // The SDK tarball holds JavaScript, declarations and a launcher that needs no TypeScript loader.
  const listing = await run('tar', ['tzf', sdk.slice(5)], root, 60_000)
  for (const f of [
    'package/src/index.js',
    'package/src/index.d.ts',
    'package/src/harness.d.ts',
    'package/src/cli/bin.js',
  ])
    t.match(listing.stdout, f, `the SDK tarball has ${f}`)
  const sdkManifest = JSON.parse(
    (await run('tar', ['xzOf', sdk.slice(5), 'package/package.json'], root, 60_000)).stdout,
  )
  t.same(sdkManifest.exports['.'], { types: './src/index.d.ts', default: './src/index.js' })

  // create, with the SDK from its tarball, in an empty directory.
  const work = join(root, 'work')
  mkdirSync(work)
  const created = await run(
    'npm',
    ['exec', '--yes', '--prefer-offline', `--package=${sdk.slice(5)}`, '--', 'trellis-plugin', 'create', '@acme/hello'],
    work,
    240_000,
    { npm_config_cache: join(process.env.HOME!, '.npm') },
  )
  t.equal(created.code, 0, created.out)
  took('create (npm exec of the SDK tarball)')
  const dir = join(work, 'hello')
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
  t.equal(pkg.name, '@acme/hello')
  t.same(
    Object.keys(pkg.devDependencies)
      .filter((d) => d.startsWith('@trellis/'))
      .sort(),
    ['@trellis/platform', '@trellis/plugin-sdk'],
  )
  t.notMatch(JSON.stringify(pkg), ROOT, 'nothing points into the checkout')

  // Install: the two Trellis packages and every Trellis package they need come from the tarballs
  // (the stand-in for a registry), everything else from the registry or npm's cache.
  for (const d of Object.keys(pkg.devDependencies)) if (byName[d]) pkg.devDependencies[d] = byName[d]
  pkg.overrides = byName
  writeFileSync(join(dir, 'package.json'), JSON.stringify(pkg, null, 2))
  // Install scripts are not run: isolated-vm's native build for this Node is the one `npm ci` made
  // for this checkout (same version; compiling it again would take minutes). esbuild needs none.
  const installed = await run(
    'npm',
    ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts'],
    dir,
    480_000,
  )
  t.equal(installed.code, 0, installed.out)
  took('npm install')
  // The console arrives built; the tools and libraries that built it stay out of the install.
  t.ok(existsSync(join(dir, 'node_modules', '@trellis', 'console', 'dist', 'index.html')), 'the console is built')
  for (const tool of ['vite', 'react-dom', '@rjsf/core'])
    t.notOk(existsSync(join(dir, 'node_modules', tool)), `${tool} is not installed`)
  mkdirSync(join(dir, 'node_modules', 'isolated-vm', 'out'), { recursive: true })
  copyFileSync(
    join(ROOT, 'node_modules', 'isolated-vm', 'out', 'isolated_vm.node'),
    join(dir, 'node_modules', 'isolated-vm', 'out', 'isolated_vm.node'),
  )
  for (const bin of ['trellis', 'trellis-plugin'])
    t.notMatch(
      readFileSync(join(dir, 'node_modules', '.bin', bin), 'utf8'),
      'tsx',
      `${bin} runs without a TypeScript loader`,
    )

  // A kernel from the tarballs' `trellis start` for the walk-through below, starting while the
  // plugin's tests run (two kernel starts side by side rather than one after the other).
  const data = join(root, 'data')
  const kernel = spawn(join(dir, 'node_modules', '.bin', 'trellis'), ['start'], {
    cwd: dir,
    env: {
      PATH: process.env.PATH!,
      HOME: process.env.HOME!,
      PORT: '0',
      LOG_LEVEL: 'warn',
      TRELLIS_DATA_DIR: data,
      TRELLIS_ADMIN_PASSWORD: ADMIN_PASSWORD,
    },
  })
  t.teardown(() => {
    kernel.kill('SIGTERM')
  })
  let log = ''
  const listening = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the kernel did not start:\n${log}`)), 300_000)
    const seen = (d: Buffer) => {
      log += d
      const m = /running at (http:\/\/\S+)/.exec(log)
      if (m) {
        clearTimeout(timer)
        resolve(m[1]!)
      }
    }
    kernel.stdout!.on('data', seen)
    kernel.stderr!.on('data', seen)
    kernel.on('exit', (code) => reject(new Error(`the kernel exited ${code}:\n${log}`)))
  })
  listening.catch(() => {})

  // Its tests, against the kernel installed from the tarballs: the first run starts the warm dev
  // kernel (the tarballs' built JavaScript), the second reuses it.
  for (const which of ['first', 'second']) {
    const started = Date.now()
    const tested = await run('npx', ['trellis-plugin', 'test'], dir, 300_000, devKernel)
    t.equal(tested.code, 0, tested.out)
    t.match(tested.out, /# pass [1-9]/)
    t.match(tested.out, /# fail 0/)
    t.comment(`${which} trellis-plugin test: ${Date.now() - started} ms`)
  }
  const status = await run('npx', ['trellis-plugin', 'dev-kernel', 'status', '--json'], dir, 60_000, devKernel)
  t.equal(JSON.parse(status.stdout).kernels.length, 1, 'both runs used the one warm kernel')
  const stopped = await run('npx', ['trellis-plugin', 'dev-kernel', 'stop', '--json'], dir, 60_000, devKernel)
  t.equal(JSON.parse(stopped.stdout).stopped.length, 1, 'and dev-kernel stop stops it')

  // The plugin published to the marketplace of the kernel started above.
  const url = await listening
  lap = Date.now()
  // The README's marketplace walk-through, run as written in the plugin's folder: the tokens, a
  // scope and a signing key, publish, review, install, and a request to the installed plugin.
  const home = join(root, 'home')
  mkdirSync(home)
  const walk = await run(
    'bash',
    ['--norc', '--noprofile', '-e', '-u', '-o', 'pipefail', '-c', marketplaceBlocks().join('\n')],
    dir,
    300_000,
    { HOME: home, URL: url, ADMIN_PASSWORD, npm_config_cache: join(process.env.HOME!, '.npm') },
  )
  t.equal(walk.code, 0, `the walk-through ran to its end\n${walk.out}`)
  took('the marketplace walk-through')
  t.same(
    walk.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l)),
    [
      { name: 'Bolts Ltd', slug: 'bolts' },
      { scope: '@acme' },
      { name: 'laptop', status: 'active' },
      { name: '@acme/hello', version: '0.1.0', status: 'approved' },
      { plugin: '@acme/hello', version: '0.1.0' },
      { name: 'bolt', qty: 3 },
    ],
    'each step printed what it made, through to a request the installed plugin answered',
  )
  t.match(walk.out, /@acme\/hello@0\.1\.0/, 'publish says what it published')
})

/** The README's marketplace walk-through: the shell blocks between its markers, as written. */
function marketplaceBlocks(): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const m = /<!-- marketplace:start -->([\s\S]*?)<!-- marketplace:end -->/.exec(readme)
  if (!m) throw new Error('README.md has no <!-- marketplace:start --> … <!-- marketplace:end --> section')
  const blocks = [...m[1]!.matchAll(/```sh\n([\s\S]*?)```/g)].map((b) => b[1]!)
  if (blocks.length !== 2) throw new Error(`the walk-through has ${blocks.length} shell blocks, not 2`)
  return blocks
}
