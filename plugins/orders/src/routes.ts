// The route table of the orders plugin (mounted at /v1/x/orders).
import { problem, type RouteRequest } from '@trellis/plugin-sdk'
import { ORD } from './errors.js'
import type { Ctx } from './types.js'
import { orderOf } from './store.js'
import { customerRoutes } from './customers.js'
import { placeOrder } from './place-order.js'
import { transition } from './transitions.js'
import { resolveRoute } from './exceptions.js'
import { salesReport } from './reports.js'

export const routes = {
  ...customerRoutes,
  'POST /orders': placeOrder,
  'GET /orders': async (
    req: RouteRequest<
      null,
      Record<string, string>,
      { status?: string; customer?: string; limit?: string; cursor?: string }
    >,
    ctx: Ctx,
  ) => {
    const where: Record<string, string> = {}
    if (req.query.status) where.status = req.query.status
    if (req.query.customer) where.customer = req.query.customer
    // A page must fit the sandbox's 1 MiB output: a page of long orders is fetched again, smaller.
    let limit = Math.min(200, Math.max(1, Number(req.query.limit ?? 50)))
    for (;;) {
      const page = await ctx.data.orders.find({
        where,
        limit,
        ...(req.query.cursor ? { cursor: req.query.cursor } : {}),
      })
      if (limit === 1 || JSON.stringify(page).length < 900_000) return { status: 200, body: page }
      limit = Math.max(1, Math.floor(limit / 2))
    }
  },
  'GET /orders/:number': async (req: RouteRequest<null, { number: string }>, ctx: Ctx) => {
    const o = await orderOf(ctx, req.params.number)
    return o ? { status: 200, body: o } : problem(ORD.ORDER_NOT_FOUND, `no order ${req.params.number}`)
  },
  'POST /orders/:number/confirm': transition('confirm'),
  'POST /orders/:number/ship': transition('ship'),
  'POST /orders/:number/invoice': transition('invoice'),
  'POST /orders/:number/cancel': transition('cancel'),
  'POST /orders/:number/exceptions/:kind/resolve': resolveRoute,
  'GET /reports/sales': salesReport,
}
