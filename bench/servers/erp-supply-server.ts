// The kernel with the ERP plugins and the supply side (procurement, returns) installed for a
// tenant, and what the supply benchmarks use up:
// - sent purchase orders of 20 lines each, every line on a product of its own, ordered in
//   quantities no receipt will exhaust (each receipt takes 1 of every line);
// - invoiced orders of 2 lines, and return authorisations against them approved by the rule,
//   each received once (1 unit per line back: one restocked, one scrapped, a credit note).
// For the baselines, a few receipts and return receipts are made through the plugins with every
// statement of their tenant transaction recorded (_sql-replay.ts); POST /v1/bench/replay/:kind
// replays one of them natively in one tenant transaction, with fresh ids and numbers.
import { fileURLToPath } from 'node:url'
import { orgTx } from '../../core/src/kernel-context.js'
import { principalOf } from '../../core/src/http/guards.js'
import { announce, benchKernel, benchTenant, installBuilt } from './_tenant.js'
import { record, replay, type Statement } from './_sql-replay.js'

const POS = Number(process.env.BENCH_SUPPLY_POS ?? 40)
const ORDERS = Number(process.env.BENCH_SUPPLY_ORDERS ?? 40)
const RMAS = Number(process.env.BENCH_SUPPLY_RMAS ?? 600)
const RECORDED = 6
const LINES = 20

const kernel = await benchKernel({ plugins: { sandboxWorkers: Number(process.env.BENCH_SANDBOX_WORKERS ?? 2) } })
const k = kernel.ctx
const recordings: Record<string, Statement[][]> = { receipt: [], return: [] }
let replays = 0
let failures = 0
kernel.app.post('/v1/bench/replay/:kind', async (request, reply) => {
  const p = principalOf(request)
  const { kind } = request.params as { kind: 'receipt' | 'return' }
  const n = replays++
  const list = recordings[kind]!
  try {
    const events = await orgTx(k, p.orgId, (tx) => replay(tx, list[n % list.length]!, [`BENCH-${kind}-${n}`]))
    k.events.nudge(events)
    reply.code(201)
    return { replayed: n }
  } catch (err) {
    // A failed replay fails the run (not 2xx); its cause is said once.
    if (failures++ < 3) console.error(`replay ${kind} #${n}: ${(err as Error).message}`)
    throw err
  }
})

const { url, token: T, call: once } = await benchTenant(kernel)
/** Setup requests, retried when a starved machine timed the invocation out (it was rolled back). */
const call: typeof once = async (method, path, body, token) => {
  for (let attempt = 1; ; attempt++) {
    try {
      return await once(method, path, body, token)
    } catch (err) {
      if (attempt >= 5 || !/: 50[34] /.test((err as Error).message)) throw err
      await new Promise((r) => setTimeout(r, 500 * attempt))
    }
  }
}
for (const name of ['catalog', 'pricing', 'inventory', 'orders', 'procurement', 'returns'])
  await installBuilt(kernel, fileURLToPath(new URL(`../../plugins/${name}`, import.meta.url)), call, T)
const installations = (await fetch(`${url}/v1/installations`, { headers: { authorization: `Bearer ${T}` } }).then((r) =>
  r.json(),
)) as { items: Array<{ id: string; plugin: string }> }
const settings: Record<string, Record<string, unknown>> = {
  '@trellis/procurement': { approvalThreshold: '999999999999.00' },
  '@trellis/returns': { autoApproveValue: '999999999999.00' },
}
for (const i of installations.items)
  if (settings[i.plugin]) await call('PATCH', `/v1/installations/${i.id}`, { settings: settings[i.plugin] }, T)

/** Runs `fn` over `items`, `width` at a time. */
async function pool<A>(items: A[], width: number, fn: (a: A, i: number) => Promise<unknown>): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) {
        const i = next++
        await fn(items[i]!, i)
      }
    }),
  )
}
const chunks = <A>(xs: A[], n: number) =>
  Array.from({ length: Math.ceil(xs.length / n) }, (_, i) => xs.slice(i * n, i * n + n))

