// The kernel with the ERP plugins (catalog, pricing, inventory, orders) installed for a tenant,
// a Northwind-sized catalog (77 products, list prices, ample stock) and one customer; and, for
// the baseline, the same SQL natively: orders are placed through the plugins once per product
// pair with every statement of their tenant transaction recorded (the host-call transcript as
// PostgreSQL sees it), and POST /v1/bench/orders replays one such transcript — each statement
// with its recorded text and parameters, in one tenant transaction — for a new order number.
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { v7 as uuidv7 } from 'uuid'
import type { Tx } from '../../core/src/db/database.js'
import { orgTx } from '../../core/src/kernel-context.js'
import { principalOf } from '../../core/src/http/guards.js'
import { announce, benchKernel, benchTenant, installBuilt } from './_tenant.js'

const PRODUCTS = 77
/** Product pairs an order may hold (each order: two lines of a pair); one transcript each. */
const PAIRS = Number(process.env.BENCH_ORDER_PAIRS ?? 24)

interface Statement {
  text: string
  /** Named statements are replayed named (prepared), unnamed ones unnamed, as recorded. */
  named: boolean
  values: unknown[]
}

const kernel = await benchKernel({ plugins: { sandboxWorkers: Number(process.env.BENCH_SANDBOX_WORKERS ?? 2) } })
const k = kernel.ctx
kernel.app.post('/v1/bench/orders', async (request, reply) => {
  const p = principalOf(request)
  const body = request.body as { number: string; pair: number }
  const events = await orgTx(k, p.orgId, (tx) => replay(tx, transcripts[body.pair]!, body.number)).catch((err) => {
    console.error('order replay failed:', err)
    throw err
  })
  k.events.nudge(events)
  reply.code(201)
  return { number: body.number }
})

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

// Every statement on every connection while recording, by connection; the order's transaction
// is the one that wrote its record (the kernel's background work runs on other connections).
const pg = createRequire(import.meta.url)('pg') as {
  Client: { prototype: { query: (...a: unknown[]) => unknown } }
}
const query = pg.Client.prototype.query
let recording: Map<object, Statement[]> | undefined
pg.Client.prototype.query = function (this: object, config: unknown, values?: unknown, cb?: unknown) {
  if (recording) {
    const c = config as { text?: string; name?: string; values?: unknown[] } | string
    const text = typeof c === 'string' ? c : (c.text ?? '')
    const list = recording.get(this) ?? []
    list.push({
      text,
      named: typeof c === 'object' && c.name !== undefined,
      values: JSON.parse(JSON.stringify((typeof c === 'object' ? c.values : undefined) ?? values ?? [])),
    })
    recording.set(this, list)
  }
  return query.call(this, config, values, cb)
}

const transcripts: Statement[][] = []
for (const [i, pair] of pairs.entries()) {
  const number = `RECORDED-${i}-ORDER`
  const since = Date.now()
  recording = new Map()
  await call('POST', '/v1/x/orders/orders', orderBody(number, pair), T)
  const byConnection = [...recording.values()]
  recording = undefined
  const tx = byConnection
    .flatMap(transactions)
    .find(
      (t) =>
        t.some((s) => s.text.includes('insert into plugin_records')) && t.some((s) => s.text.includes('audit_log')),
    )
  if (!tx) throw new Error('the order transaction was not recorded')
  // BEGIN (and the scoping) and COMMIT are the replaying transaction's own.
  // The kernel's own reads, made when a cache of a few seconds runs out (installations, a
  // version's status), are not the order's: what is kept is what the plugins caused.
  const body = tx
    .slice(
      1,
      tx.findIndex((s) => s.text === 'commit'),
    )
    .filter((s) => /plugin_records|insert into events|insert into audit_log/.test(s.text))
  const fresh = new Map<string, string>()
  transcripts.push(body.map((s) => ({ ...s, values: generalise(s.values, number, since, fresh) })))
}

/** A connection's statements, cut into transactions (each from its BEGIN). */
function transactions(list: Statement[]): Statement[][] {
  const out: Statement[][] = []
  for (const s of list) {
    if (s.text.startsWith('begin;')) out.push([])
    out.at(-1)?.push(s)
  }
  return out
}

/**
 * The recorded values with what is this order's own replaced by placeholders: its number
 * (`§N§`), and the ids the transaction generated — UUIDv7s made after recording began
 * (`§U<n>§`); everything older (the tenant, installations, stock records) stays.
 */
function generalise(values: unknown[], number: string, since: number, fresh: Map<string, string>): unknown[] {
  const text = JSON.stringify(values)
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}/g, (u) => {
      if (Number.parseInt(u.replace(/-/g, '').slice(0, 12), 16) < since - 5) return u
      if (!fresh.has(u)) fresh.set(u, `§U${fresh.size}§`)
      return fresh.get(u)!
    })
    .split(number)
    .join('§N§')
  return JSON.parse(text)
}

const UPDATE_RECORD = 'update plugin_records r set data'
const INSERT_EVENT = 'insert into events'

/**
 * Replays a transcript for order `number` in `tx`: the same statements, in order, with fresh
 * ids, this order's number, and each update's expected version read from what the statements
 * before it returned (as the plugin reads the stock row, then updates it at that version).
 */
async function replay(tx: Tx, transcript: Statement[], number: string): Promise<string[]> {
  const ids = new Map<string, string>()
  const versions = new Map<string, number>()
  const events: string[] = []
  for (const s of transcript) {
    const values = JSON.parse(
      JSON.stringify(s.values)
        .replace(/§U(\d+)§/g, (_, n: string) => {
          if (!ids.has(n)) ids.set(n, uuidv7())
          return ids.get(n)!
        })
        .replace(/§N§/g, number),
    ) as unknown[]
    if (s.text.includes(UPDATE_RECORD)) values[7] = versions.get(values[2] as string) ?? values[7]
    if (s.text.startsWith(INSERT_EVENT)) events.push(values[0] as string)
    const rows = await (s.named ? tx.sql(s.text, values) : tx.sqlOnce(s.text, values))
    for (const r of rows as Array<{ id?: unknown; version?: unknown; new_version?: unknown }>) {
      const v = r.new_version ?? r.version
      if (typeof r.id === 'string' && typeof v === 'number') versions.set(r.id, v)
    }
  }
  return events
}

announce(kernel, {
  url,
  token: T,
  pairs,
  statements: transcripts.map((t) => t.length),
  transcript: transcripts[0]!.map((s) => s.text.replace(/\s+/g, ' ').slice(0, 90)),
})
