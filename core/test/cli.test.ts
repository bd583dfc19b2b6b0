import t from 'tap'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:http'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { AddressInfo } from 'node:net'

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

t.test('help lists the commands', async (t) => {
  const r = run(['--help'], {})
  t.equal(r.status, 0)
  for (const c of ['start', 'migrate', 'admin', 'audit', 'keys']) t.match(r.stdout, new RegExp(`\\b${c}\\b`))
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

t.test('first start on the embedded default creates a platform admin and prints how to sign in', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'trellis-cli-'))
  const env = { TRELLIS_DATA_DIR: dataDir }
  const first = await start([], env)
  t.match(first.out(), /embedded PostgreSQL \(PGlite\)/)
  const m = /email:\s+(\S+)\n\s+password:\s+(\S+)/.exec(first.out())
  t.ok(m, 'credentials printed')
  const ok = await login(first.url, m![1]!, m![2]!)
  t.equal(ok.status, 200)
  t.equal(ok.body.org.kind, 'platform')
  const second = start([], env)
  await t.rejects(second, /in use by process/, 'a second process may not open the same embedded database')
  t.equal(await stop(first.child), 0)

  t.test('data survives a restart, and credentials are not printed again', async (t) => {
    const again = await start([], env)
    t.notMatch(again.out(), /password:/)
    t.equal((await login(again.url, m![1]!, m![2]!)).status, 200)
    t.equal(await stop(again.child), 0)
    const status = run(['migrate', 'status'], env)
    t.equal(status.status, 0, status.stderr)
    t.match(status.stdout, /applied\s+Migration20261127000001Kernel/)
    const verify = run(['audit', 'verify'], env)
    t.equal(verify.status, 0, verify.stderr)
    t.match(verify.stdout, /ok\s+platform\s+\d+ entries/)
    const refused = run(['migrate', 'down'], env)
    t.equal(refused.status, 2, 'without a terminal, down needs --yes')
    t.match(refused.stderr, /will revert 1 migration[\s\S]*--yes/)
    const down = run(['migrate', 'down', '--yes'], env)
    t.equal(down.status, 0, down.stderr)
    const reverted = /reverted (Migration\w+)/.exec(down.stdout)?.[1]
    t.ok(reverted, 'the latest migration was reverted')
    t.match(run(['migrate', 'status'], env).stdout, new RegExp(`pending\\s+${reverted}`))
    t.match(run(['migrate', 'up'], env).stdout, new RegExp(`applied ${reverted}`))
  })
})

