// How `trellis` behaves at the edges an operator meets first: --help and --version, and a
// database, Redis or port that is not there — one line naming the variable, exit 2.
import t from 'tap'
import { spawn } from 'node:child_process'
import { connect, createServer, type AddressInfo, type Server } from 'node:net'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const CLI = fileURLToPath(new URL('../../platform/bin/trellis.js', import.meta.url))
const version = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version as string
const baseEnv = { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'warn', PORT: '0' }

function run(
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...baseEnv, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('exit', (status) => resolve({ status, stdout, stderr }))
  })
}

/** A port nothing listens on: bound, read, then released. */
async function closedPort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const port = (s.address() as AddressInfo).port
  await new Promise((r) => s.close(r))
  return port
}

const dataDir = () => mkdtempSync(join(tmpdir(), 'trellis-cli-'))

t.test('--version and --help answer with exit 0', async (t) => {
  for (const flag of ['--version', '-V']) {
    const r = await run([flag])
    t.equal(r.status, 0, flag)
    t.equal(r.stdout.trim(), version, `${flag} prints the package version`)
  }
  const help = await run(['--help'])
  t.equal(help.status, 0)
  t.match(help.stdout, /Usage: trellis/)
  t.match(help.stdout, /-V, --version/)
  for (const c of ['start', 'migrate', 'admin', 'audit', 'keys']) t.match(help.stdout, new RegExp(`\\n\\s+${c}\\b`))
  const sub = await run(['keys', 'rotate', '--help'])
  t.equal(sub.status, 0)
  t.match(sub.stdout, /--json/)
})

t.test('an unreachable DATABASE_URL is one line naming it, exit 2', async (t) => {
  const port = await closedPort()
  const r = await run(['start'], {
    DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/trellis`,
    TRELLIS_SECRET_KEY: 'a'.repeat(64),
    TRELLIS_DATA_DIR: dataDir(),
  })
  t.equal(r.status, 2)
  t.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
  t.match(
    r.stderr,
    new RegExp(
      `^trellis: KRN_ERR_CONFIG_INVALID: DATABASE_URL: cannot reach PostgreSQL at 127\\.0\\.0\\.1:${port} \\(.*ECONNREFUSED.*\\); is it running`,
    ),
  )
  t.notMatch(r.stderr, /\n\s+at /, 'no stack trace')
})

t.test('a refused REDIS_URL is one line naming it, exit 2', async (t) => {
  const port = await closedPort()
  const r = await run(['start'], { REDIS_URL: `redis://127.0.0.1:${port}`, TRELLIS_DATA_DIR: dataDir() })
  t.equal(r.status, 2)
  t.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
  t.match(
    r.stderr,
    new RegExp(
      `^trellis: KRN_ERR_CONFIG_INVALID: REDIS_URL: cannot reach Redis at 127\\.0\\.0\\.1:${port} \\(.*ECONNREFUSED.*\\); start Redis, or unset REDIS_URL`,
    ),
  )
})

t.test('a port in use is one line naming PORT, exit 2', async (t) => {
  const holder: Server = createServer()
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise((r) => holder.close(r)))
  const port = (holder.address() as AddressInfo).port
  for (const [args, env] of [
    [['start'], { PORT: String(port) }],
    [['start', '--port', String(port)], {}],
  ] as const) {
    const r = await run([...args], { ...env, TRELLIS_DATA_DIR: dataDir() })
    t.equal(r.status, 2, args.join(' '))
    t.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
    t.match(
      r.stderr,
      new RegExp(
        `^trellis: KRN_ERR_CONFIG_INVALID: PORT: 127\\.0\\.0\\.1:${port} is in use by another process; stop it, or choose another port`,
      ),
    )
  }
})

/** Resolves once nothing accepts connections on `port` any more (the kernel let go of it). */
async function portReleased(port: number, boundMs = 60_000): Promise<boolean> {
  const until = Date.now() + boundMs
  while (Date.now() < until) {
    const refused = await new Promise<boolean>((resolve) => {
      const socket = connect({ port, host: '127.0.0.1' })
      socket.once('connect', () => (socket.destroy(), resolve(false)))
      socket.once('error', () => resolve(true))
    })
    if (refused) return true
    await new Promise((r) => setTimeout(r, 200))
  }
  return false
}

/**
 * A started kernel process: resolves with the URL it prints once it listens, or rejects with its
 * output when it exits first (no timer: tap's file timeout bounds a start that never ends).
 */
function started(t: { teardown(fn: () => void): void }, child: ReturnType<typeof spawn>) {
  let out = ''
  child.stdout!.on('data', (d) => (out += d))
  child.stderr!.on('data', (d) => (out += d))
  const exited = new Promise<void>((r) => child.once('exit', () => r()))
  t.teardown(() => void (child.exitCode === null && child.kill('SIGKILL')))
  const url = new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', () => {
      const m = /running at (http:\/\/\S+)/.exec(out)
      if (m) resolve(m[1]!)
    })
    void exited.then(() => reject(new Error(`the kernel exited before it listened:\n${out}`)))
  })
  return { url, exited }
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`${signal} to \`npm start\` stops the kernel and frees its port`, async (t) => {
    const root = fileURLToPath(new URL('../..', import.meta.url))
    const npm = spawn('npm', ['start', '--silent'], {
      cwd: root,
      env: { ...baseEnv, TRELLIS_DATA_DIR: dataDir() },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const { url: listening, exited } = started(t, npm)
    const url = await listening
    t.equal((await fetch(`${url}/healthz`)).status, 200, 'the kernel answers')
    npm.kill(signal)
    await exited
    t.ok(await portReleased(Number(new URL(url).port)), 'nothing holds the port once npm start has exited')
  })
}

t.test('a TRELLIS_SECRET_KEY other than the one the database was made with is one line, exit 2', async (t) => {
  const dir = dataDir()
  const first = spawn(process.execPath, [CLI, 'start'], {
    env: { ...baseEnv, TRELLIS_DATA_DIR: dir, TRELLIS_SECRET_KEY: 'a'.repeat(64) },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const { url, exited } = started(t, first)
  await url
  first.kill('SIGTERM')
  await exited

  const r = await run(['start'], { TRELLIS_DATA_DIR: dir, TRELLIS_SECRET_KEY: 'b'.repeat(64) })
  t.equal(r.status, 2)
  t.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
  t.match(
    r.stderr,
    /^trellis: KRN_ERR_CONFIG_INVALID: TRELLIS_SECRET_KEY: does not open the token signing keys stored in this database/,
  )
  t.notMatch(r.stdout, /running at/, 'the kernel did not start')
})
