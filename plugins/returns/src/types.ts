// The returns plugin's records and what it exchanges with orders.
import type { PluginContext } from '@trellis/plugin-sdk'

export const REASONS = ['damaged', 'defective', 'wrong_item', 'not_as_described', 'no_longer_needed', 'other'] as const
export type Reason = (typeof REASONS)[number]
export type Outcome = 'restock' | 'scrap' | 'return_to_supplier'
export type RmaStatus = 'pending_approval' | 'approved' | 'rejected' | 'credited' | 'cancelled'

export interface RmaLine {
  line: number
  sku: string
  quantity: number
  reason: Reason
  note?: string
  received?: number
  /** The outcome when every received unit had the same one. */
  outcome?: Outcome
  /** What inspection decided for the received units, per outcome. */
  inspection?: Array<{ outcome: Outcome; quantity: number }>
}

export interface Rma {
  number: string
  order: string
  customer: string
  status: RmaStatus
  lines: RmaLine[]
  /** The credit the asked lines are worth at the order's prices and discounts. */
  value: string
  valueExact: string
  createdBy: string
  approval?: { by: string; rule?: string; reason?: string; at: string }
  history: Array<{ status: RmaStatus | 'requested' | 'received'; at: string; by: string; note?: string }>
  creditNote?: string
}

/** What live return authorisations of one order hold, per order line: the race point. */
export interface Ledger {
  order: string
  lines: Array<{ line: number; quantity: number }>
}

export interface CreditNote {
  number: string
  rma: string
  order: string
  customer: string
  currency?: string
  lines: Array<{
    line: number
    sku: string
    quantity: number
    unitPrice: string
    discount: string
    amountExact: string
  }>
  total: string
  totalExact: string
  issuedAt: string
}

export type Ctx = PluginContext<{ rmas: Rma; ledgers: Ledger; creditNotes: CreditNote }>
export type Stored<T> = T & { id: string; version: number }

/** The orders plugin's `quoteReturn` answer. */
export interface ReturnQuote {
  ok: boolean
  code?: string
  detail?: string
  order?: {
    number: string
    customer: string
    status: string
    currency?: string
    invoicedDate?: string
    lines: Array<{ line: number; sku: string; shipped: number; returned: number; unitPrice: string; discount: string }>
  }
  credit?: { lines: CreditNote['lines']; total: string; totalExact: string }
}
