import { collection, definePlugin, problem, rowsProblem } from '@trellis/plugin-sdk'
import type { PluginContext, RouteRequest, RouteResponse } from '@trellis/plugin-sdk'
import manifest from '../trellis.plugin.json' with { type: 'json' }
import { PRC } from './errors.js'

/**
 * One price rule. `list` rules carry the list price (with `minQuantity` > 1 they are quantity
 * breaks); `group` rules apply to a customer group (a price list), `customer` rules to one
 * customer (contract prices). A group or customer rule gives a fixed `price` or a `discount`
 * off the list price. Dates are inclusive `YYYY-MM-DD`; money is a decimal string.
 */
export interface PriceRule {
  kind: 'list' | 'group' | 'customer'
  sku: string
  group?: string
  customer?: string
  price?: string
  discount?: string
  minQuantity: number
  validFrom?: string
  validTo?: string
}

interface Settings {
  approvalThreshold?: number
  currency?: string
  [k: string]: unknown
}
type Ctx = PluginContext<{ prices: PriceRule }, Settings>
type Stored = PriceRule & { id: string; version: number }

export interface QuoteInput {
  customer?: string
  group?: string
  date?: string
  lines: Array<{ sku: string; quantity: number; discount?: string | number }>
}

const DEFAULT_THRESHOLD = 0.1

// ---- exact money: cents (10^-2) for prices, 10^-4 for discounts, 10^-6 for discounted amounts ----

/** "9.8" | 9.8 → 980n cents; null when not a non-negative amount with at most 2 decimals. */
export function toCents(v: string | number): bigint | null {
  const s = typeof v === 'number' ? String(v) : v.trim()
  const m = /^(\d{1,12})(?:\.(\d{1,2}))?$/.exec(s)
  if (!m) return null
  return BigInt(m[1]!) * 100n + BigInt((m[2] ?? '').padEnd(2, '0'))
}

/** "0.15" | 0.15 → 1500n (ten-thousandths); null unless 0 ≤ d ≤ 1 with at most 4 decimals. */
export function toBp(v: string | number): bigint | null {
  const s = typeof v === 'number' ? String(v) : v.trim()
  const m = /^(\d)(?:\.(\d{1,4}))?$/.exec(s)
  if (!m) return null
  const bp = BigInt(m[1]!) * 10000n + BigInt((m[2] ?? '').padEnd(4, '0'))
  return bp > 10000n ? null : bp
}

/** Formats an amount of `10^-scale` units with at least 2 decimals, more only when not zero. */
export function fmt(units: bigint, scale: number): string {
  const neg = units < 0n
  const s = (neg ? -units : units).toString().padStart(scale + 1, '0')
  const int = s.slice(0, s.length - scale)
  let dec = s.slice(s.length - scale)
  while (dec.length > 2 && dec.endsWith('0')) dec = dec.slice(0, -1)
  return `${neg ? '-' : ''}${int}.${dec}`
}

/** Rounds 10^-6 units to cents, half away from zero. */
export function microsToCents(m: bigint): bigint {
  const neg = m < 0n
  const a = neg ? -m : m
  const c = (a + 5000n) / 10000n
  return neg ? -c : c
}

const fmtBp = (bp: bigint) => fmt(bp, 4)
const today = () => new Date().toISOString().slice(0, 10)
const validOn = (r: PriceRule, date: string) =>
  (!r.validFrom || r.validFrom <= date) && (!r.validTo || date <= r.validTo)

async function rulesFor(ctx: Ctx, skus: string[]): Promise<Stored[]> {
  const out: Stored[] = []
  let cursor: string | undefined
  do {
    const page = await ctx.data.prices.find({
      where: { sku: { in: skus } },
      limit: 1000,
      ...(cursor ? { cursor } : {}),
    })
    out.push(...(page.items as Stored[]))
    cursor = page.nextCursor ?? undefined
  } while (cursor)
  return out
}

interface Product {
  sku: string
  name: string
  discontinued: boolean
}

