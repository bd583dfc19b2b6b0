import { defineErrors } from '@trellis/plugin-sdk'

/** Kernel errors: configuration, input, tenancy, storage. */
export const KRN = defineErrors('KRN', {
  CONFIG_INVALID: {
    status: 500,
    title: 'Invalid configuration',
    message: (d: { variable: string; reason: string }) => `${d.variable}: ${d.reason}`,
  },
  VALIDATION_FAILED: {
    status: 400,
    title: 'Request did not validate',
    message: (d: { reason: string; problems?: Array<{ pointer: string; message: string }> }) => d.reason,
  },
  MALFORMED_JSON: { status: 400, title: 'Malformed JSON body', message: () => 'the request body is not valid JSON' },
  UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    title: 'Unsupported media type',
    message: (d: { type: string }) => `content type ${d.type} is not accepted`,
  },
  PAYLOAD_TOO_LARGE: {
    status: 413,
    title: 'Request body too large',
    message: (d: { limit: number }) => `the request body exceeds ${d.limit} bytes`,
  },
  NOT_FOUND: { status: 404, title: 'Not found', message: (d: { what: string }) => `${d.what} was not found` },
  ROUTE_NOT_FOUND: {
    status: 404,
    title: 'No such route',
    message: (d: { method: string; url: string }) => `${d.method} ${d.url} is not a route`,
  },
  CONFLICT: { status: 409, title: 'Conflict', message: (d: { reason: string }) => d.reason },
  INVALID_CURSOR: { status: 400, title: 'Invalid cursor', message: () => 'the cursor is not one this API issued' },
  IDEMPOTENCY_KEY_REUSED: {
    status: 409,
    title: 'Idempotency key reused with a different request',
    message: () => 'this Idempotency-Key was used with a different request body or route',
  },
  IDEMPOTENCY_KEY_INVALID: {
    status: 400,
    title: 'Invalid Idempotency-Key',
    message: () => 'an Idempotency-Key is 1 to 255 printable ASCII characters',
  },
  IDEMPOTENT_REQUEST_IN_PROGRESS: {
    status: 409,
    title: 'Request with this Idempotency-Key in progress',
    message: () => 'a request with this Idempotency-Key is still being processed',
  },
  CAPABILITY_DENIED: { status: 403, title: 'Capability denied', message: (d: { reason: string }) => d.reason },
  RATE_LIMITED: {
    status: 429,
    title: 'Too many requests',
    message: (d: { retryAfterSeconds: number }) => `rate limit exceeded, retry in ${d.retryAfterSeconds}s`,
  },
  TENANT_SUSPENDED: { status: 403, title: 'Tenant suspended', message: () => 'this tenant is suspended' },
  PARTNER_SUSPENDED: { status: 403, title: 'Partner suspended', message: () => 'this partner is suspended' },
  DATABASE_UNAVAILABLE: { status: 503, title: 'Database unavailable', message: () => 'the database cannot be reached' },
  SCHEMA_BEHIND: {
    status: 503,
    title: 'Database schema behind the code',
    message: (d: { pending: string[] }) =>
      `the database needs migrations (${d.pending.join(', ')}): run trellis migrate up`,
  },
  REDIS_UNAVAILABLE: { status: 503, title: 'Redis unavailable', message: () => 'Redis (REDIS_URL) cannot be reached' },
  DRAINING: {
    status: 503,
    title: 'Process draining',
    message: () => 'this process is shutting down and finishing its in-flight work; send new requests elsewhere',
  },
  INTERNAL: { status: 500, title: 'Internal error', message: () => 'an unexpected error occurred; it has been logged' },
  AUDIT_CHECKPOINTS_UNREADABLE: {
    status: 400,
    title: 'Audit checkpoints unreadable',
    message: (d: { path: string; reason: string }) => `cannot read audit checkpoints from ${d.path}: ${d.reason}`,
  },
})

