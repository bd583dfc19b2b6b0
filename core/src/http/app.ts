import Fastify, { type FastifyRequest } from 'fastify'
import { trace } from '@opentelemetry/api'
import type { Logger } from 'pino'
import type { Api } from './types.js'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { randomBytes } from 'node:crypto'
import { orgTx as orgTxOf, type KernelContext } from '../kernel-context.js'
import type { OrgTx } from './route-deps.js'
import { stillMissing } from '../plugins/grantable.js'
import { KRN } from '../errors.js'
import { type AuthenticateDeps, authenticate, authenticateKnown, bearerCredential } from '../identity/authenticate.js'
import type { Principal } from '../identity/principal.js'
import { toTrellisError, sendProblem, ProblemSchema } from './problem.js'
import { registerIdempotency } from './idempotency.js'
import { RateLimiter } from './rate-limit.js'
import { arrangeRouteHooks, markPrivate } from './route-hooks.js'
import { DeniedRequests, type DeniedRequestsOptions } from './denied-requests.js'
import { DEFAULT_HTTP_LIMITS } from './server-limits.js'
import { lazyCompilers } from './lazy-schemas.js'
import { registerHealthRoutes } from './health-routes.js'
import { HttpMetrics } from '../observability/metrics.js'
import { registerAuthRoutes } from '../identity/auth-routes.js'
import { registerRefreshCookie } from '../identity/refresh-cookie.js'
import { registerSessionRoutes } from '../identity/session-routes.js'
import { registerUserRoutes } from '../identity/user-routes.js'
import { registerInvitationRoutes } from '../identity/invitation-routes.js'
import { registerInvitationAcceptRoutes } from '../identity/invitation-accept-routes.js'
import { registerPasswordRoutes } from '../identity/password-routes.js'
import { registerMfaRoutes } from '../identity/mfa/routes.js'
import { registerSsoConfigRoutes } from '../identity/sso/config-routes.js'
import { registerSsoRoutes } from '../identity/sso/routes.js'
import { OidcClients } from '../identity/sso/oidc.js'
import { registerScimRoutes } from '../identity/scim/routes.js'
import { LoginLimiter } from '../identity/login-limiter.js'
import { registerRoleRoutes } from '../identity/role-routes.js'
import { registerApiKeyRoutes } from '../identity/api-key-routes.js'
import { registerPartnerRoutes } from '../tenancy/partner-routes.js'
import { registerTenantRoutes } from '../tenancy/tenant-routes.js'
import { registerBrandingRoutes } from '../tenancy/branding-routes.js'
import { registerAuditRoutes } from '../audit/routes.js'
import { registerCheckpointRoutes } from '../audit/checkpoint-routes.js'
import { registerAuditVerifyRoutes } from '../audit/verify-routes.js'
import { registerEventRoutes } from '../events/event-routes.js'
import { registerWebhookRoutes } from '../events/webhook-routes.js'
import { registerWebhookSecretRoutes } from '../events/webhook-secret-routes.js'
import { registerWebhookDeliveryRoutes } from '../events/webhook-delivery-routes.js'
import { registerPluginRoutes } from '../plugins/plugin-routes.js'
import { registerInstallationRoutes } from '../plugins/installation-routes.js'
import { registerInvocationRoutes } from '../plugins/installation-invocation-routes.js'
import { registerDetailWindowRoutes } from '../plugins/installation-detail-routes.js'
import { dependentsOf, installVersion, installableVersion, switchVersion } from '../plugins/lifecycle.js'
import { registerUpgradeRoutes } from '../plugins/upgrade-routes.js'
import { registerPublisherRoutes } from '../plugins/publisher-routes.js'
import { withPluginPaths } from '../plugins/openapi.js'
import { completeDocument } from './openapi-document.js'
import type { KernelExtension } from '../extensions.js'
import { registerInstanceRoutes } from '../workflows/instance-routes.js'
import { registerTaskRoutes } from '../workflows/task-routes.js'
import { registerTaskDecisionRoutes } from '../workflows/task-decision-routes.js'
import { registerTaskSubjectRoutes } from '../workflows/task-subject-routes.js'
import { registerAiRoutes } from '../ai/routes.js'
import { registerKnowledgeRoutes } from '../knowledge/routes.js'
import { registerMetricRoutes } from '../metrics/routes.js'
import {
  registerAccessReviewRoutes,
  evidenceRouteDeps,
  exportRouteDeps,
  keyringFor,
  registerEvidenceRoutes,
  registerExportRoutes,
  registerKeyRoutes,
} from '../governance/index.js'
import { registerErasureRoutes, registerLegalHoldRoutes, registerRetentionRoutes } from '../governance/index.js'

