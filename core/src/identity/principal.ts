import type { OrgKind } from './entities.js'

/** Who is calling, in which organisation, with which permissions. */
export interface Principal {
  kind: 'user' | 'api_key'
  /** The user id, or the API key id. */
  id: string
  /** The user behind the call (the key's creator for API keys). */
  userId: string
  orgId: string
  orgKind: OrgKind
  permissions: ReadonlySet<string>
  /** Session (refresh-token family) of a user token. */
  sessionId?: string
}
