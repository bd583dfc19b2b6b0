// GET /reports/sales: exact line amounts of the orders in the asked states, grouped on request.
import type { RouteRequest, RouteResponse } from '@trellis/plugin-sdk'
import type { Ctx, OrderStatus } from './types.js'
import { fmtMicros, roundToCents, toMicros } from './money.js'

export async function salesReport(
  req: RouteRequest<null, Record<string, string>, { groupBy?: string; status?: string }>,
  ctx: Ctx,
): Promise<RouteResponse> {
  const groupBy = req.query.groupBy ?? 'none'
  const statuses = (
    req.query.status ? req.query.status.split(',') : ['placed', 'confirmed', 'shipped', 'invoiced']
  ) as OrderStatus[]
  const groups = new Map<
    string,
    { key: string; name: string; orders: number; quantity: number; micros: bigint; returned: bigint }
  >()
  let total = 0n
  let returned = 0n
  let orders = 0
  let lines = 0
  let cursor: string | undefined
  do {
    const page = await ctx.data.orders.find({
      where: { status: { in: statuses } },
      limit: 250,
      ...(cursor ? { cursor } : {}),
    })
    for (const o of page.items) {
      orders++
      const touched = new Set<string>()
      for (const l of o.lines) {
        lines++
        const net = toMicros(l.net)
        total += net
        if (groupBy === 'none') continue
        const key = groupBy === 'customer' ? o.customer : l.sku
        const g = groups.get(key) ?? {
          key,
          name: groupBy === 'customer' ? o.customerName : l.name,
          orders: 0,
          quantity: 0,
          micros: 0n,
          returned: 0n,
        }
        g.micros += net
        g.quantity += l.quantity
        if (!touched.has(key)) g.orders++
        touched.add(key)
        groups.set(key, g)
      }
      // Returns booked on the order: credited at its prices, netted out of the same groups.
      for (const r of o.returns ?? [])
        for (const l of r.lines) {
          const m = toMicros(l.amountExact)
          returned += m
          const g = groups.get(groupBy === 'customer' ? o.customer : l.sku)
          if (g) g.returned += m
        }
    }
    cursor = page.nextCursor ?? undefined
  } while (cursor)
  return {
    status: 200,
    body: {
      groupBy,
      statuses,
      orders,
      lines,
      total: roundToCents(total),
      totalExact: fmtMicros(total),
      ...amounts(total, returned),
      ...(groupBy === 'none'
        ? {}
        : {
            groups: [...groups.values()]
              .sort((a, b) => a.key.localeCompare(b.key))
              .map((g) => ({
                key: g.key,
                name: g.name,
                orders: g.orders,
                quantity: g.quantity,
                total: roundToCents(g.micros),
                totalExact: fmtMicros(g.micros),
                ...amounts(g.micros, g.returned),
              })),
          }),
    },
  }
}

/** Gross (before returns, as `total`), what returns credited, and net of them: each rounded once. */
const amounts = (gross: bigint, returned: bigint) => ({
  gross: roundToCents(gross),
  returned: roundToCents(returned),
  net: roundToCents(gross - returned),
  netExact: fmtMicros(gross - returned),
})
