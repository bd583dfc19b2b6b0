import { Type } from '@sinclair/typebox'
import type { AccessTokens } from './tokens.js'
import type { MembershipGrant } from './memberships.js'

export const Uuid = Type.String({ format: 'uuid' })

/** What signing in and refreshing answer. */
export const TokenResponse = Type.Object({
  accessToken: Type.String(),
  tokenType: Type.Literal('Bearer'),
  expiresIn: Type.Integer({ description: 'Seconds until the access token expires.' }),
  refreshToken: Type.String({ description: 'Single use: each refresh returns a new one.' }),
  org: Type.Object({ id: Uuid, kind: Type.String(), role: Type.String() }),
  memberships: Type.Array(Type.Object({ orgId: Uuid, orgKind: Type.String(), role: Type.String() })),
})

/** An access token for the grant, with the session's refresh token, as {@link TokenResponse}. */
export async function tokenResponse(
  tokens: Pick<AccessTokens, 'issue'>,
  userId: string,
  grant: MembershipGrant,
  grants: MembershipGrant[],
  session: { sessionId: string; familyId: string; refreshToken: string },
) {
  const { token, expiresIn } = await tokens.issue({
    userId,
    orgId: grant.orgId,
    orgKind: grant.orgKind,
    permissions: grant.permissions,
    sessionId: session.familyId,
  })
  return {
    accessToken: token,
    tokenType: 'Bearer' as const,
    expiresIn,
    refreshToken: session.refreshToken,
    org: { id: grant.orgId, kind: grant.orgKind, role: grant.role },
    memberships: grants.map((g) => ({ orgId: g.orgId, orgKind: g.orgKind, role: g.role })),
  }
}
