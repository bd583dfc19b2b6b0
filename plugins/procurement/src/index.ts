/**
 * The procurement plugin: suppliers and their price lists, replenishment suggestions when stock
 * falls to its reorder point (or a demand forecast says it will within the lead time), purchase orders with approval over a threshold, receipts that add
 * stock through `@trellis/inventory`, and supplier invoices matched three ways.
 */
import { collection, definePlugin } from '@trellis/plugin-sdk'
import manifest from '../trellis.plugin.json' with { type: 'json' }
import type { DemandForecast, PurchaseOrder, Receipt, Supplier, SupplierInvoice, SupplierPrice } from './types.js'
import { supplierRoutes } from './suppliers.js'
import { poRoutes } from './purchase-orders.js'
import { receive } from './receipts.js'
import { invoiceRoutes } from './invoices.js'
import { onStockLow } from './replenish.js'
import { forecastRoutes } from './forecasts.js'
import { forecastRefresh, invoiceException, poApproval } from './workflows.js'

export * from './types.js'
export { PUR } from './errors.js'
export { suggest } from './replenish.js'
export { leadTimeDemand } from './demand.js'
export { refreshForecasts, DEMAND_METRIC, type RefreshSummary } from './refresh.js'

export const procurementPlugin = definePlugin({
  manifest,
  collections: {
    suppliers: collection<Supplier>(),
    prices: collection<SupplierPrice>(),
    purchaseOrders: collection<PurchaseOrder>(),
    receipts: collection<Receipt>(),
    invoices: collection<SupplierInvoice>(),
    forecasts: collection<DemandForecast>(),
  },
  routes: {
    ...supplierRoutes,
    ...poRoutes,
    'POST /purchase-orders/:number/receipts': receive,
    ...invoiceRoutes,
    ...forecastRoutes,
  },
  events: { 'inventory.stock.low': onStockLow },
  workflows: { poApproval, invoiceException, forecastRefresh },
})