/** The quote: what orders call (action `quote`) and what `POST /quote` answers. */
export async function quote(input: QuoteInput, ctx: Ctx) {
  const date = input.date ?? today()
  const threshold =
    typeof ctx.settings.approvalThreshold === 'number' ? ctx.settings.approvalThreshold : DEFAULT_THRESHOLD
  const thresholdBp = BigInt(Math.round(threshold * 10000))
  const skus = [...new Set(input.lines.map((l) => l.sku))]
  // The products and the rules are independent: asked together, they leave the sandbox in one message.
  const [catalog, rules] = await Promise.all([
    ctx.plugins.call<{ products: Product[]; missing: string[] }>('@trellis/catalog', 'getProducts', { skus }),
    rulesFor(ctx, skus),
  ])
  const products = new Map(catalog.products.map((p) => [p.sku, p]))
  const errors: Array<{ line: number; sku: string; code: string; message: string }> = []
  const approvalReasons: string[] = []
  let grossCents = 0n
  let netMicros = 0n
  const lines = input.lines.map((l, i) => {
    const line = i + 1
    const product = products.get(l.sku)
    if (!product) {
      errors.push({ line, sku: l.sku, code: 'unknown_product', message: `line ${line}: no product ${l.sku}` })
      return null
    }
    if (product.discontinued)
      errors.push({ line, sku: l.sku, code: 'discontinued', message: `line ${line}: ${l.sku} is discontinued` })
    if (!Number.isInteger(l.quantity) || l.quantity < 1) {
      errors.push({
        line,
        sku: l.sku,
        code: 'invalid_quantity',
        message: `line ${line}: quantity must be a whole number of at least 1`,
      })
      return null
    }
    const requested = l.discount === undefined ? 0n : toBp(l.discount)
    if (requested === null || requested >= 10000n) {
      errors.push({
        line,
        sku: l.sku,
        code: 'invalid_discount',
        message: `line ${line}: discount must be a fraction from 0 to below 1 with at most 4 decimals`,
      })
      return null
    }
    const applicable = rules.filter((r) => r.sku === l.sku && validOn(r, date) && r.minQuantity <= l.quantity)
    const lists = applicable.filter((r) => r.kind === 'list')
    // The list price is the plain (smallest-quantity, latest-starting) list rule valid that day.
    const base = lists
      .filter((r) => r.price !== undefined)
      .sort((a, b) => a.minQuantity - b.minQuantity || (b.validFrom ?? '').localeCompare(a.validFrom ?? ''))[0]
    if (!base) {
      errors.push({
        line,
        sku: l.sku,
        code: 'no_price',
        message: `line ${line}: ${l.sku} has no list price on ${date}`,
      })
      return null
    }
    const listCents = toCents(base.price!)!
    const rank = { customer: 0, group: 1, list: 2 } as const
    let best = { cents: listCents, rule: base as Stored }
    for (const r of applicable) {
      if (r.kind === 'customer' && r.customer !== input.customer) continue
      if (r.kind === 'group' && (!input.group || r.group !== input.group)) continue
      const cents =
        r.price !== undefined ? toCents(r.price)! : microsToCents(listCents * (10000n - toBp(r.discount ?? '0')!))
      // The lowest price wins; on a tie, the more specific rule (customer, then group, then list).
      if (cents < best.cents || (cents === best.cents && rank[r.kind] < rank[best.rule.kind])) best = { cents, rule: r }
    }
    const gross = best.cents * BigInt(l.quantity)
    const net = gross * (10000n - requested)
    grossCents += gross
    netMicros += net
    const needsApproval = requested > thresholdBp
    const approvalReason = needsApproval
      ? `line ${line} (${l.sku}): discount ${fmt(requested * 100n, 4).replace(/\.?0+$/, '')}% exceeds the ${fmt(thresholdBp * 100n, 4).replace(/\.?0+$/, '')}% approval threshold`
      : undefined
    if (approvalReason) approvalReasons.push(approvalReason)
    return {
      line,
      sku: l.sku,
      name: product.name,
      quantity: l.quantity,
      listPrice: fmt(listCents, 2),
      unitPrice: fmt(best.cents, 2),
      priceSource: {
        kind: best.rule.kind,
        ruleId: best.rule.id,
        minQuantity: best.rule.minQuantity,
        ...(best.rule.group ? { group: best.rule.group } : {}),
        ...(best.rule.customer ? { customer: best.rule.customer } : {}),
      },
      discount: fmtBp(requested),
      gross: fmt(gross, 2),
      discountAmount: fmt(gross * 10000n - net, 6),
      net: fmt(net, 6),
      needsApproval,
      ...(approvalReason ? { approvalReason } : {}),
    }
  })
  return {
    date,
    currency: ctx.settings.currency ?? 'USD',
    ...(input.customer ? { customer: input.customer } : {}),
    ...(input.group ? { group: input.group } : {}),
    lines: errors.length ? [] : lines,
    subtotal: fmt(grossCents, 2),
    discountTotal: fmt(grossCents * 10000n - netMicros, 6),
    total: fmt(microsToCents(netMicros), 2),
    totalExact: fmt(netMicros, 6),
    approvalThreshold: fmtBp(thresholdBp),
    needsApproval: approvalReasons.length > 0,
    approvalReasons,
    errors,
  }
}