/** Identity and access errors. */
export const AUTH = defineErrors('AUTH', {
  UNAUTHENTICATED: {
    status: 401,
    title: 'Authentication required',
    message: () => 'send a bearer access token or API key',
  },
  INVALID_TOKEN: {
    status: 401,
    title: 'Invalid token',
    message: (d: { reason: string }) => `the token was rejected: ${d.reason}`,
  },
  TOKEN_EXPIRED: { status: 401, title: 'Token expired', message: () => 'the access token has expired; refresh it' },
  INVALID_CREDENTIALS: { status: 401, title: 'Invalid credentials', message: () => 'email or password is wrong' },
  INVALID_REFRESH_TOKEN: {
    status: 401,
    title: 'Invalid refresh token',
    message: () => 'the refresh token is unknown, expired or already used',
  },
  INVALID_API_KEY: {
    status: 401,
    title: 'Invalid API key',
    message: () => 'the API key is unknown, revoked or expired',
  },
  FORBIDDEN: {
    status: 403,
    title: 'Permission denied',
    message: (d: { permission: string }) => `this needs the permission ${d.permission}`,
  },
  PERMISSION_ESCALATION: {
    status: 403,
    title: 'Cannot grant permissions you do not hold',
    message: (d: { permissions: string[] }) => `you do not hold: ${d.permissions.join(', ')}`,
  },
  NO_MEMBERSHIP: { status: 403, title: 'No membership', message: () => 'you are not a member of that organisation' },
  LOGIN_RATE_LIMITED: {
    status: 429,
    title: 'Too many sign-in attempts',
    message: (d: { retryAfterSeconds: number }) => `too many sign-in attempts, retry in ${d.retryAfterSeconds}s`,
  },
  WEAK_PASSWORD: { status: 400, title: 'Password too weak', message: () => 'a password needs at least 12 characters' },
  ACCOUNT_DISABLED: { status: 403, title: 'Account disabled', message: () => 'this account is disabled' },
  INVITATION_INVALID: {
    status: 400,
    title: 'Invalid invitation',
    message: () => 'the invitation is unknown, expired, revoked or already accepted',
  },
  INVITATION_ACCOUNT_REQUIRED: {
    status: 401,
    title: 'Sign in to accept',
    message: () =>
      'accept the invitation signed in as the invited account, with its password, or with a name and password for a new account',
  },
  USER_REQUIRED: {
    status: 403,
    title: 'A person must be signed in',
    message: () => 'this acts on your own account: sign in as a person, not with an API key',
  },
  WRONG_PASSWORD: { status: 403, title: 'Wrong password', message: () => 'the current password is wrong' },
  RESET_TOKEN_INVALID: {
    status: 400,
    title: 'Invalid reset link',
    message: () => 'the password reset link is unknown, expired or already used; ask for a new one',
  },
  MAIL_NOT_CONFIGURED: {
    status: 503,
    title: 'Mail is not configured',
    message: () => 'this server sends no e-mail (TRELLIS_SMTP_URL is unset); ask an administrator',
  },
  MFA_REQUIRED: {
    status: 401,
    title: 'Second factor required',
    message: () => 'sign in again with totpCode (the code of your authenticator) or a recoveryCode',
  },
  MFA_ENROLMENT_REQUIRED: {
    status: 403,
    title: 'Authenticator required',
    message: () =>
      'your organisation requires an authenticator: enrol one with POST /v1/auth/mfa/enrol, then sign in with its code',
  },
  MFA_CODE_INVALID: {
    status: 401,
    title: 'Invalid second-factor code',
    message: () => 'the code is wrong, expired or already used',
  },
  SSO_REQUIRED: {
    status: 403,
    title: 'Single sign-on required',
    message: () => "this organisation signs in only with its identity provider: use 'Sign in with SSO'",
  },
  SSO_NOT_CONFIGURED: {
    status: 404,
    title: 'No identity provider',
    message: () => 'this organisation has no (enabled) identity provider',
  },
  SSO_FAILED: { status: 401, title: 'Single sign-on failed', message: (d: { reason: string }) => d.reason },
  SSO_CODE_INVALID: {
    status: 401,
    title: 'Invalid sign-in code',
    message: () => 'the sign-in code is unknown, expired or already used; sign in again',
  },
})

/** Events, webhooks and egress errors. */
export const EVT = defineErrors('EVT', {
  EVENT_TYPE_INVALID: {
    status: 400,
    title: 'Invalid event type',
    message: (d: { type: string }) => `${d.type} is not an event type (<plugin>.<entity>.<past-verb>)`,
  },
  EVENT_INVALID: { status: 400, title: 'Invalid event', message: (d: { reason: string }) => d.reason },
  URL_NOT_ALLOWED: { status: 400, title: 'Webhook URL not allowed', message: (d: { reason: string }) => d.reason },
  EGRESS_DENIED: {
    status: 403,
    title: 'Outbound address not allowed',
    message: (d: { host: string; address?: string }) =>
      `${d.host}${d.address ? ` (${d.address})` : ''} is a loopback, private, link-local or reserved address`,
  },
  ENDPOINT_DISABLED: {
    status: 409,
    title: 'Webhook endpoint disabled',
    message: () => 'enable the endpoint before redelivering to it',
  },
  QUEUE_UNAVAILABLE: {
    status: 503,
    title: 'Event queue unavailable',
    message: () => 'the event queue cannot be reached; events stay in the outbox',
  },
})

