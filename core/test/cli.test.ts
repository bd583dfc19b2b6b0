import t, { type Test } from 'tap'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:http'
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { AddressInfo } from 'node:net'
import { embeddedTemplateOption } from '../src/cli/embedded-template-option.js'
import { trellisInProcess } from './helpers/cli-in-process.js'
import { defaultCacheDir, embeddedTemplatePath } from '../src/db/embedded-template.js'

const CLI = fileURLToPath(new URL('../../platform/bin/trellis.js', import.meta.url))
const baseEnv = { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'warn', PORT: '0' }

function run(args: string[], env: Record<string, string | undefined>) {
  return spawnSync(process.execPath, [CLI, ...args], {
    env: { ...baseEnv, ...env },
    encoding: 'utf8',
    timeout: 120_000,
  })
}

/** Starts `trellis start`, resolves once it printed its URL, with everything printed so far. */
function start(
  args: string[],
  env: Record<string, string | undefined>,
): Promise<{ child: ChildProcess; out: () => string; url: string }> {
  const child = spawn(process.execPath, [CLI, 'start', ...args], { env: { ...baseEnv, ...env } })
  let out = ''
  child.stdout!.on('data', (d) => (out += d))
  child.stderr!.on('data', (d) => (out += d))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL printed:\n${out}`)), 240_000)
    const check = () => {
      const m = /running at (http:\/\/\S+)/.exec(out)
      if (m && /\(API docs/.test(out) && out.includes('then send the accessToken')) {
        clearTimeout(timer)
        resolve({ child, out: () => out, url: m[1]! })
      }
    }
    child.stdout!.on('data', check)
    child.on('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`exited ${code}:\n${out}`))
    })
  })
}

/** Starts `trellis start --json`, resolves with the one line it printed on stdout once it listens. */
function startJson(
  env: Record<string, string | undefined>,
): Promise<{ child: ChildProcess; stdout: () => string; started: any }> {
  const child = spawn(process.execPath, [CLI, 'start', '--json'], { env: { ...baseEnv, LOG_LEVEL: 'info', ...env } })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d) => (stdout += d))
  child.stderr!.on('data', (d) => (stderr += d))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no JSON printed:\n${stdout}\n${stderr}`)), 240_000)
    child.stdout!.on('data', () => {
      if (!stdout.includes('\n')) return
      clearTimeout(timer)
      resolve({ child, stdout: () => stdout, started: JSON.parse(stdout.split('\n')[0]!) })
    })
    child.on('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`exited ${code}:\n${stdout}\n${stderr}`))
    })
  })
}

async function stop(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode
  child.removeAllListeners('exit')
  const done = new Promise<number | null>((r) => child.on('exit', (code) => r(code)))
  child.kill('SIGTERM')
  return done
}

