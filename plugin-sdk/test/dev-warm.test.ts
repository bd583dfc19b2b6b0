/**
 * The warm dev kernel (docs/adr/0092-warm-dev-kernel.md): `trellis-plugin dev` serves from the
 * kernel kept running between runs — on the port asked for, through its forwarding proxy — and
 * the next session reuses that kernel with a tenant of its own, seeing nothing of the first;
 * `dev-kernel status` lists it and `dev-kernel stop` stops it.
 */
import t from 'tap'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { templateFiles } from '../src/cli/template.js'
import { runCli } from '../src/cli/main.js'
import { TEST_TEMPLATE_DIR } from '../../core/test/helpers/test-kernel.js'

const root = await mkdtemp(join(tmpdir(), 'trellis-warm-'))
const stateDir = join(root, 'dev-kernel')
process.env.TRELLIS_DEV_KERNEL_DIR = stateDir
// The migrated database the rest of the suite starts from: the warm kernel loads it too.
process.env.TRELLIS_CACHE_DIR = TEST_TEMPLATE_DIR
t.teardown(async () => {
  await runCli(['dev-kernel', 'stop'], { stdout: () => {}, stderr: () => {} })
  await rm(root, { recursive: true, force: true })
})

const dir = join(root, 'warmed')
for (const [file, text] of Object.entries(templateFiles({ name: '@acme/warmed', description: 'Warm' }))) {
  await mkdir(dirname(join(dir, file)), { recursive: true })
  await writeFile(join(dir, file), text)
}

async function cli(args: string[]): Promise<{ code: number; stdout: string }> {
  let stdout = ''
  const code = await runCli(args, { cwd: dir, stdinIsTTY: false, stdout: (s) => void (stdout += s), stderr: () => {} })
  return { code, stdout }
}

/** One `trellis-plugin dev` session: runs `use` once it is ready, then stops it. */
async function devSession<T>(
  use: (info: { url: string; basePath: string; token: string }, out: () => string) => Promise<T>,
): Promise<T> {
  const ac = new AbortController()
  let out = ''
  let ready!: (info: { url: string; basePath: string; token: string }) => void
  const readyP = new Promise<{ url: string; basePath: string; token: string }>((r) => (ready = r))
  const done = runCli(['dev', '--port', '0'], {
    cwd: dir,
    stdinIsTTY: false,
    stdout: (s) => void (out += s),
    stderr: (s) => void (out += s),
    signal: ac.signal,
    onDevReady: (info) => ready(info),
  })
  const info = await Promise.race([
    readyP,
    done.then((code) => Promise.reject(new Error(`dev ended (${code}) before it was ready:\n${out}`))),
  ])
  try {
    return await use(info, () => out)
  } finally {
    ac.abort()
    await done
  }
}

const post = (info: { url: string; basePath: string; token: string }, path: string, body?: unknown) =>
  fetch(`${info.url}${info.basePath}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${info.token}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })

t.test('dev serves from the warm kernel; the next session reuses it with a tenant of its own', async (t) => {
  const first = await devSession(async (info, out) => {
    t.match(out(), /kernel: {3}the warm dev kernel \(pid \d+, started now/, 'the first session starts the warm kernel')
    t.match(info.url, /^http:\/\/127\.0\.0\.1:\d+$/, 'served on the port asked for (any free one here)')
    const res = await post(info, '/items', { name: 'bolt', qty: 1 })
    t.equal(res.status, 201, 'the plugin route answers through the proxy')
    const logs = await cli(['logs', '--json'])
    t.equal(logs.code, 0, '`logs` answers')
    const route = (JSON.parse(logs.stdout).invocations as Array<{ entryName: string; outcome: string }>).find(
      (i) => i.entryName === 'POST /items',
    )
    t.equal(route?.outcome, 'ok', '`logs` finds its invocation')
    return { pid: Number(/pid (\d+)/.exec(out())![1]), token: info.token }
  })
  const status = await cli(['dev-kernel', 'status', '--json'])
  t.match(JSON.parse(status.stdout).kernels, [{ pid: first.pid }], 'the kernel outlives the session')

  await devSession(async (info, out) => {
    t.match(out(), `the warm dev kernel (pid ${first.pid}, already running)`, 'the second session reuses it')
    const mine = await post(info, '/items', { name: 'nut', qty: 2 })
    t.equal(mine.status, 201)
    const before = await fetch(`${info.url}/v1/me`, { headers: { authorization: `Bearer ${first.token}` } })
    t.equal(before.status, 200, "the first session's key still works: its tenant is still there")
    const theirs = await post({ ...info, token: first.token }, '/items', { name: 'washer', qty: 3 })
    t.equal(theirs.status, 201)
    const listed = await cli(['logs', '--json'])
    const routes = (JSON.parse(listed.stdout).invocations as Array<{ entryName: string }>).filter(
      (i) => i.entryName === 'POST /items',
    )
    t.equal(routes.length, 1, "this session's tenant sees its own route call, not the first tenant's two")
  })
})

t.test('dev-kernel stop stops it; status then lists none', async (t) => {
  const stop = await cli(['dev-kernel', 'stop', '--json'])
  t.equal(stop.code, 0)
  const [pid] = JSON.parse(stop.stdout).stopped as number[]
  t.ok(pid, 'one kernel was stopped')
  t.throws(() => process.kill(pid!, 0), 'its process is gone')
  t.same(
    (await readdir(stateDir)).filter((f) => f.endsWith('.json')),
    [],
    'its state file is removed',
  )
  t.same(JSON.parse((await cli(['dev-kernel', 'status', '--json'])).stdout).kernels, [])
  t.notOk(existsSync(join(dir, 'dist', 'dev-server.json')), 'the dev sessions cleaned up after themselves')
})