/** Plugin host errors: versions, installations, plugin routes and invocations. */
export const PLG = defineErrors('PLG', {
  BUNDLE_INVALID: {
    status: 400,
    title: 'Invalid plugin bundle',
    message: (d: { reason: string; problems?: Array<{ pointer: string; message: string; rule?: string }> }) => d.reason,
  },
  VERSION_EXISTS: {
    status: 409,
    title: 'Plugin version exists',
    message: (d: { name: string; version: string }) => `${d.name}@${d.version} is already registered`,
  },
  VERSION_NOT_FOUND: {
    status: 404,
    title: 'Plugin version not found',
    message: (d: { name: string; version?: string }) =>
      `${d.name}${d.version ? `@${d.version}` : ''} is not a registered plugin version`,
  },
  VERSION_BLOCKED: {
    status: 403,
    title: 'Plugin version blocked',
    message: (d: { name: string; version: string }) => `${d.name}@${d.version} has been blocked by the platform`,
  },
  VERSION_NOT_APPROVED: {
    status: 409,
    title: 'Plugin version not approved',
    message: (d: { name: string; version: string; status: string }) =>
      `${d.name}@${d.version} is ${d.status.replace('_', ' ')}, not approved: only approved versions can be installed`,
  },
  ALREADY_INSTALLED: {
    status: 409,
    title: 'Plugin already installed',
    message: (d: { name: string }) =>
      `${d.name} is already installed for this tenant (or another plugin uses its mount)`,
  },
  NOT_INSTALLED: {
    status: 404,
    title: 'Plugin not installed',
    message: (d: { name: string }) => `${d.name} is not installed for this tenant`,
  },
  CONSENT_MISMATCH: {
    status: 400,
    title: 'Capabilities not consented',
    message: (d: { missing: string[]; extra: string[] }) =>
      `the capabilities consented to must equal those the version requests${d.missing.length ? `; not consented: ${d.missing.join(', ')}` : ''}${d.extra.length ? `; not requested: ${d.extra.join(', ')}` : ''}`,
  },
  SETTINGS_INVALID: {
    status: 400,
    title: 'Invalid plugin settings',
    message: (d: { reason: string; problems?: Array<{ pointer: string; message: string }> }) => d.reason,
  },
  DEPENDENCY_MISSING: {
    status: 409,
    title: 'Plugin dependency not installed',
    message: (d: {
      plugin: string
      dependency: string
      range: string
      installed: string | null
      available: string | null
    }) =>
      `${d.plugin} needs ${d.dependency} ${d.range}${d.installed ? ` (installed: ${d.installed})` : ''}; ${d.available ? `install ${d.dependency}@${d.available} first` : 'no approved version fits'}`,
  },
  DEPENDED_ON: {
    status: 409,
    title: 'Other plugins depend on it',
    message: (d: { plugin: string; dependents: string[] }) =>
      `${d.dependents.join(', ')} depend on ${d.plugin}: uninstall them first`,
  },
  NOT_AN_UPGRADE: {
    status: 409,
    title: 'Not an upgrade',
    message: (d: { from: string; to: string }) =>
      `${d.to} is not newer than the installed ${d.from} (use rollback to go back)`,
  },
  NO_PENDING_UPGRADE: {
    status: 409,
    title: 'No upgrade awaits consent',
    message: () => 'this installation has no upgrade waiting for consent',
  },
  NOTHING_TO_ROLL_BACK: { status: 409, title: 'Nothing to roll back to', message: (d: { reason: string }) => d.reason },
  INSTALLATION_DISABLED: {
    status: 403,
    title: 'Plugin installation disabled',
    message: (d: { name: string }) => `${d.name} is disabled for this tenant`,
  },
  RESPONSE_INVALID: { status: 502, title: 'Plugin response invalid', message: (d: { reason: string }) => d.reason },
  CAPABILITY_NOT_GRANTABLE: {
    status: 422,
    title: 'Capability cannot be granted',
    message: (d: { name: string; version: string; capability: string; reason: string }) =>
      `${d.name}@${d.version} asks for ${d.capability}, which no tenant may grant: ${d.reason}`,
  },
  VERSION_UNVERIFIED: {
    status: 503,
    title: 'Plugin version failed verification',
    message: (d: { name: string; version: string; reason: string }) => `${d.name}@${d.version} is not run: ${d.reason}`,
  },
  CALL_DEPTH_EXCEEDED: {
    status: 508,
    title: 'Plugin call chain too deep',
    message: (d: { depth: number }) => `plugin actions may call each other at most ${d.depth} deep`,
  },
  TOO_MANY_INVOCATIONS: {
    status: 429,
    title: 'Too many plugin invocations',
    message: (d: { scope: 'tenant' | 'installation'; limit: number; retryAfterSeconds: number }) =>
      `this ${d.scope} already runs ${d.limit} plugin invocations at once; retry in ${d.retryAfterSeconds}s`,
  },
  TRANSACTION_IDLE: {
    status: 504,
    title: 'Plugin held its transaction idle too long',
    message: (d: { limitMs: number }) =>
      `the plugin kept its database transaction open for more than ${d.limitMs} ms without using it; the invocation was rolled back`,
  },
})
