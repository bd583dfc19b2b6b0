import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { Kernel } from '../kernel.js'
import { orgTx } from '../kernel-context.js'
import { generatePassword } from '../bootstrap.js'
import { hashPassword } from '../identity/passwords.js'
import { DEMO_REQUEST_ID_PREFIX } from './terminal-log.js'

/** Where the Northwind sample data lives in a checkout (Ms-PL, vendored with its licence). */
export const NORTHWIND_DIR =
  process.env.TRELLIS_NORTHWIND_DIR ?? fileURLToPath(new URL('../../../plugins/northwind/data', import.meta.url))
const IMPORTER = new URL('../../../plugins/northwind/import.ts', import.meta.url)

/**
 * The demo password: TRELLIS_DEMO_PASSWORD when set, else the one an earlier `--demo` start
 * kept in the data directory (readable by its owner only), else a new one, kept there — so a
 * second start prints the same password and a tour's `$PW` stays good.
 */
export function demoPassword(dataDir: string): string {
  const file = join(dataDir, 'demo-password')
  const chosen = process.env.TRELLIS_DEMO_PASSWORD
  if (!chosen && existsSync(file)) {
    const kept = readFileSync(file, 'utf8').trim()
    if (kept) return kept
  }
  const password = chosen ?? generatePassword()
  mkdirSync(dataDir, { recursive: true })
  writeFileSync(file, `${password}\n`, { mode: 0o600 })
  return password
}

/**
 * The demo's ERP: the extensions put their part in (the marketplace publishes, approves and
 * installs the first-party plugins for the demo tenant), then the Northwind data is loaded
 * through the plugins' own routes, as the demo tenant's admin — once.
 */
export async function seedDemoErp(
  kernel: Kernel,
  demo: { tenantId: string; partnerId: string; adminEmail: string; password: string },
  log: (line: string) => void,
  opts: { progress?: (done: number, total: number) => void } = {},
): Promise<void> {
  for (const ext of kernel.extensions)
    await ext.seedDemo?.(kernel.ctx, { tenantId: demo.tenantId, partnerId: demo.partnerId, log })
  const installed = (await kernel.ctx.plugins.installed(demo.tenantId)).byPlugin
  if (!installed.has('@trellis/orders')) return
  // The demo's own requests carry request ids a terminal keeps out of the log below warnings.
  let sent = 0
  const inject = async (method: string, path: string, body?: unknown, token?: string) => {
    const res = await kernel.app.inject({
      method: method as 'GET',
      url: path,
      headers: {
        'x-request-id': `${DEMO_REQUEST_ID_PREFIX}${++sent}`,
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
    })
    return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : null }
  }
  const login = await inject('POST', '/v1/auth/login', { email: demo.adminEmail, password: demo.password })
  const token = login.body.accessToken as string
  // The people the pricing-exception workflow asks: a pricing manager (and, past the SLA, a sales director).
  for (const role of ['pricing_manager', 'sales_director']) {
    await inject(
      'POST',
      '/v1/roles',
      {
        name: role,
        description: `Decides pricing exceptions (${role.replace('_', ' ')})`,
        permissions: ['orders.approve', 'users.read'],
      },
      token,
    )
    const email = `${role.replace('_', '.')}@demo.trellis.local`
    // Invited and accepted at once: the demo's people are new accounts with the demo password.
    const invited = await inject('POST', '/v1/invitations', { email, role }, token)
    if (invited.status === 201)
      await inject('POST', '/v1/invitations/accept', {
        token: invited.body.acceptToken,
        name: role.replace('_', ' '),
        password: demo.password,
      })
  }
  // Every start prints one password for every demo account: a later start sets it again for these two as well.
  const hash = await hashPassword(demo.password)
  await orgTx(kernel.ctx, demo.tenantId, (tx) =>
    tx.sql(
      `update users set password_hash = ? where lower(email) in ('pricing.manager@demo.trellis.local', 'sales.director@demo.trellis.local')`,
      [hash],
    ),
  )
  if (!existsSync(fileURLToPath(IMPORTER)) || !existsSync(NORTHWIND_DIR)) return
  const [loaded] = await kernel.ctx.db.inOrg(demo.tenantId, (tx) =>
    tx.sql<{ n: number }>(
      `select count(*)::int as n from plugin_records where plugin = '@trellis/orders' and collection = 'orders'`,
    ),
  )
  if (loaded!.n > 0) {
    const asked = process.env.TRELLIS_DEMO_ORDERS
    log(
      `the Northwind data is loaded already (${loaded!.n} orders)${asked ? `; TRELLIS_DEMO_ORDERS=${asked} applies only to a first start (a new TRELLIS_DATA_DIR or database)` : ''}`,
    )
    return
  }
  const { importNorthwind } = (await import(pathToFileURL(fileURLToPath(IMPORTER)).href)) as {
    importNorthwind: (
      o: Record<string, unknown>,
    ) => Promise<{ orders: number; products: number; customers: number; ms: number }>
  }
  log('loading the Northwind data through the plugins (once; a few minutes)…')
  // TRELLIS_DEMO_ORDERS=N loads only the first N orders (a quicker demo; the CLI's own test).
  const limit = Number(process.env.TRELLIS_DEMO_ORDERS ?? '') || undefined
  const r = await importNorthwind({
    request: (method: string, path: string, body?: unknown) => inject(method, path, body, token),
    dataDir: NORTHWIND_DIR,
    log,
    ...(opts.progress ? { progress: opts.progress } : {}),
    ...(limit ? { orders: limit } : {}),
  })
  log(
    `Northwind loaded: ${r.products} products, ${r.customers} customers, ${r.orders} orders in ${Math.round(r.ms / 1000)} s`,
  )
}