const poCount = POS + RECORDED
const orderCount = ORDERS + RECORDED
const poSku = (po: number, line: number) => `S${po}-${line}`
const retSku = (order: number, line: number) => `R${order}-${line}`
const skus = [
  ...Array.from({ length: poCount * LINES }, (_, i) => poSku(Math.floor(i / LINES), i % LINES)),
  ...Array.from({ length: orderCount * 2 }, (_, i) => retSku(Math.floor(i / 2), i % 2)),
]
await call('POST', '/v1/x/catalog/import/categories', { csv: 'code,name\nBEV,Beverages\n' }, T)
await call('POST', '/v1/x/catalog/import/suppliers', { csv: 'code,name\nEXO,Exotic Liquids\n' }, T)
// Small batches: each import is one invocation with a wall-clock limit, on a loaded machine too.
const importAll = async <A>(path: string, items: A[], body: (batch: A[]) => unknown) => {
  for (const batch of chunks(items, 30)) await call('POST', path, body(batch), T)
}
const retSkus = skus.filter((s) => s.startsWith('R'))
const poSkus = skus.filter((s) => s.startsWith('S'))
await importAll('/v1/x/catalog/import/products', skus, (rows) => ({
  csv: `sku,name,category,supplier\n${rows.map((s) => `${s},Product ${s},BEV,EXO`).join('\n')}\n`,
}))
await importAll('/v1/x/inventory/stock/import', skus, (rows) => ({
  rows: rows.map((sku) => ({ sku, onHand: 1_000_000 })),
}))
await importAll('/v1/x/pricing/prices/import', retSkus, (rows) => ({
  rules: rows.map((sku) => ({ kind: 'list', sku, price: '12.40' })),
}))
await call('POST', '/v1/x/orders/customers/import', { rows: [{ code: 'ALFKI', name: 'Alfreds Futterkiste' }] }, T)
await call('POST', '/v1/x/procurement/suppliers/import', { rows: [{ code: 'EXO', name: 'Exotic Liquids' }] }, T)
await importAll('/v1/x/procurement/prices/import', poSkus, (rows) => ({
  rows: rows.map((sku) => ({ supplier: 'EXO', sku, cost: '3.75' })),
}))

// Purchase orders: created, approved by the rule, sent.
const pos = Array.from({ length: poCount }, (_, i) => `PO-B${i}`)
await pool(pos, 6, async (number, i) => {
  const lines = Array.from({ length: LINES }, (_, l) => ({ sku: poSku(i, l), quantity: 100_000_000 }))
  await call('POST', '/v1/x/procurement/purchase-orders', { number, supplier: 'EXO', lines }, T)
  await call('POST', `/v1/x/procurement/purchase-orders/${number}/submit`, {}, T)
  await call('POST', `/v1/x/procurement/purchase-orders/${number}/send`, {}, T)
})
const receiptBody = () => ({ lines: Array.from({ length: LINES }, (_, l) => ({ line: l + 1, quantity: 1 })) })

// Invoiced orders, and return authorisations against them (approved by the rule).
const orders = Array.from({ length: orderCount }, (_, i) => `SO-B${i}`)
await pool(orders, 6, async (number, i) => {
  const lines = [
    { sku: retSku(i, 0), quantity: 100_000 },
    { sku: retSku(i, 1), quantity: 100_000, discount: 0.05 },
  ]
  await call('POST', '/v1/x/orders/orders', { number, customer: 'ALFKI', lines }, T)
  await call('POST', `/v1/x/orders/orders/${number}/confirm`, {}, T)
  await call('POST', `/v1/x/orders/orders/${number}/ship`, {}, T)
  await call('POST', `/v1/x/orders/orders/${number}/invoice`, {}, T)
})
const rmaOrder = (n: number) => orders[RECORDED + (n % ORDERS)]!
const rmaBody = (number: string, order: string) => ({
  number,
  order,
  lines: [
    { line: 1, quantity: 1, reason: 'damaged' },
    { line: 2, quantity: 1, reason: 'wrong_item' },
  ],
})
const rmas = Array.from({ length: RMAS }, (_, i) => `RMA-B${i}`)
const started = Date.now()
await pool(rmas, 6, (number, i) => call('POST', '/v1/x/returns/rmas', rmaBody(number, rmaOrder(i)), T))
const rmaSetupMs = Date.now() - started
const returnBody = {
  lines: [
    { line: 1, quantity: 1, outcome: 'restock' },
    { line: 2, quantity: 1, outcome: 'scrap' },
  ],
}

// The recordings: receipts on purchase orders and return receipts of their own.
for (let i = 0; i < RECORDED; i++) {
  const po = pos[POS + i]!
  // The receipt's number, as the plugin makes it: the order's number and its receipt count.
  const history = (await call('GET', `/v1/x/procurement/purchase-orders/${po}`, undefined, T)).history as Array<{
    status: string
  }>
  const n = history.filter((h) => h.status.endsWith('received')).length + 1
  recordings.receipt!.push(
    await record(
      () => call('POST', `/v1/x/procurement/purchase-orders/${po}/receipts`, receiptBody(), T),
      [`${po}-R${n}`],
    ),
  )
  const rma = `RMA-REC${i}`
  await call('POST', '/v1/x/returns/rmas', rmaBody(rma, orders[i]!), T)
  recordings.return!.push(
    await record(() => call('POST', `/v1/x/returns/rmas/${rma}/receive`, returnBody, T), [`CN-${rma}`]),
  )
}

announce(kernel, {
  url,
  token: T,
  pos: pos.slice(0, POS),
  rmas,
  rmaSetupMs,
  receiptBody: receiptBody(),
  returnBody,
  statements: { receipt: recordings.receipt!.map((r) => r.length), return: recordings.return!.map((r) => r.length) },
  transcript: {
    receipt: recordings.receipt![0]!.map((s) => s.text.replace(/\s+/g, ' ').slice(0, 90)),
    return: recordings.return![0]!.map((s) => s.text.replace(/\s+/g, ' ').slice(0, 90)),
  },
})
