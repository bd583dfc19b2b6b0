/**
 * What `trellis start --demo` makes (accounts, the ERP plugins through the marketplace, the
 * Northwind data), and the README's demo tour, run as written (its shell block between the `tour:start` and
 * `tour:end` markers) against `trellis start --demo`, twice on the same data directory: a
 * reader pasting it gets the price approval, its task, the order through to invoiced and a
 * total — and a second start keeps every printed credential good and the tour repeatable.
 */
import t, { type Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const CLI = join(ROOT, 'platform', 'bin', 'trellis.js')
const baseEnv = {
  PATH: process.env.PATH,
  HOME: process.env.HOME,
  LOG_LEVEL: 'warn',
  PORT: '0',
  TRELLIS_DEMO_ORDERS: '5',
  TRELLIS_ADMIN_EMAIL: 'ops@example.test',
  TRELLIS_ADMIN_PASSWORD: 'operator-password-1',
}

/** The tour's shell block, as the README shows it. */
function tourBlock(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const m = /<!-- tour:start -->\s*```sh\n([\s\S]*?)```\s*<!-- tour:end -->/.exec(readme)
  if (!m) throw new Error('README.md has no tour block between <!-- tour:start --> and <!-- tour:end -->')
  return m[1]!
}

/** `trellis start --demo`, resolved once it printed how to sign in. */
function startDemo(dataDir: string): Promise<{ child: ChildProcess; out: string; url: string }> {
  const child = spawn(process.execPath, [CLI, 'start', '--demo'], { env: { ...baseEnv, TRELLIS_DATA_DIR: dataDir } })
  let out = ''
  child.stdout!.on('data', (d) => (out += d))
  child.stderr!.on('data', (d) => (out += d))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the demo did not start:\n${out}`)), 480_000)
    child.stdout!.on('data', () => {
      const m = /running at (http:\/\/\S+)/.exec(out)
      if (m && out.includes('then send the accessToken')) {
        clearTimeout(timer)
        child.removeAllListeners('exit')
        resolve({ child, out, url: m[1]! })
      }
    })
    child.on('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`exited ${code}:\n${out}`))
    })
  })
}

async function stop(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode
  const done = new Promise<number | null>((r) => child.on('exit', (code) => r(code)))
  child.kill('SIGTERM')
  return done
}

/** Every account the start printed: role, email, password. */
const accountsOf = (out: string) =>
  [
    ...out.matchAll(
      /^\s+(partner_admin|partner_developer|tenant_admin|tenant_member|pricing_manager|sales_director|purchasing_manager|accounts_payable|returns_manager)\s+(\S+@\S+)\s+(\S+)\s+\(/gm,
    ),
  ].map((m) => ({ role: m[1]!, email: m[2]!, password: m[3]! }))

async function login(url: string, email: string, password: string): Promise<{ status: number; body: any }> {
  const r = await fetch(`${url}/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  })
  return { status: r.status, body: await r.json() }
}

const ERP = ['catalog', 'pricing', 'inventory', 'orders', 'partner-onboarding', 'procurement', 'returns', 'copilot']

/** What a first `start --demo` made: accounts by role, the plugins through the marketplace, Northwind's data. */
async function checkDemo(t: Test, demo: { out: string; url: string }, accounts: ReturnType<typeof accountsOf>) {
  t.match(demo.out, /email:\s+ops@example\.test/)
  t.match(demo.out, /the TRELLIS_ADMIN_PASSWORD you set/)
  t.equal((await login(demo.url, 'ops@example.test', 'operator-password-1')).status, 200)
  for (const { role, email, password } of accounts) {
    const r = await login(demo.url, email, password)
    t.equal(r.status, 200, `${role} signs in with the printed password`)
    if (/^(partner|tenant)_/.test(role)) t.equal(r.body.org.role, role)
  }
  const admin = await login(demo.url, accounts.find((a) => a.role === 'tenant_admin')!.email, accounts[0]!.password)
  const get = async (path: string) =>
    (await (
      await fetch(`${demo.url}${path}`, { headers: { authorization: `Bearer ${admin.body.accessToken}` } })
    ).json()) as any
  t.equal(
    (await get('/v1/branding')).branding.displayName,
    'Northwind Cloud ERP',
    "the tenant inherits its partner's branding",
  )
  for (const p of ERP)
    t.match(
      demo.out,
      new RegExp(`published @trellis/${p}@[^\\n]*\\n\\s+approved @trellis/${p}@[^\\n]*\\n\\s+installed @trellis/${p}@`),
      `${p}: published, approved, installed`,
    )
  t.match(demo.out, /Northwind loaded: 77 products, 91 customers, 5 orders/)
  t.same(
    ((await get('/v1/installations')).items as any[]).map((i) => i.plugin).sort(),
    ERP.map((p) => `@trellis/${p}`).sort(),
  )
  t.equal((await get('/v1/x/orders/orders')).items.length, 5, 'the Northwind orders are there')
  t.equal((await get('/v1/x/procurement/suppliers')).items.length, 29, "Northwind's 29 suppliers are in procurement")
  const exotic = await get('/v1/x/procurement/suppliers/1')
  t.match(exotic, { name: 'Exotic Liquids' })
  // products.csv: Exotic Liquids (supplier 1) supplies Chang and Aniseed Syrup; Chai is supplier 8's.
  t.same(exotic.prices.map((p: any) => p.sku).sort(), ['NW-2', 'NW-3'], 'with the products each supplies')
}