async function login(url: string, email: string, password: string) {
  const r = await fetch(`${url}/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  })
  return { status: r.status, body: (await r.json()) as any }
}

t.test("a command's help, and a bad argument exits 2", async (t) => {
  const m = run(['migrate', '--help'], {})
  t.match(m.stdout, /up, down or status/)
  const bad = run(['migrate', 'sideways'], {})
  t.equal(bad.status, 2)
})

t.test('a bad variable stops start with its name', async (t) => {
  const r = run(['start'], { PORT: 'eighty', TRELLIS_DATA_DIR: mkdtempSync(join(tmpdir(), 'trellis-cli-')) })
  t.equal(r.status, 2)
  t.match(r.stderr, /KRN_ERR_CONFIG_INVALID: PORT: must be a whole number/)
})

/** An OTLP/HTTP collector: the bodies of the trace exports it received. */
async function collector(t: Test): Promise<{ endpoint: string; bodies: any[] }> {
  const bodies: any[] = []
  const server = createServer((req, res) => {
    let data = ''
    req.on('data', (d) => (data += d))
    req.on('end', () => {
      if (req.url === '/v1/traces') bodies.push(JSON.parse(data))
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => server.close())
  return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, bodies }
}

t.test('a new embedded data directory starts from the migrated template in the cache', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'trellis-cli-'))
  const option = await embeddedTemplateOption({ dataDir })
  t.equal(option.embeddedTemplate, embeddedTemplatePath(defaultCacheDir()), "the template of this kernel's schema")
  t.ok(existsSync(option.embeddedTemplate!), 'made, or made before by another start')
  t.same(
    await embeddedTemplateOption({ dataDir, databaseUrl: 'postgres://db.example.test/x' }),
    {},
    'not on PostgreSQL',
  )
  mkdirSync(join(dataDir, 'pgdata'))
  writeFileSync(join(dataDir, 'pgdata', 'PG_VERSION'), '17\n')
  t.same(await embeddedTemplateOption({ dataDir }), {}, 'not for a directory that holds a database')
  const unusable = join(dataDir, 'a-file')
  writeFileSync(unusable, '')
  t.same(
    await embeddedTemplateOption(
      { dataDir: mkdtempSync(join(tmpdir(), 'trellis-cli-')) },
      { TRELLIS_CACHE_DIR: unusable },
    ),
    {},
    'a cache that cannot be used: the kernel migrates instead',
  )
})

t.test('first start on the embedded default creates a platform admin and prints how to sign in', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'trellis-cli-'))
  const env = { TRELLIS_DATA_DIR: dataDir }
  // The first start also exports its traces (the kernel's telemetry is set up by the CLI).
  const otlp = await collector(t)
  const first = await start([], {
    ...env,
    OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpoint,
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '200',
  })
  t.match(first.out(), /embedded PostgreSQL \(PGlite\)/)
  const m = /email:\s+(\S+)\n\s+password:\s+(\S+)/.exec(first.out())
  t.ok(m, 'credentials printed')
  const ok = await login(first.url, m![1]!, m![2]!)
  t.equal(ok.status, 200)
  t.equal(ok.body.org.kind, 'platform')
  const me = await fetch(`${first.url}/v1/me`, { headers: { authorization: `Bearer ${ok.body.accessToken}` } })
  t.equal(me.status, 200)
  const second = start([], env)
  await t.rejects(second, /in use by process/, 'a second process may not open the same embedded database')
  t.equal(await stop(first.child), 0)

  t.test('with OTEL_EXPORTER_OTLP_ENDPOINT, HTTP and SQL spans were exported with the tenant id', async (t) => {
    const spans = otlp.bodies
      .flatMap((b) => b.resourceSpans ?? [])
      .flatMap((rs: any) => rs.scopeSpans ?? [])
      .flatMap((ss: any) => (ss.spans ?? []).map((sp: any) => ({ ...sp, scope: ss.scope?.name })))
    const attr = (sp: any, key: string) => sp.attributes?.find((a: any) => a.key === key)?.value?.stringValue
    t.ok(
      spans.some((sp) => /fastify|http/.test(sp.scope) && attr(sp, 'tenant.id') === ok.body.org.id),
      'a request span carries tenant.id',
    )
    t.ok(
      spans.some((sp) => /pg/.test(sp.scope)),
      'SQL spans are exported',
    )
  })

  t.test('data survives a restart, and credentials are not printed again', async (t) => {
    // --json: one line on stdout saying what started; the log lines (at info here) go to stderr.
    const again = await startJson(env)
    t.match(again.started, {
      url: /^http:\/\/127\.0\.0\.1:\d+$/,
      role: 'all',
      database: { kind: 'embedded', dataDir },
      admin: null,
      demo: null,
    })
    t.equal(again.started.docs, `${again.started.url}/docs`)
    t.equal((await login(again.started.url, m![1]!, m![2]!)).status, 200)
    t.equal(await stop(again.child), 0)
    t.equal(again.stdout().trim().split('\n').length, 1, 'stdout holds only that line')
    // The commands that open the database and end run in this process (the same program,
    // without a process's seconds of module loading); their exit codes are the process's.
    const status = await trellisInProcess(['migrate', 'status'], env)
    t.equal(status.status, 0, status.stderr)
    t.match(status.stdout, /applied\s+Migration20261127000001Kernel/)
    const refused = await trellisInProcess(['migrate', 'down'], env)
    t.equal(refused.status, 2, 'without a terminal, down needs --yes')
    t.match(refused.stderr, /will revert 1 migration[\s\S]*--yes/)
    // --json: what each command did, as JSON on stdout.
    const down = await trellisInProcess(['migrate', 'down', '--yes', '--json'], env)
    t.equal(down.status, 0, down.stderr)
    const [reverted] = JSON.parse(down.stdout).reverted as string[]
    t.match(reverted, /^Migration\d+/, 'the latest migration was reverted')
    const pending = await trellisInProcess(['migrate', 'status', '--json'], env)
    t.equal(pending.status, 0, pending.stderr)
    const before = JSON.parse(pending.stdout) as { applied: string[]; pending: string[] }
    t.same(before.pending, [reverted])
    t.ok(before.applied.includes('Migration20261127000001Kernel'))
    const up = await trellisInProcess(['migrate', 'up', '--json'], env)
    t.equal(up.status, 0, up.stderr)
    t.same(JSON.parse(up.stdout), { applied: [reverted] })
    const admin = await trellisInProcess(['admin', 'create', '--email', 'ops@example.test', '--json'], env)
    t.equal(admin.status, 0, admin.stderr)
    const created = JSON.parse(admin.stdout)
    t.equal(created.email, 'ops@example.test')
    t.type(created.password, 'string', 'the generated password is in the JSON')
    const rotated = await trellisInProcess(['keys', 'rotate', '--json'], env)
    t.equal(rotated.status, 0, rotated.stderr)
    t.type(JSON.parse(rotated.stdout).kid, 'string')
    const signed = await trellisInProcess(['audit', 'checkpoint', '--json'], env)
    t.equal(signed.status, 0, signed.stderr)
    const checkpoints = JSON.parse(signed.stdout) as Array<{ tenantId: string; seq: string; kid: string; jws: string }>
    const platform = checkpoints.find((c) => c.tenantId === '00000000-0000-0000-0000-000000000000')
    t.ok(platform?.jws, "the platform chain's head is signed")
    t.equal(platform?.kid, JSON.parse(rotated.stdout).kid, 'with the key now signing')
    const verify = await trellisInProcess(['audit', 'verify', '--json'], env)
    t.equal(verify.status, 0, verify.stderr)
    const report = (JSON.parse(verify.stdout) as any[]).find((r) => r.tenantId === platform!.tenantId)
    t.match(report, { ok: true, entries: Number }, 'the platform chain is whole')
    t.ok(Number(report.head.seq) >= Number(platform!.seq), 'up to and past the signed head')
  })
})
