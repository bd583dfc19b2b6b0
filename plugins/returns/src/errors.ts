import { defineErrors, worded } from '@trellis/plugin-sdk'

/** The returns plugin's errors: each answers as problem+json with its code, like the kernel's. */
export const RET = defineErrors('RET', {
  CREDIT_NOTE_NOT_FOUND: { status: 404, title: 'Credit note not found', message: worded },
  EXCEEDS_SHIPPED: { status: 409, title: 'Return exceeds what was shipped', message: worded },
  INVALID_LINES: { status: 422, title: 'Invalid return lines', message: worded },
  INVALID_TRANSITION: { status: 409, title: 'Invalid return transition', message: worded },
  NOT_INVOICED: { status: 409, title: 'Order not invoiced', message: worded },
  ORDER_NOT_FOUND: { status: 404, title: 'Order not found', message: worded },
  RMA_EXISTS: { status: 409, title: 'Return authorisation already exists', message: worded },
  RMA_NOT_FOUND: { status: 404, title: 'Return authorisation not found', message: worded },
  SELF_APPROVAL: { status: 403, title: 'Own return authorisation', message: worded },
})
