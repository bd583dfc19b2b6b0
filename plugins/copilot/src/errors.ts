import { defineErrors, worded } from '@trellis/plugin-sdk'

/** The copilot's errors: each answers as problem+json with its code, like the kernel's. */
export const CPL = defineErrors('CPL', {
  ORDER_NOT_FOUND: { status: 404, title: 'Order not found', message: worded },
  QUESTION_NOT_FOUND: { status: 404, title: 'Question not found', message: worded },
})
