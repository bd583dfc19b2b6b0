// The kernel with the ERP plugins (catalog, pricing, inventory, orders) installed for a tenant,
// a Northwind-sized catalog (77 products, list prices, ample stock) and one customer; and, for
// the baseline, the same SQL natively: orders are placed through the plugins once per product
// pair with every statement of their tenant transaction recorded (the host-call transcript as
// PostgreSQL sees it), and POST /v1/bench/orders replays one such transcript — each statement
// with its recorded text and parameters, in one tenant transaction — for a new order number.
import { ChildProcess } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { orgTx } from '../../core/src/kernel-context.js'
import { principalOf } from '../../core/src/http/guards.js'
import { announce, benchKernel, benchTenant, installBuilt } from './_tenant.js'
import { record, replay, type Statement } from './_sql-replay.js'

const PRODUCTS = 77
/** Product pairs an order may hold (each order: two lines of a pair); one transcript each. */
const PAIRS = Number(process.env.BENCH_ORDER_PAIRS ?? 24)

const kernel = await benchKernel({ plugins: { sandboxWorkers: Number(process.env.BENCH_SANDBOX_WORKERS ?? 2) } })
const k = kernel.ctx
/** Native orders being replayed now (also those whose client gave up waiting). */
let nativeBusy = 0
kernel.app.post('/v1/bench/orders', async (request, reply) => {
  const p = principalOf(request)
  const body = request.body as { number: string; pair: number }
  nativeBusy++
  const events = await orgTx(k, p.orgId, (tx) => replay(tx, transcripts[body.pair]!, [body.number]))
    .catch((err) => {
      console.error('order replay failed:', err)
      throw err
    })
    .finally(() => nativeBusy--)
  k.events.nudge(events)
  reply.code(201)
  return { number: body.number }
})
// What either side still has in hand: a round that ends leaves the orders it started running
// (the load generator stops waiting, the kernel does not), and the next round must not meet them;
// nor the work the orders left behind them — their events not yet processed, their audit rows
// not yet sealed — which the next round would otherwise pay for, whichever side it measures.
kernel.app.get('/v1/bench/busy', async (request) => {
  const orgId = principalOf(request).orgId
  const [left] = await orgTx(k, orgId, (tx) =>
    tx.sql<{ events: number; audit: number }>(
      `select (select count(*)::int from events where processed_at is null) as events,
              (select count(*)::int from audit_log where hash is null) as audit`,
    ),
  )
  return { native: nativeBusy, plugins: k.plugins.runningInvocations(orgId), backlog: left!.events + left!.audit }
})

// What the invocations of the measured orders did, since the last read: outcomes per entry and
// error code, and the host calls of the order routes (a write retried after a concurrent order's
// newer version costs two more) — read by the bench after each workload.
// Also every statement the kernel sent meanwhile, by the start of its text (both sides).
const outcomes = new Map<string, number>()
const sent = new Map<string, number>()
let orderRoutes = 0
let orderHostCalls = 0
kernel.app.get('/v1/bench/invocations', async () => {
  const body = {
    outcomes: Object.fromEntries(outcomes),
    statements: Object.fromEntries(sent),
    orderRoutes,
    orderHostCalls,
  }
  outcomes.clear()
  sent.clear()
  orderRoutes = 0
  orderHostCalls = 0
  return body
})
const pgClient = createRequire(import.meta.url)('pg').Client as { prototype: { query: (...a: unknown[]) => unknown } }
const sendQuery = pgClient.prototype.query
pgClient.prototype.query = function (this: object, config: unknown, ...rest: unknown[]) {
  const text = typeof config === 'string' ? config : ((config as { text?: string } | null)?.text ?? '')
  const key = text.replace(/\s+/g, ' ').slice(0, 70)
  sent.set(key, (sent.get(key) ?? 0) + 1)
  return Reflect.apply(sendQuery, this, [config, ...rest])
}

const { url, token: T, call } = await benchTenant(kernel)
for (const name of ['catalog', 'pricing', 'inventory', 'orders'])
  await installBuilt(kernel, fileURLToPath(new URL(`../../plugins/${name}`, import.meta.url)), call, T)
