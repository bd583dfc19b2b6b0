// The procurement plugin's records.
import type { PluginContext } from '@trellis/plugin-sdk'

export interface Supplier {
  code: string
  name: string
  contactName?: string
  country?: string
  city?: string
  phone?: string
  /** Days from sending a purchase order to the goods arriving. */
  leadTimeDays: number
}

/** One entry of a supplier's price list: what a SKU costs from them. */
export interface SupplierPrice {
  supplier: string
  sku: string
  /** Unit cost, a decimal string with at most 4 decimals. */
  cost: string
  /** Overrides the supplier's lead time for this SKU. */
  leadTimeDays?: number
  /** Smallest quantity the supplier takes. */
  minQuantity?: number
  /** Units used a year, when known: with the ordering and holding costs, the EOQ. */
  annualUsage?: number
}

export type PoStatus =
  | 'draft'
  | 'pending_approval'
  | 'approved'
  | 'sent'
  | 'partly_received'
  | 'received'
  | 'closed'
  | 'cancelled'

export interface PoLine {
  line: number
  sku: string
  quantity: number
  unitCost: string
  received: number
  /** Received beyond the ordered quantity, accepted within the over-delivery tolerance. */
  over: number
  amountExact: string
  /** How a suggested quantity was reached. */
  suggestion?: Record<string, unknown>
}

export interface PurchaseOrder {
  number: string
  supplier: string
  status: PoStatus
  source: 'manual' | 'suggestion'
  /** Set on a suggested draft while it is one, so each supplier has at most one (a unique index). */
  draftKey?: string
  lines: PoLine[]
  total: string
  totalExact: string
  createdBy: string
  /** Who submitted it for approval (for a suggested draft, the buyer who adopted it). */
  submittedBy?: string
  approval?: { by: string; rule?: string; reason?: string; at: string; workflow?: string }
  history: Array<{ status: PoStatus; at: string; by: string; note?: string }>
  expectedDate?: string
  /** What was not delivered when the order was closed short. */
  shortClosed?: Array<{ line: number; sku: string; quantity: number }>
}

export interface Receipt {
  number: string
  po: string
  reference?: string
  lines: Array<{ line: number; sku: string; quantity: number; over: number }>
  at: string
  by: string
}

export type InvoiceStatus = 'matched' | 'exception' | 'approved' | 'rejected'

export interface SupplierInvoice {
  number: string
  supplier: string
  po: string
  invoiceDate?: string
  lines: Array<{ line: number; quantity: number; unitCost: string }>
  total: string
  status: InvoiceStatus
  payable: boolean
  mismatches: Array<{ line: number; kind: 'quantity' | 'price' | 'line'; detail: string }>
  history: Array<{ status: InvoiceStatus; at: string; by: string; note?: string }>
}

export type ForecastGrain = 'day' | 'week' | 'month' | 'quarter' | 'year'

/** A SKU's demand forecast (all warehouses), as the insights layer or a planner gave it. */
export interface DemandForecast {
  sku: string
  /** Where it comes from: the metric's name (`insights.units_sold`) or `manual`. */
  source: string
  grain: ForecastGrain
  method?: string
  /** Units expected per period; `period` is the period's first day. */
  periods: Array<{ period: string; value: number }>
  recordedAt: string
  recordedBy: string
}

export type Collections = {
  suppliers: Supplier
  prices: SupplierPrice
  purchaseOrders: PurchaseOrder
  receipts: Receipt
  invoices: SupplierInvoice
  forecasts: DemandForecast
}
export type Ctx = PluginContext<Collections>
export type Stored<T> = T & { id: string; version: number }
