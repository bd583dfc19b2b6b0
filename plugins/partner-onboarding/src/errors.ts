import { defineErrors } from '@trellis/plugin-sdk'

/** The partner-onboarding plugin's errors: each answers as problem+json with its code, like the kernel's. */
export const ONB = defineErrors('ONB', {
  AGREEMENT_NOT_FOUND: {
    status: 404,
    title: 'Agreement not found',
    message: (d: { id: string }) => `Agreement ${d.id} was not found`,
  },
  ONBOARDING_NOT_FOUND: {
    status: 404,
    title: 'Onboarding not found',
    message: (d: { id: string }) => `Onboarding ${d.id} was not found`,
  },
  ONBOARDING_CLOSED: {
    status: 409,
    title: 'Onboarding closed',
    message: (d: { status: string }) => `The onboarding is ${d.status}; it takes no more documents`,
  },
})