export interface HttpOptions {
  /** Packages adding routes under /v1 (see extensions.ts). */
  extensions?: KernelExtension[]
  /** Requests per minute per tenant (per client address before sign-in). */
  rateLimitPerMinute?: number
  bodyLimitBytes?: number
  /** How refused (403) requests are aggregated into the audit log (tests move the clock). */
  deniedRequests?: DeniedRequestsOptions
  /** True while the process drains: /readyz answers 503 (the kernel sets it). */
  draining?: () => boolean
}

export const BODY_LIMIT = 1024 * 1024

// Request ids: a random per-process prefix and a counter — unique across processes, and
// cheaper than a UUID on every request.
const REQUEST_ID_PREFIX = randomBytes(6).toString('base64url')
let requestCounter = 0
function nextRequestId(): string {
  return `${REQUEST_ID_PREFIX}-${(++requestCounter).toString(36)}`
}

/** Whether the request announced a body that has not been read (yet). */
function bodyPending(request: FastifyRequest): boolean {
  const raw = request.raw
  if (raw.complete) return false
  const length = raw.headers['content-length']
  return length !== undefined ? length !== '0' : raw.headers['transfer-encoding'] !== undefined
}

/** Builds the HTTP API: every route under /v1 has a JSON Schema, every error is problem+json. */
export async function buildApp(k: KernelContext, opts: HttpOptions = {}): Promise<Api> {
  // When nothing is logged at all, requests share the kernel's logger instead of each making a child.
  const logging = k.logger.isLevelEnabled('fatal')
  const limits = k.config.httpLimits ?? DEFAULT_HTTP_LIMITS
  const app = Fastify({
    // No request may hold a connection open for ever (slow headers, a body trickled in, an idle socket).
    requestTimeout: limits.requestTimeoutMs,
    connectionTimeout: limits.idleTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    http: { headersTimeout: limits.headersTimeoutMs },
    loggerInstance: k.logger,
    childLoggerFactory: (logger, bindings, options) => (logging ? logger.child(bindings, options) : logger),
    bodyLimit: opts.bodyLimitBytes ?? BODY_LIMIT,
    // While draining, a request on a connection already accepted is served, not answered 503 (docs/operations.md).
    return503OnClosing: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id']
      return typeof given === 'string' && /^[\w.:-]{1,128}$/.test(given) ? given : nextRequestId()
    },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false } },
    // Each route's schemas are compiled on its first request (ADR 0114).
    schemaController: { compilersFactory: lazyCompilers },
    // Behind a reverse proxy the client address comes from X-Forwarded-For, from trusted hops only (TRELLIS_TRUST_PROXY).
    trustProxy: (k.config.trustProxy ?? false) as boolean | string[],
  }).withTypeProvider<TypeBoxTypeProvider>() as unknown as Api

  app.addSchema(ProblemSchema)
  const tracing = k.config.otlpEndpoint !== undefined
  const metrics = new HttpMetrics()

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Trellis API',
        version: '1',
        description:
          'The Trellis kernel: tenancy, identity, audit, events, webhooks and plugins (installed plugins answer under /v1/x/<plugin>/…). Errors are RFC 9457 problem+json with a stable `code`.',
      },
      components: {
        securitySchemes: {
          bearer: {
            type: 'http',
            scheme: 'bearer',
            description: 'An access token from /v1/auth/login, or an API key (trk_…).',
          },
        },
      },
      security: [{ bearer: [] }],
    },
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => (json.$id as string) || `def-${i}` },
  })
  // One document for /openapi.json and /docs: the routes', the plugins', completed with operation
  // ids, problem answers, Idempotency-Key and shared components. Asked with a tenant's credential,
  // it lists only the plugins that tenant has installed; without one, every available plugin.
  const document = async (request: FastifyRequest) =>
    completeDocument(
      await withPluginPaths(
        { db: k.db },
        app.swagger() as unknown as Parameters<typeof withPluginPaths>[1],
        request.principal?.orgKind === 'tenant' ? request.principal.orgId : undefined,
      ),
    )
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    uiHooks: {
      preHandler: (request, reply, done) => {
        if (request.routeOptions.url !== '/docs/json') return done()
        document(request).then((doc) => reply.send(doc), done)
      },
    },
  })
  app.get('/openapi.json', { schema: { hide: true } }, (request) => document(request))

  const denied = new DeniedRequests(k.db, k.sealer, k.logger, opts.deniedRequests)
  app.setErrorHandler((err, request, reply) => {
    const error = toTrellisError(err, request.routeOptions.bodyLimit)
    // A 503 the kernel chose (a dependency away, the schema behind, draining) is a state an operator
    // watches, not a fault: one warning line with its code. Anything else at 5xx carries its stack.
    if (error.status === 503 && err === error) request.log.warn({ code: error.code }, error.message)
    else if (error.status >= 500) request.log.error({ err, code: error.code }, 'request failed')
    if (error.status === 401 || error.status === 403) {
      metrics.deniedRequest(error.code)
      if (error.status === 403 && request.principal)
        denied.record(
          request.principal,
          request.method,
          request.routeOptions.url ?? 'unmatched',
          error.code,
          request.ip,
        )
    }
    // Refused before its body was read: close the connection rather than read (and discard) the body.
    if (error.status < 500 && bodyPending(request)) reply.header('connection', 'close')
    return sendProblem(request, reply, error)
  })
  app.setNotFoundHandler((request, reply) =>
    sendProblem(request, reply, KRN.ROUTE_NOT_FOUND({ method: request.method, url: request.url.split('?')[0]! })),
  )

  const auth: AuthenticateDeps = {
    tokens: k.tokens,
    orgStatus: k.orgStatus,
    revokedSessions: k.revokedSessions,
    db: k.db,
  }
  // Who is calling: bearer credentials are checked before anything else runs. A credential
  // already verified, for an organisation whose status is fresh, is accepted without waiting.
  const accept = (request: FastifyRequest, principal: Principal) => {
    request.principal = principal
    // Fastify already gave this request its own child logger (with reqId): add the tenant to
    // it, unless nothing is logged at all.
    if (logging) (request.log as unknown as Logger).setBindings({ tenantId: principal.orgId })
    // Tag the request's trace with the tenant (when tracing is on, see observability/telemetry.ts).
    if (tracing) {
      const otel = (
        request as unknown as { opentelemetry?: () => { span?: { setAttribute(k: string, v: string): void } | null } }
      ).opentelemetry?.()
      otel?.span?.setAttribute('tenant.id', principal.orgId)
      trace.getActiveSpan()?.setAttribute('tenant.id', principal.orgId)
    }
  }
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id)
    const header = request.headers.authorization
    if (!header) return done()
    // Whatever answers a credentialed request is that caller's: no shared cache may keep it.
    markPrivate(reply)
    const credential = bearerCredential(header)
    if (!credential)
      return done(toTrellisError(KRN.VALIDATION_FAILED({ reason: 'Authorization must be "Bearer <token>"' })))
    let known: Principal | undefined
    try {
      known = authenticateKnown(auth, credential)
    } catch (err) {
      return done(err as Error)
    }
    if (known) {
      accept(request, known)
      return done()
    }
    authenticate(auth, credential).then(
      (principal) => {
        accept(request, principal)
        done()
      },
      (err: Error) => done(err),
    )
  })
  app.addHook('onResponse', (request, reply, done) => {
    metrics.finish(request, reply)
    done()
  })

  // Counted as soon as the caller is known, before the body is read: a flood of requests with
  // bad bodies is limited like any other. Routes with `config.rateLimit: false` are not counted.
  const limiter = new RateLimiter(opts.rateLimitPerMinute ?? 3000, 60_000, k.shared)
  app.addHook('onRequest', (request, reply, done) => {
    if (request.routeOptions.config.rateLimit === false) return done()
    limiter.hook(request, reply, done)
  })
  const routeHooks = arrangeRouteHooks(app, k.shared)
  app.addHook('onClose', async () => {
    limiter.close()
    routeHooks.close()
    await denied.close()
  })

  // Each route module gets the services it uses, and nothing else.
  const orgTx: OrgTx = (orgId, fn, o) => orgTxOf(k, orgId, fn, o)
  // The retention job needs the configured periods; the event system is built before the API.
  k.events.configureRetention({
    eventRetentionDays: k.config.eventRetentionDays,
    deliveryRetentionDays: k.config.deliveryRetentionDays,
  })
  registerIdempotency(app, { orgTx, secrets: k.secrets })
  registerHealthRoutes(app, { db: k.db, keys: k.keys, metrics, shared: k.shared, draining: opts.draining })
  await registerRefreshCookie(app, { publicUrl: k.config.publicUrl })
  await app.register(
    async (instance) => {
      const v1 = instance as unknown as Api
      registerAuthRoutes(v1, {
        db: k.db,
        sealer: k.sealer,
        tokens: k.tokens,
        loginLimiter: k.loginLimiter,
        revokedSessions: k.revokedSessions,
        authRateLimitPerMinute: limits.authRateLimitPerMinute,
        secondFactor: { db: k.db, secrets: k.secrets, sealer: k.sealer, loginLimiter: k.loginLimiter },
      })
      registerMfaRoutes(v1, {
        db: k.db,
        orgTx,
        secrets: k.secrets,
        loginLimiter: k.loginLimiter,
        authRateLimitPerMinute: limits.authRateLimitPerMinute,
      })
      registerSsoConfigRoutes(v1, { orgTx, secrets: k.secrets })
      registerSsoRoutes(v1, {
        db: k.db,
        orgTx,
        secrets: k.secrets,
        sealer: k.sealer,
        tokens: k.tokens,
        oidc: new OidcClients(k.events.egress),
        publicUrl: k.config.publicUrl,
        authRateLimitPerMinute: limits.authRateLimitPerMinute,
      })
      registerScimRoutes(v1, {
        db: k.db,
        orgTx,
        revocation: { revokedSessions: k.revokedSessions, orgStatus: k.orgStatus },
        publicUrl: k.config.publicUrl,
      })
      registerSessionRoutes(v1, { db: k.db })
      registerUserRoutes(v1, { orgTx, revocation: { revokedSessions: k.revokedSessions, orgStatus: k.orgStatus } })
      registerInvitationRoutes(v1, {
        orgTx,
        stillMissing: (p, missing, tx) => stillMissing(k, p, missing, tx),
        mailer: k.mailer,
      })
      registerPasswordRoutes(v1, {
        db: k.db,
        orgTx,
        sealer: k.sealer,
        mailer: k.mailer,
        loginLimiter: k.loginLimiter,
        // Three reset mails per address (and 30 requests per client address) every 15 minutes.
        resetLimiter: new LoginLimiter(3, 30, undefined, k.shared, 'password-reset'),
        revocation: { revokedSessions: k.revokedSessions, orgStatus: k.orgStatus },
        authRateLimitPerMinute: limits.authRateLimitPerMinute,
      })
      registerInvitationAcceptRoutes(v1, {
        orgTx,
        db: k.db,
        loginLimiter: k.loginLimiter,
        authRateLimitPerMinute: limits.authRateLimitPerMinute,
      })
      registerRoleRoutes(v1, { orgTx, stillMissing: (p, missing) => stillMissing(k, p, missing) })
      registerApiKeyRoutes(v1, { orgTx })
      const tenancy = { orgTx, db: k.db, orgStatus: k.orgStatus }
      registerPartnerRoutes(v1, tenancy)
      registerTenantRoutes(v1, tenancy)
      registerBrandingRoutes(v1, { db: k.db })
      registerAuditRoutes(v1, { orgTx })
      registerAuditVerifyRoutes(v1, { db: k.db })
      registerCheckpointRoutes(v1, {
        sealer: k.sealer,
        checkpoints: { db: k.db, keys: k.keys, events: k.events, logger: k.logger },
        config: k.config,
      })
      registerEventRoutes(v1, { orgTx })
      registerWebhookRoutes(v1, { orgTx, egress: k.events.egress, secrets: k.secrets })
      registerWebhookSecretRoutes(v1, { orgTx, secrets: k.secrets })
      registerWebhookDeliveryRoutes(v1, { orgTx, requeue: (id, org, attempts) => k.events.requeue(id, org, attempts) })
      registerPublisherRoutes(v1, { db: k.db, plugins: k.plugins })
      registerInstallationRoutes(v1, {
        orgTx,
        db: k.db,
        plugins: k.plugins,
        secrets: k.secrets,
        install: (tenantId, req, meta) => installVersion(k, tenantId, req, meta),
        dependentsOf: (tx, tenantId, plugin) => dependentsOf(k, tx, tenantId, plugin),
      })
      registerInvocationRoutes(v1, { orgTx, db: k.db, flushRecords: () => k.plugins.recorder.flush() })
      registerDetailWindowRoutes(v1, { orgTx, db: k.db, plugins: k.plugins })
      registerUpgradeRoutes(v1, {
        orgTx,
        db: k.db,
        plugins: k.plugins,
        installableVersion: (tx, plugin, version) => installableVersion(k, tx, plugin, version),
        switchVersion: (tx, inst, from, to, how) => switchVersion(k, tx, inst, from, to, how),
      })
      registerPluginRoutes(v1, { plugins: k.plugins })
      registerInstanceRoutes(v1, { orgTx, plugins: k.plugins, workflows: k.workflows })
      registerTaskRoutes(v1, { orgTx, clock: k.workflows.clock })
      registerTaskDecisionRoutes(v1, { orgTx, workflows: k.workflows })
      registerTaskSubjectRoutes(v1, { orgTx, plugins: k.plugins })
      registerAiRoutes(v1, { orgTx, secrets: k.secrets, ai: k.ai })
      registerKnowledgeRoutes(v1, { orgTx, knowledge: k.knowledge })
      registerMetricRoutes(v1, { orgTx, plugins: k.plugins, now: () => new Date(k.workflows.clock.now()) })
      registerKeyRoutes(v1, { orgTx, keyring: keyringFor(k.config.secretKey) })
      registerRetentionRoutes(v1, { orgTx })
      registerLegalHoldRoutes(v1, { orgTx })
      registerErasureRoutes(v1, {
        orgTx,
        store: k.plugins.data,
        keyring: keyringFor(k.config.secretKey),
        seal: (org) => k.sealer.sealTenant(org),
      })
      registerExportRoutes(v1, exportRouteDeps(k, orgTx))
      registerEvidenceRoutes(v1, evidenceRouteDeps(k, orgTx))
      registerAccessReviewRoutes(v1, {
        orgTx,
        revocation: { revokedSessions: k.revokedSessions, orgStatus: k.orgStatus },
        now: () => k.workflows.clock.now(),
      })
      for (const ext of opts.extensions ?? []) ext.routes?.(v1, k)
    },
    { prefix: '/v1' },
  )
  for (const ext of opts.extensions ?? []) await ext.pages?.(app, k)
  return app
}
