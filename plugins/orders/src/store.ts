// Lookups and small rules the order's operations share.
import type { Ctx, Customer, Order, StoredCustomer, StoredOrder } from './types.js'
import { toMicros } from './money.js'

export const now = () => new Date().toISOString()
export const today = () => now().slice(0, 10)

export async function customerOf(ctx: Ctx, code: string): Promise<StoredCustomer | null> {
  return ((await ctx.data.customers.find({ where: { code }, limit: 1 })).items[0] as StoredCustomer | undefined) ?? null
}

export async function orderOf(ctx: Ctx, number: string): Promise<StoredOrder | null> {
  return ((await ctx.data.orders.find({ where: { number }, limit: 1 })).items[0] as StoredOrder | undefined) ?? null
}

export const open = (o: Order) => o.exceptions.filter((e) => e.status === 'open')
export const who = (ctx: Ctx, by?: string) => by ?? `${ctx.caller.kind}:${ctx.caller.id}`
export const eventBase = (o: Order) => ({ order: o.number, customer: o.customer, total: o.total, status: o.status })

export function creditProblem(c: Customer, total: string): string | null {
  if (c.creditHold) return `customer ${c.code} is on credit hold`
  if (c.creditLimit !== undefined && toMicros(total) > toMicros(c.creditLimit))
    return `order total ${total} exceeds the credit limit ${c.creditLimit} of customer ${c.code}`
  return null
}

export function shortReason(short: Array<{ sku: string; requested: number; available: number }>): string {
  return short.length
    ? short.map((s) => `${s.sku}: ${s.requested} requested, ${s.available} available`).join('; ')
    : 'the stock could not be reserved'
}
