/**
 * The orders plugin: customers and sales orders (placed → confirmed → shipped → invoiced, or
 * cancelled), priced by `@trellis/pricing`, reserved in `@trellis/inventory`, with exceptions
 * for price approval, short stock and credit hold — a price approval goes to a person through
 * the `priceException` workflow.
 */
import { collection, definePlugin } from '@trellis/plugin-sdk'
import manifest from '../trellis.plugin.json' with { type: 'json' }
import type { Ctx, Customer, Order } from './types.js'
import { orderOf } from './store.js'
import { routes } from './routes.js'
import { resolveExceptionAction } from './exceptions.js'
import { priceException } from './price-exception.js'
import { quoteReturn, recordReturn } from './returns.js'

export * from './types.js'
export { toMicros, fmtMicros, roundToCents } from './money.js'
export { resolveException } from './exceptions.js'
export type { StartedByException } from './place-order.js'
export { ORD } from './errors.js'

export const ordersPlugin = definePlugin({
  manifest,
  collections: { customers: collection<Customer>(), orders: collection<Order>() },
  routes,
  workflows: { priceException },
  actions: {
    getOrder: async (input: { order: string }, ctx: Ctx) => orderOf(ctx, input.order),
    resolveException: resolveExceptionAction,
    quoteReturn,
    recordReturn,
  },
})