/** Checks one rule as given by a caller; returns the record to store or the problems. */
function checkRule(raw: Record<string, unknown>): {
  rule?: PriceRule
  problems: Array<{ field: string; code: string; message: string }>
} {
  const problems: Array<{ field: string; code: string; message: string }> = []
  const allowed = new Set([
    'kind',
    'sku',
    'group',
    'customer',
    'price',
    'discount',
    'minQuantity',
    'validFrom',
    'validTo',
  ])
  for (const k of Object.keys(raw))
    if (!allowed.has(k)) problems.push({ field: k, code: 'unknown_field', message: `${k} is not a price rule field` })
  const kind = raw.kind
  if (kind !== 'list' && kind !== 'group' && kind !== 'customer')
    problems.push({ field: 'kind', code: 'invalid', message: 'kind must be list, group or customer' })
  if (typeof raw.sku !== 'string' || !raw.sku || raw.sku.length > 64)
    problems.push({ field: 'sku', code: 'required', message: 'sku is required' })
  const rule: PriceRule = { kind: kind as PriceRule['kind'], sku: String(raw.sku ?? ''), minQuantity: 1 }
  if (raw.price !== undefined) {
    const c = typeof raw.price === 'string' || typeof raw.price === 'number' ? toCents(raw.price) : null
    if (c === null)
      problems.push({
        field: 'price',
        code: 'invalid',
        message: 'price must be a non-negative amount with at most 2 decimals',
      })
    else rule.price = fmt(c, 2)
  }
  if (raw.discount !== undefined) {
    const d = typeof raw.discount === 'string' || typeof raw.discount === 'number' ? toBp(raw.discount) : null
    if (d === null || d >= 10000n)
      problems.push({
        field: 'discount',
        code: 'invalid',
        message: 'discount must be a fraction from 0 to below 1 with at most 4 decimals',
      })
    else rule.discount = fmtBp(d)
  }
  if (kind === 'list' && raw.price === undefined)
    problems.push({ field: 'price', code: 'required', message: 'a list rule needs a price' })
  if (kind === 'list' && raw.discount !== undefined)
    problems.push({ field: 'discount', code: 'invalid', message: 'a list rule has a price, not a discount' })
  if (kind !== 'list' && (raw.price === undefined) === (raw.discount === undefined))
    problems.push({
      field: 'price',
      code: 'invalid',
      message: 'a group or customer rule has either a price or a discount',
    })
  if (kind === 'group') {
    if (typeof raw.group !== 'string' || !raw.group)
      problems.push({ field: 'group', code: 'required', message: 'a group rule names the customer group' })
    else rule.group = raw.group
  }
  if (kind === 'customer') {
    if (typeof raw.customer !== 'string' || !raw.customer)
      problems.push({ field: 'customer', code: 'required', message: 'a customer rule names the customer' })
    else rule.customer = raw.customer
  }
  if (raw.minQuantity !== undefined) {
    if (!Number.isInteger(raw.minQuantity) || (raw.minQuantity as number) < 1)
      problems.push({
        field: 'minQuantity',
        code: 'invalid',
        message: 'minQuantity must be a whole number of at least 1',
      })
    else rule.minQuantity = raw.minQuantity as number
  }
  for (const f of ['validFrom', 'validTo'] as const) {
    const v = raw[f]
    if (v === undefined) continue
    if (typeof v !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(v) || Number.isNaN(Date.parse(`${v}T00:00:00Z`)))
      problems.push({ field: f, code: 'invalid', message: `${f} must be a date YYYY-MM-DD` })
    else rule[f] = v
  }
  if (rule.validFrom && rule.validTo && rule.validTo < rule.validFrom)
    problems.push({ field: 'validTo', code: 'invalid', message: 'validTo is before validFrom' })
  return problems.length ? { problems } : { rule, problems }
}

