/**
 * The returns plugin: return authorisations against invoiced orders, approved by rule or by a
 * person, received with an inspection outcome per line, restocked through `@trellis/inventory`
 * and credited at the original order's prices and discounts through `@trellis/orders`.
 */
import { collection, definePlugin } from '@trellis/plugin-sdk'
import manifest from '../trellis.plugin.json' with { type: 'json' }
import type { CreditNote, Ledger, Rma } from './types.js'
import { routes } from './rmas.js'
import { rmaApproval } from './workflow.js'

export * from './types.js'
export { RET } from './errors.js'

export const returnsPlugin = definePlugin({
  manifest,
  collections: { rmas: collection<Rma>(), ledgers: collection<Ledger>(), creditNotes: collection<CreditNote>() },
  routes,
  workflows: { rmaApproval },
})
