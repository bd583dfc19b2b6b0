import { defineErrors, worded } from '@trellis/plugin-sdk'

/** The inventory plugin's errors: each answers as problem+json with its code, like the kernel's. */
export const INV = defineErrors('INV', {
  INSUFFICIENT_STOCK: { status: 409, title: 'Insufficient stock', message: worded },
  INVALID_ROWS: { status: 422, title: 'Invalid stock rows', message: worded },
  NO_RESERVATION: { status: 404, title: 'Reservation not found', message: worded },
  NO_STOCK_RECORD: { status: 404, title: 'Stock record not found', message: worded },
  UNKNOWN_PRODUCT: { status: 422, title: 'Unknown product', message: worded },
})