async function importRules(raws: Array<Record<string, unknown>>, ctx: Ctx): Promise<RouteResponse> {
  const errors: Array<{ row: number; field?: string; code: string; message: string }> = []
  const rules: PriceRule[] = []
  raws.forEach((raw, i) => {
    const { rule, problems } = checkRule(raw && typeof raw === 'object' ? raw : {})
    for (const p of problems) errors.push({ row: i + 1, ...p })
    if (rule) rules.push(rule)
  })
  if (!errors.length) {
    const skus = [...new Set(rules.map((r) => r.sku))]
    const { missing } = await ctx.plugins.call<{ missing: string[] }>('@trellis/catalog', 'getProducts', { skus })
    const unknown = new Set(missing)
    rules.forEach(
      (r, i) =>
        unknown.has(r.sku) &&
        errors.push({ row: i + 1, field: 'sku', code: 'unknown_product', message: `no product ${r.sku}` }),
    )
  }
  if (errors.length) return rowsProblem(PRC.INVALID_RULES, errors, raws.length, 'rules')
  const stored = []
  for (const r of rules) stored.push(await ctx.data.prices.insert(r))
  return { status: 201, body: { created: stored.length, items: stored } }
}

export const pricingPlugin = definePlugin({
  manifest,
  collections: { prices: collection<PriceRule>() },
  routes: {
    'GET /prices': async (req: RouteRequest<null, Record<string, string>, Record<string, string>>, ctx: Ctx) => {
      const where: Record<string, string> = {}
      for (const f of ['sku', 'kind', 'customer', 'group']) if (req.query[f]) where[f] = req.query[f]!
      return {
        status: 200,
        body: await ctx.data.prices.find({
          where,
          limit: 500,
          ...(req.query.cursor ? { cursor: req.query.cursor } : {}),
        }),
      }
    },
    'POST /prices': async (req: RouteRequest<Record<string, unknown>>, ctx: Ctx) => {
      const res = await importRules([req.body], ctx)
      return res.status === 201 ? { status: 201, body: (res.body as { items: unknown[] }).items[0] } : res
    },
    'POST /prices/import': (req: RouteRequest<{ rules: Array<Record<string, unknown>> }>, ctx: Ctx) =>
      importRules(req.body.rules, ctx),
    'DELETE /prices/:id': async (req: RouteRequest<null, { id: string }>, ctx: Ctx) =>
      (await ctx.data.prices.delete(req.params.id))
        ? { status: 204 }
        : problem(PRC.RULE_NOT_FOUND, `no price rule ${req.params.id}`),
    'POST /quote': async (req: RouteRequest<QuoteInput>, ctx: Ctx) => {
      const q = await quote(req.body, ctx)
      return q.errors.length
        ? problem(PRC.QUOTE_LINES, q.errors.map((e) => e.message).join('; '), { errors: q.errors })
        : { status: 200, body: q }
    },
  },
  actions: { quote },
})