const skus = Array.from({ length: PRODUCTS }, (_, i) => `P${String(i + 1).padStart(2, '0')}`)
await call('POST', '/v1/x/catalog/import/categories', { csv: 'code,name\nBEV,Beverages\n' }, T)
await call('POST', '/v1/x/catalog/import/suppliers', { csv: 'code,name\nEXO,Exotic Liquids\n' }, T)
await call(
  'POST',
  '/v1/x/catalog/import/products',
  { csv: `sku,name,category,supplier\n${skus.map((s) => `${s},Product ${s},BEV,EXO`).join('\n')}\n` },
  T,
)
await call(
  'POST',
  '/v1/x/pricing/prices/import',
  { rules: skus.map((sku, i) => ({ kind: 'list', sku, price: `${(i % 40) + 2}.50` })) },
  T,
)
await call('POST', '/v1/x/inventory/stock/import', { rows: skus.map((sku) => ({ sku, onHand: 100_000_000 })) }, T)
await call('POST', '/v1/x/orders/customers/import', { rows: [{ code: 'ALFKI', name: 'Alfreds Futterkiste' }] }, T)

/** The pairs orders use: the hot pair (P01, P02) first, then pairs spread over the catalog. */
const pairs: Array<[string, string]> = [['P01', 'P02']]
for (let i = 1; pairs.length < PAIRS; i++) pairs.push([skus[(i * 2) % PRODUCTS]!, skus[(i * 2 + 1) % PRODUCTS]!])

/** The body of an order of `pair`, the same for both sides but for its number. */
const orderBody = (number: string, pair: readonly [string, string]) => ({
  number,
  customer: 'ALFKI',
  lines: [
    { sku: pair[0], quantity: 3 },
    { sku: pair[1], quantity: 2, discount: 0.05 },
  ],
})

// What the recorded orders cost in crossings between processes: sandboxed invocations (the
// route and the actions it calls), host calls, and the messages that carried the host calls from
// the sandbox workers (calls made together travel in one), read off the workers' IPC channels.
const crossings = { invocations: 0, hostCalls: 0, hostCallMessages: 0 }
let counting = false
k.plugins.onInvocation((rec) => {
  if (!counting) return
  crossings.invocations++
  crossings.hostCalls += rec.hostCalls
})
k.plugins.onInvocation((rec) => {
  if (counting) return
  const key = `${rec.plugin.replace('@trellis/', '')} ${rec.entryName} ${rec.errorCode ?? 'ok'}`
  outcomes.set(key, (outcomes.get(key) ?? 0) + 1)
  if (rec.entryKind === 'route') {
    orderRoutes++
    orderHostCalls += rec.hostCalls
  }
})
const emit = ChildProcess.prototype.emit
ChildProcess.prototype.emit = function (this: ChildProcess, event: string | symbol, ...args: unknown[]) {
  const t = (args[0] as { t?: unknown } | undefined)?.t
  if (counting && event === 'message' && (t === 'hc' || t === 'hcb')) crossings.hostCallMessages++
  return Reflect.apply(emit, this, [event, ...args]) as boolean
} as typeof emit

// The order's tenant transaction, recorded once per pair; what is kept is what the plugins
// caused (the kernel's own reads, made when a cache of a few seconds runs out, are not the order's).
const transcripts: Statement[][] = []
for (const [i, pair] of pairs.entries()) {
  const number = `RECORDED-${i}-ORDER`
  counting = true
  transcripts.push(
    await record(
      () => call('POST', '/v1/x/orders/orders', orderBody(number, pair), T),
      [number],
      (s) => /plugin_records|insert into events|insert into audit_log/.test(s.text),
    ),
  )
  counting = false
}
const perOrder = (n: number) => Math.round((n / pairs.length) * 10) / 10

announce(kernel, {
  url,
  token: T,
  pid: process.pid,
  pairs,
  statements: transcripts.map((t) => t.length),
  perOrder: {
    invocations: perOrder(crossings.invocations),
    hostCalls: perOrder(crossings.hostCalls),
    hostCallMessages: perOrder(crossings.hostCallMessages),
  },
  transcript: transcripts[0]!.map((s) => s.text.replace(/\s+/g, ' ').slice(0, 90)),
})
