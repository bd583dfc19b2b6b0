import { coreServices, type ResolvedDeps } from '@trellis/core'

/** The kernel services the marketplace uses — all it is given. */
export const marketplaceDeps = {
  tx: coreServices.transactions,
  audit: coreServices.audit,
  events: coreServices.events,
  versions: coreServices.versions,
  plugins: coreServices.plugins,
  organisations: coreServices.organisations,
  memberships: coreServices.memberships,
  logger: coreServices.logger,
}

/** Those services, as the marketplace's modules receive them. */
export type Services = ResolvedDeps<typeof marketplaceDeps>