t.test(
  'start --demo creates a partner, its tenant and a user per role, and installs the ERP plugins through the marketplace',
  async (t) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'trellis-cli-'))
    const s = await start(['--demo'], {
      TRELLIS_DATA_DIR: dataDir,
      TRELLIS_ADMIN_EMAIL: 'ops@example.test',
      TRELLIS_ADMIN_PASSWORD: 'operator-password-1',
      TRELLIS_DEMO_ORDERS: '5',
    })
    t.teardown(() => stop(s.child))
    t.match(s.out(), /email:\s+ops@example\.test/)
    t.match(s.out(), /the TRELLIS_ADMIN_PASSWORD you set/)
    t.equal((await login(s.url, 'ops@example.test', 'operator-password-1')).status, 200)
    const accounts = [
      ...s.out().matchAll(/^\s+(partner_admin|partner_developer|tenant_admin|tenant_member)\s+(\S+)\s+(\S+)/gm),
    ]
    t.same(
      accounts.map((a) => a[1]),
      ['partner_admin', 'partner_developer', 'tenant_admin', 'tenant_member'],
    )
    for (const [, role, email, password] of accounts) {
      const r = await login(s.url, email!, password!)
      t.equal(r.status, 200, role)
      t.equal(r.body.org.role, role)
    }
    const admin = await login(s.url, accounts[2]![2]!, accounts[2]![3]!)
    const branding = await fetch(`${s.url}/v1/branding`, {
      headers: { authorization: `Bearer ${admin.body.accessToken}` },
    })
    t.equal(
      ((await branding.json()) as any).branding.displayName,
      'Northwind Cloud ERP',
      "the tenant inherits its partner's branding",
    )
    for (const p of [
      'catalog',
      'pricing',
      'inventory',
      'orders',
      'partner-onboarding',
      'procurement',
      'returns',
      'copilot',
    ])
      t.match(
        s.out(),
        new RegExp(
          `published @trellis/${p}@[^\\n]*\\n\\s+approved @trellis/${p}@[^\\n]*\\n\\s+installed @trellis/${p}@`,
        ),
        `${p}: published, approved, installed`,
      )
    t.match(s.out(), /Northwind loaded: 77 products, 91 customers, 5 orders/)
    const installs = await fetch(`${s.url}/v1/installations`, {
      headers: { authorization: `Bearer ${admin.body.accessToken}` },
    })
    t.same((((await installs.json()) as any).items as any[]).map((i) => i.plugin).sort(), [
      '@trellis/catalog',
      '@trellis/copilot',
      '@trellis/inventory',
      '@trellis/orders',
      '@trellis/partner-onboarding',
      '@trellis/pricing',
      '@trellis/procurement',
      '@trellis/returns',
    ])
    const orders = await fetch(`${s.url}/v1/x/orders/orders`, {
      headers: { authorization: `Bearer ${admin.body.accessToken}` },
    })
    t.equal((((await orders.json()) as any).items as any[]).length, 5, 'the Northwind orders are there')
    const headers = { authorization: `Bearer ${admin.body.accessToken}` }
    const suppliers = (await (await fetch(`${s.url}/v1/x/procurement/suppliers`, { headers })).json()) as any
    t.equal(suppliers.items.length, 29, "Northwind's 29 suppliers are in procurement")
    const exotic = (await (await fetch(`${s.url}/v1/x/procurement/suppliers/1`, { headers })).json()) as any
    t.match(exotic, { name: 'Exotic Liquids' })
    // products.csv: Exotic Liquids (supplier 1) supplies Chang and Aniseed Syrup; Chai is supplier 8's.
    t.same(exotic.prices.map((p: any) => p.sku).sort(), ['NW-2', 'NW-3'], 'with the products each supplies')
  },
)

t.test('with OTEL_EXPORTER_OTLP_ENDPOINT, HTTP and SQL spans are exported with the tenant id', async (t) => {
  const bodies: any[] = []
  const collector = createServer((req, res) => {
    let data = ''
    req.on('data', (d) => (data += d))
    req.on('end', () => {
      if (req.url === '/v1/traces') bodies.push(JSON.parse(data))
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r))
  t.teardown(() => collector.close())
  const endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`
  const s = await start([], {
    TRELLIS_DATA_DIR: mkdtempSync(join(tmpdir(), 'trellis-cli-')),
    TRELLIS_ADMIN_EMAIL: 'ops@example.test',
    TRELLIS_ADMIN_PASSWORD: 'operator-password-1',
    OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '200',
  })
  const { body } = await login(s.url, 'ops@example.test', 'operator-password-1')
  const me = await fetch(`${s.url}/v1/me`, { headers: { authorization: `Bearer ${body.accessToken}` } })
  t.equal(me.status, 200)
  t.equal(await stop(s.child), 0)
  const spans = bodies
    .flatMap((b) => b.resourceSpans ?? [])
    .flatMap((rs: any) => rs.scopeSpans ?? [])
    .flatMap((ss: any) => (ss.spans ?? []).map((sp: any) => ({ ...sp, scope: ss.scope?.name })))
  const attr = (sp: any, key: string) => sp.attributes?.find((a: any) => a.key === key)?.value?.stringValue
  t.ok(
    spans.some((sp) => /fastify|http/.test(sp.scope) && attr(sp, 'tenant.id') === body.org.id),
    'a request span carries tenant.id',
  )
  t.ok(
    spans.some((sp) => /pg/.test(sp.scope)),
    'SQL spans are exported',
  )
})
