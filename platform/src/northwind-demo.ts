/**
 * The demo's ERP data: once the marketplace has installed the first-party plugins for the demo
 * tenant, the people the pricing-exception workflow asks are invited, and the Northwind data is
 * loaded through the plugins' own routes, as the demo tenant's admin — once.
 */
import { existsSync } from 'node:fs'
import {
  coreServices,
  defineExtension,
  type DemoContext,
  type DemoResult,
  type Extension,
  type ResolvedDeps,
} from '@trellis/core'
import { importNorthwind, importNorthwindSuppliers, NORTHWIND_DATA_DIR } from '@trellis/northwind'

const ROLES = ['pricing_manager', 'sales_director'] as const
/** The people the procurement and returns plugins ask, with what their tasks need (granted when those plugins are installed). */
const SUPPLY_ROLES = {
  purchasing_manager: {
    plugin: '@trellis/procurement',
    description: 'Approves purchase orders over the threshold',
    permissions: ['procurement.read', 'procurement.approve', 'procurement.invoices', 'users.read'],
  },
  accounts_payable: {
    plugin: '@trellis/procurement',
    description: 'Records supplier invoices and decides invoice exceptions',
    permissions: ['procurement.read', 'procurement.invoices', 'users.read'],
  },
  returns_manager: {
    plugin: '@trellis/returns',
    description: 'Approves returns outside the automatic-approval rules',
    permissions: ['returns.read', 'returns.approve', 'users.read'],
  },
} as const
const emailOf = (role: string) => `${role.replace('_', '.')}@demo.trellis.local`

const deps = { tx: coreServices.transactions, plugins: coreServices.plugins }

/** The Northwind part of `trellis start --demo`, as an extension (it runs after the marketplace's). */
export function northwindDemo(opts: { dataDir?: string } = {}): Extension {
  return defineExtension({
    name: 'northwind-demo',
    deps,
    register(services, points) {
      points.demo.add((demo) =>
        seedNorthwind(services, demo, opts.dataDir ?? process.env.TRELLIS_NORTHWIND_DIR ?? NORTHWIND_DATA_DIR),
      )
    },
  })
}

async function seedNorthwind(
  k: ResolvedDeps<typeof deps>,
  demo: DemoContext,
  dataDir: string,
): Promise<DemoResult | undefined> {
  if (!(await k.plugins.installedPlugins(demo.tenantId)).has('@trellis/orders')) return undefined
  const login = await demo.request('POST', '/v1/auth/login', { email: demo.adminEmail, password: demo.password })
  const token = login.body.accessToken as string
  // The people the pricing-exception workflow asks: a pricing manager (and, past the SLA, a sales director).
  const addPerson = async (role: string, description: string, permissions: readonly string[]) => {
    await demo.request('POST', '/v1/roles', { name: role, description, permissions }, token)
    // Invited and accepted at once: the demo's people are new accounts with the demo password.
    const invited = await demo.request('POST', '/v1/invitations', { email: emailOf(role), role }, token)
    if (invited.status === 201)
      await demo.request('POST', '/v1/invitations/accept', {
        token: invited.body.acceptToken,
        name: role.replace('_', ' '),
        password: demo.password,
      })
  }
  for (const role of ROLES)
    await addPerson(role, `Decides pricing exceptions (${role.replace('_', ' ')})`, ['orders.approve', 'users.read'])
  const installed = await k.plugins.installedPlugins(demo.tenantId)
  const supplyRoles = Object.entries(SUPPLY_ROLES).filter(([, r]) => installed.has(r.plugin))
  for (const [role, r] of supplyRoles) await addPerson(role, r.description, r.permissions)
  const result: DemoResult = {
    accounts: [...ROLES, ...supplyRoles.map(([role]) => role)].map((role) => ({
      role,
      email: emailOf(role),
      org: 'Northwind Traders',
    })),
    notes: [
      'The ERP plugins (catalog, pricing, inventory, orders) and partner onboarding are installed for Northwind Traders,',
      'with the Northwind data loaded; a tour: "ERP plugins and the demo" in README.md',
    ],
  }
  // The accounts listed here get the demo password again on every start (the kernel sets it).
  if (!existsSync(dataDir)) return result
  const [loaded] = await k.tx.read(demo.tenantId, (tx) =>
    tx.sql<{ n: number }>(
      `select count(*)::int as n from plugin_records where plugin = '@trellis/orders' and collection = 'orders'`,
    ),
  )
  if (loaded!.n > 0) {
    const asked = process.env.TRELLIS_DEMO_ORDERS
    demo.log(
      `the Northwind data is loaded already (${loaded!.n} orders)${asked ? `; TRELLIS_DEMO_ORDERS=${asked} applies only to a first start (a new TRELLIS_DATA_DIR or database)` : ''}`,
    )
    await seedSuppliers(k, demo, dataDir, token, installed)
    return result
  }
  demo.log('loading the Northwind data through the plugins (once; a few minutes)…')
  // TRELLIS_DEMO_ORDERS=N loads only the first N orders (a quicker demo; the CLI's own test).
  const limit = Number(process.env.TRELLIS_DEMO_ORDERS ?? '') || undefined
  const r = await importNorthwind({
    request: (method, path, body) => demo.request(method, path, body, token),
    dataDir,
    log: (line) => demo.log(line),
    ...(demo.progress ? { progress: demo.progress } : {}),
    ...(limit ? { orders: limit } : {}),
  })
  demo.log(
    `Northwind loaded: ${r.products} products, ${r.customers} customers, ${r.orders} orders in ${Math.round(r.ms / 1000)} s`,
  )
  await seedSuppliers(k, demo, dataDir, token, installed)
  return result
}

/** Northwind's suppliers and their products into the procurement plugin (when installed), once. */
async function seedSuppliers(
  k: ResolvedDeps<typeof deps>,
  demo: DemoContext,
  dataDir: string,
  token: string,
  installed: { has(plugin: string): boolean },
) {
  if (!installed.has('@trellis/procurement')) return
  const [loaded] = await k.tx.read(demo.tenantId, (tx) =>
    tx.sql<{ n: number }>(
      `select count(*)::int as n from plugin_records where plugin = '@trellis/procurement' and collection = 'suppliers'`,
    ),
  )
  if (loaded!.n > 0) return
  const s = await importNorthwindSuppliers({
    request: (method, path, body) => demo.request(method, path, body, token),
    dataDir,
  })
  demo.log(`procurement: ${s.suppliers} Northwind suppliers, ${s.prices} price-list entries`)
}
