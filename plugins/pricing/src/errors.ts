import { defineErrors, worded } from '@trellis/plugin-sdk'

/** The pricing plugin's errors: each answers as problem+json with its code, like the kernel's. */
export const PRC = defineErrors('PRC', {
  INVALID_RULES: { status: 422, title: 'Invalid price rules', message: worded },
  QUOTE_LINES: { status: 422, title: 'Invalid quote lines', message: worded },
  RULE_NOT_FOUND: { status: 404, title: 'Price rule not found', message: worded },
})
