/**
 * The SDK as partners get it: every package packed as a built tarball (`npm run pack`, JavaScript
 * with type declarations, no tsx to run), a plugin created with `trellis-plugin create @acme/hello`
 * in an empty directory outside this checkout, installed from those tarballs only (third-party
 * packages from the registry or npm's cache), its tests run against the kernel installed from
 * the tarballs, and the plugin published to a kernel started with the tarballs' `trellis start`.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { packPackages } from '../scripts/pack-packages.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
// Packing, and npm resolving ~600 packages without a lockfile, take minutes on a loaded machine.
t.setTimeout(1_500_000)
const ADMIN = { email: 'root@tarballs.test', password: 'tarballs-admin-password' }

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

async function api(url: string, method: string, path: string, body?: unknown, token?: string) {
  const r = await fetch(`${url}${path}`, {
    method,
    headers: {
      ...(body ? { 'content-type': 'application/json' } : {}),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  })
  return { status: r.status, body: (await r.json().catch(() => null)) as any }
}

t.test('a plugin made outside the checkout installs from the tarballs, passes its tests and publishes', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'trellis-tarballs-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const tarballs = join(root, 'tarballs')
  const packed = await packPackages(tarballs, { typesOf: ['plugin-sdk'] })
  const byName = Object.fromEntries(packed.map((p) => [p.name, `file:${p.tarball}`]))
  const sdk = byName['@trellis/plugin-sdk']!

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

  // Its tests, against the kernel installed from the tarballs.
  const tested = await run('npx', ['trellis-plugin', 'test'], dir, 300_000)
  t.equal(tested.code, 0, tested.out)
  t.match(tested.out, /# pass [1-9]/)
  t.match(tested.out, /# fail 0/)

  // A kernel from the tarballs' `trellis start`, and the plugin published to its marketplace.
  const data = join(root, 'data')
  const kernel = spawn(join(dir, 'node_modules', '.bin', 'trellis'), ['start'], {
    cwd: dir,
    env: {
      PATH: process.env.PATH!,
      HOME: process.env.HOME!,
      PORT: '0',
      LOG_LEVEL: 'warn',
      TRELLIS_DATA_DIR: data,
      TRELLIS_ADMIN_EMAIL: ADMIN.email,
      TRELLIS_ADMIN_PASSWORD: ADMIN.password,
    },
  })
  t.teardown(() => {
    kernel.kill('SIGTERM')
  })
  let log = ''
  const url = await new Promise<string>((resolve, reject) => {
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
  const admin = (await api(url, 'POST', '/v1/auth/login', ADMIN)).body.accessToken as string
  const partner = await api(
    url,
    'POST',
    '/v1/partners',
    { name: 'Acme', slug: 'acme', admin: { email: 'dev@acme.test', name: 'Dev', password: 'password-of-acme-dev' } },
    admin,
  )
  t.equal(partner.status, 201, JSON.stringify(partner.body))
  const dev = (await api(url, 'POST', '/v1/auth/login', { email: 'dev@acme.test', password: 'password-of-acme-dev' }))
    .body.accessToken as string
  t.equal((await api(url, 'POST', '/v1/marketplace/scopes', { scope: '@acme' }, dev)).status, 201)
  const keysDir = join(root, 'keys')
  const keys = JSON.parse(
    (await run('npx', ['trellis-plugin', 'keys', 'generate', '--keys-dir', keysDir, '--json'], dir, 120_000)).stdout,
  )
  const publicKey = readFileSync(keys.publicKeyPath, 'utf8')
  t.equal((await api(url, 'POST', '/v1/marketplace/keys', { name: 'laptop', publicKey }, dev)).status, 201)
  const apiKey = (await api(url, 'POST', '/v1/api-keys', { name: 'ci', permissions: ['plugins.publish'] }, dev)).body
    .key as string
  const published = await run(
    'npx',
    [
      'trellis-plugin',
      'publish',
      '--key',
      keys.privateKeyPath,
      '--url',
      url,
      '--api-key',
      apiKey,
      '--changelog',
      'First',
      '--json',
    ],
    dir,
    240_000,
  )
  t.equal(published.code, 0, published.out)
  t.match(JSON.parse(published.stdout), { version: '0.1.0' }, 'the marketplace took version 0.1.0')
})
