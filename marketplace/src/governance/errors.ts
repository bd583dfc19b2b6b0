import { defineErrors } from '@trellis/plugin-sdk'

/** Marketplace errors of review, the kill switch, listings and channel catalogs. */
export const MKT_GOVERNANCE = defineErrors('MKT', {
  NOT_IN_REVIEW: {
    status: 409,
    title: 'Version not in review',
    message: (d: { status: string }) => `the version is ${d.status.replace('_', ' ')}, not in review`,
  },
  SELF_REVIEW: {
    status: 403,
    title: 'Publishers cannot review their own versions',
    message: () => 'you are a member of the publishing partner: another platform admin must decide',
  },
  NOT_BLOCKABLE: {
    status: 409,
    title: 'Version cannot be blocked or unblocked',
    message: (d: { status: string }) => `the version is ${d.status.replace('_', ' ')}`,
  },
  NOT_IN_CATALOG: {
    status: 403,
    title: 'Plugin not in the channel catalog',
    message: (d: { plugin: string }) => `${d.plugin} is not in the catalog your partner offers`,
  },
  PLUGIN_NOT_FOUND: {
    status: 404,
    title: 'Plugin not found',
    message: (d: { plugin: string }) => `${d.plugin} is not listed`,
  },
})
