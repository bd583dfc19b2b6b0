// The orders plugin's records and what it exchanges with pricing and inventory.
import type { PluginContext } from '@trellis/plugin-sdk'

export interface Customer {
  code: string
  name: string
  /** Customer group: selects the pricing plugin's group price lists. */
  group?: string
  contactName?: string
  country?: string
  city?: string
  creditHold: boolean
  /** An order whose total is above this is put on credit hold. */
  creditLimit?: string
}

export type ExceptionKind = 'price_approval' | 'stock_short' | 'credit_hold'
export type OrderStatus = 'placed' | 'confirmed' | 'shipped' | 'invoiced' | 'cancelled'

export interface OrderException {
  kind: ExceptionKind
  reason: string
  status: 'open' | 'resolved'
  raisedAt: string
  decision?: 'approved' | 'rejected' | 'cancelled'
  resolution?: string
  resolvedAt?: string
  by?: string
}

export interface OrderLine {
  line: number
  sku: string
  name: string
  quantity: number
  listPrice: string
  unitPrice: string
  discount: string
  gross: string
  /** Exact net amount (unit price × quantity × (1 − discount)), not rounded. */
  net: string
  needsApproval: boolean
  approvalReason?: string
  priceSource: Record<string, unknown>
}

/** The priced lines and totals, as the pricing plugin quotes them and an order keeps them. */
export interface Priced {
  currency: string
  lines: OrderLine[]
  subtotal: string
  discountTotal: string
  /** Sum of the exact line nets, rounded half-up to the cent. */
  total: string
  totalExact: string
}

export interface Order extends Priced {
  number: string
  customer: string
  customerName: string
  /** The employee (sales representative) who took the order. */
  employeeId?: string
  status: OrderStatus
  orderDate: string
  requiredDate?: string
  /** `reserved`, `short` (nothing reserved), `released` or `issued`. */
  stock: 'reserved' | 'short' | 'released' | 'issued'
  exceptions: OrderException[]
  history: Array<{ status: OrderStatus; at: string; by: string }>
  shippedDate?: string
  invoicedDate?: string
  invoiceNumber?: string
  cancelReason?: string
  /** Goods taken back (recorded by the `recordReturn` action): credited at the order's prices. */
  returns?: OrderReturn[]
}

/** One return booked against an order: its credit lines at the order's prices and discounts. */
export interface OrderReturn {
  reference: string
  at: string
  lines: Array<{
    line: number
    sku: string
    name: string
    quantity: number
    unitPrice: string
    discount: string
    amountExact: string
  }>
  /** Sum of the exact line credits, rounded half-up to the cent. */
  total: string
  totalExact: string
}

export type Ctx = PluginContext<{ customers: Customer; orders: Order }>
export type StoredOrder = Order & { id: string; version: number }
export type StoredCustomer = Customer & { id: string; version: number }

/** What the pricing plugin's `quote` action answers. */
export interface Quote extends Priced {
  needsApproval: boolean
  approvalReasons: string[]
  errors: Array<{ line: number; sku: string; code: string; message: string }>
}

/** What the inventory plugin's `reserve` action answers. */
export interface Reservation {
  ok: boolean
  short?: Array<{ sku: string; requested: number; available: number }>
}
