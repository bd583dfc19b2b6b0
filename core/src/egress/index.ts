export { EgressGuard, parseEgressAllow, type ResolvedTarget } from './egress-guard.js'
export { egressRequest, type EgressRequest, type EgressResponse } from './http-client.js'