/** Runs the tour as a reader would, with $API and $PW set, failing on the first failing command. */
function runTour(api: string, pw: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn('bash', ['--norc', '--noprofile', '-e', '-u', '-o', 'pipefail', '-c', tourBlock()], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, API: api, PW: pw },
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  const timer = setTimeout(() => child.kill('SIGKILL'), 240_000)
  return new Promise((resolve) =>
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    }),
  )
}

function checkTour(t: Test, r: { code: number | null; stdout: string; stderr: string }) {
  t.equal(r.code, 0, `the tour ran to its end\n${r.stdout}\n${r.stderr}`)
  t.notMatch(r.stderr, /timed out/)
  const lines = r.stdout.trim().split('\n')
  t.same(
    lines.slice(0, 2),
    ['"price_approval"', '"priceException"'],
    'the order answers its exception and the workflow it starts',
  )
  t.equal(lines[2], '"completed"', 'the pricing manager approves the task')
  const steps = lines.slice(3, 6).map((l) => JSON.parse(l) as [string, string])
  t.same(
    steps.map((s) => s[0]),
    ['confirmed', 'shipped', 'invoiced'],
  )
  for (const s of steps) t.match(s[1], /^\d+\.\d{2}$/, 'each step shows the order total')
  t.match(lines[6], /^"\d+\.\d{2}"$/, 'the sales report prints a total')
  t.equal(lines[7], '["suggestion","257.60"]', 'low stock drafts a purchase order; the buyer orders 20 × 12.88')
  t.same(lines.slice(8, 10), ['"approved"', '"sent"'], 'under the threshold: approved by the rule, then sent')
  t.equal(lines[10], '["partly_received",12]', '12 of 20 arrive')
  t.equal(lines[11], '27', 'stock up by exactly the 12 received')
  t.equal(lines[12], '["credited","restock"]', 'the return is approved by the rule, received and restocked')
  t.equal(lines[13], '"29.40"', 'credited at the order price and discount: 2 × 21.00 × 0.70')
  const [gross, returned, net] = JSON.parse(lines[14]!) as string[]
  t.ok(
    Number(returned) >= 29.4 && Math.abs(Number(gross) - Number(returned) - Number(net)) < 0.015,
    'gross less returns is net',
  )
  t.equal(lines.length, 15)
}

t.test('the README tour runs as written against the demo, and again after a second start', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'trellis-tour-'))
  const first = await startDemo(dataDir)
  t.teardown(() => stop(first.child))
  const accounts = accountsOf(first.out)
  t.same(accounts.map((a) => a.role).sort(), [
    'accounts_payable',
    'partner_admin',
    'partner_developer',
    'pricing_manager',
    'purchasing_manager',
    'returns_manager',
    'sales_director',
    'tenant_admin',
    'tenant_member',
  ])
  const pw = accounts.find((a) => a.role === 'tenant_admin')!.password
  t.ok(
    accounts.every((a) => a.password === pw),
    'one demo password for every account',
  )
  await checkDemo(t, first, accounts)
  const admin = accounts.find((a) => a.role === 'tenant_admin')!
  const cheese = async (url: string) => {
    const token = (await login(url, admin.email, pw)).body.accessToken
    const r = await fetch(`${url}/v1/x/inventory/stock/NW-11`, { headers: { authorization: `Bearer ${token}` } })
    return ((await r.json()) as { onHand: number }).onHand
  }
  const before = await cheese(first.url)
  checkTour(t, await runTour(first.url, pw))
  // Delivered 10, sold 10, 2 returned to stock: a run never uses up what the next one needs.
  t.equal(
    await cheese(first.url),
    before + 2,
    'the tour leaves the stock it sells from as it found it, plus the return',
  )
  t.equal(await stop(first.child), 0)

  const second = await startDemo(dataDir)
  t.teardown(() => stop(second.child))
  t.match(
    second.out,
    /the Northwind data is loaded already \(6 orders\); TRELLIS_DEMO_ORDERS=5 applies only to a first start/,
    'the ignored TRELLIS_DEMO_ORDERS is said',
  )
  const again = accountsOf(second.out)
  t.equal(again.length, 9)
  for (const a of again) {
    t.equal(a.password, pw, `${a.role}: the same password as the first start`)
    t.equal((await login(second.url, a.email, a.password)).status, 200, `${a.role} signs in with the printed password`)
  }
  checkTour(t, await runTour(second.url, pw))
})
