// The plugin journey as a new developer takes it, from an empty folder:
// `trellis-plugin create @acme/hello` → `npm install` → `npm test` → `trellis-plugin dev` serves
// the route and reloads on change → the built bundle, installed in a running kernel (on each
// database), answers at /v1/x/hello/… for the tenant that installed it and 404s for one that did
// not; its refusals are the SDK's typed problems.
import t, { type Test } from 'tap'
import { execFile, spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DB_KINDS, type DbKind, startTestKernel, createTenantWithAdmin } from '../core/test/helpers/test-kernel.js'
import { registerVersion } from '../core/test/helpers/plugin-versions.js'

const bin = fileURLToPath(new URL('../plugin-sdk/bin/trellis-plugin.js', import.meta.url))
const root = await mkdtemp(join(tmpdir(), 'trellis-acceptance-'))
// The warm dev kernel the plugin's `npm test` starts is this test's own, stopped when it ends
// (in the user's default place it would outlive the suite).
const devKernelDir = join(root, 'dev-kernel')
t.teardown(async () => {
  await run(process.execPath, [bin, 'dev-kernel', 'stop'], root)
  await rm(root, { recursive: true, force: true })
})
const dir = join(root, 'hello')

function run(cmd: string, args: string[], cwd: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) =>
    execFile(
      cmd,
      args,
      {
        cwd,
        env: {
          ...process.env,
          npm_config_audit: 'false',
          npm_config_fund: 'false',
          TRELLIS_DEV_KERNEL_DIR: devKernelDir,
        },
        maxBuffer: 16 * 1024 * 1024,
      },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
    ),
  )
}

t.test('create, install, test', async (t) => {
  const created = await run(process.execPath, [bin, 'create', 'hello', '--scope', '@acme'], root)
  t.equal(created.code, 0, created.out)
  t.match(created.out, /created @acme\/hello/)
  t.equal(JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')).name, '@acme/hello')
  const installed = await run('npm', ['install', '--prefer-offline'], dir)
  t.equal(installed.code, 0, installed.out)
  const tested = await run('npm', ['test'], dir)
  t.equal(tested.code, 0, tested.out)
  t.match(tested.out, /# pass 4/)
})

t.test('trellis-plugin dev serves the route and reloads on change', async (t) => {
  const child = spawn(process.execPath, [bin, 'dev', '--port', '0'], {
    cwd: dir,
    env: { ...process.env, TRELLIS_DEV_KERNEL_DIR: devKernelDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.teardown(() => void child.kill('SIGINT'))
  let out = ''
  child.stdout.on('data', (c: Buffer) => (out += c.toString()))
  child.stderr.on('data', (c: Buffer) => (out += c.toString()))
  // A generous bound: the dev kernel's start is slow on a loaded machine; the wait ends at the line.
  const waitFor = async (re: RegExp, ms = 240_000) => {
    const deadline = Date.now() + ms
    while (!re.test(out)) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`dev: no ${re} in:\n${out}`)
      await new Promise((r) => setTimeout(r, 100))
    }
    return re.exec(out)!
  }
  const [, base] = await waitFor(/trellis dev: (http:\/\/\S+\/v1\/x\/hello)/)
  const [, token] = await waitFor(/Bearer ([\w.-]+)/)
  const post = (body: unknown) =>
    fetch(`${base}/items`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
  const first = await post({ name: 'bolt', qty: 500 })
  t.equal(first.status, 201)
  t.equal(((await first.json()) as { name: string }).name, 'bolt')
  await waitFor(/item created/)
  t.pass("the invocation's log line is streamed")
  const src = join(dir, 'src', 'index.ts')
  await writeFile(src, (await readFile(src, 'utf8')).replace('req.body.qty > 1_000_000', 'req.body.qty > 100'))
  await waitFor(/reloaded 0\.1\.0\+dev\./)
  const second = await post({ name: 'bolt', qty: 500 })
  t.equal(second.status, 422, 'the changed code answers after the reload')
  t.equal(((await second.json()) as { code: string }).code, 'HELLO_ERR_QTY_TOO_LARGE', 'with its typed problem')
  child.kill('SIGINT')
  await new Promise((r) => child.once('exit', r))
})

t.test('the built bundle answers in a running kernel for the tenant that installed it only', async (t) => {
  const built = await run(process.execPath, [bin, 'build', '--json'], dir)
  t.equal(built.code, 0, built.out)
  for (const kind of DB_KINDS) await t.test(`on ${kind}`, (t) => installedOn(t, kind))
})

async function installedOn(t: Test, kind: DbKind) {
  const k = await startTestKernel(t, kind, { plugins: { sandboxWorkers: 1 } })
  const a = await createTenantWithAdmin(k, 'hello-a')
  const b = await createTenantWithAdmin(k, 'hello-b')
  const manifest = JSON.parse(await readFile(join(dir, 'trellis.plugin.json'), 'utf8'))
  const code = await readFile(join(dir, 'dist', 'plugin.js'), 'utf8')
  const sourceMap = await readFile(join(dir, 'dist', 'plugin.js.map'), 'utf8')
  // Registered as the marketplace does once a version is approved (its own test publishes for real).
  const registered = await registerVersion(k, { manifest, code, sourceMap })
  t.equal(registered.status, 'approved')
  const installed = await k.req('POST', '/v1/installations', {
    token: a.token,
    body: { plugin: '@acme/hello', version: '0.1.0', capabilities: manifest.capabilities },
  })
  t.equal(installed.status, 201, JSON.stringify(installed.body))
  const ok = await k.req('POST', '/v1/x/hello/items', { token: a.token, body: { name: 'nut', qty: 7 } })
  t.equal(ok.status, 201)
  t.equal(ok.body.qty, 7)
  const other = await k.req('POST', '/v1/x/hello/items', { token: b.token, body: { name: 'nut', qty: 7 } })
  t.equal(other.status, 404)
  t.equal(other.body.code, 'PLG_ERR_NOT_INSTALLED')
  const refused = await k.req('POST', '/v1/x/hello/items', { token: a.token, body: { name: 'crate', qty: 2_000_000 } })
  t.equal(refused.status, 422)
  t.equal(refused.body.code, 'HELLO_ERR_QTY_TOO_LARGE', "the plugin's refusal is its typed problem")
  t.match(refused.headers['content-type'], /^application\/problem\+json/)
}
