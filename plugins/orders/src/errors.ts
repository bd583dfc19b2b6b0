import { defineErrors, worded } from '@trellis/plugin-sdk'

/** The orders plugin's errors: each answers as problem+json with its code, like the kernel's. */
export const ORD = defineErrors('ORD', {
  CUSTOMER_EXISTS: { status: 409, title: 'Customer already exists', message: worded },
  FORBIDDEN: { status: 403, title: 'Permission needed', message: worded },
  CUSTOMER_NOT_FOUND: { status: 404, title: 'Customer not found', message: worded },
  INVALID_CUSTOMERS: { status: 422, title: 'Invalid customers', message: worded },
  INVALID_LINES: { status: 422, title: 'Invalid order lines', message: worded },
  INVALID_TRANSITION: { status: 409, title: 'Invalid order transition', message: worded },
  NOT_RESERVED: { status: 409, title: 'Stock not reserved', message: worded },
  NO_OPEN_EXCEPTION: { status: 409, title: 'No open exception', message: worded },
  OPEN_EXCEPTIONS: { status: 409, title: 'Order has open exceptions', message: worded },
  ORDER_EXISTS: { status: 409, title: 'Order already exists', message: worded },
  ORDER_NOT_FOUND: { status: 404, title: 'Order not found', message: worded },
  REPRICE_FAILED: { status: 409, title: 'Order cannot be repriced', message: worded },
  RETURN_EXCEEDS: { status: 409, title: 'Return exceeds what was shipped', message: worded },
  STOCK_STILL_SHORT: { status: 409, title: 'Stock still short', message: worded },
  UNKNOWN_CUSTOMER: { status: 422, title: 'Unknown customer', message: worded },
})
