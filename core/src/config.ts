import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join, resolve } from 'node:path'
import { KRN } from './errors.js'
import { parseHttpLimits, type HttpLimits } from './http/server-limits.js'
import { parsePluginLimits, type PluginLimits } from './plugins/plugin-limits.js'
import { parseMailConfig, type MailConfig } from './mail/config.js'
import { passwordCost } from './identity/passwords.js'

export interface KernelConfig {
  /** PostgreSQL URL; absent means the embedded PGlite database under dataDir. */
  databaseUrl?: string
  /** Owner connection for migrations only; defaults to databaseUrl. */
  databaseAdminUrl?: string
  redisUrl?: string
  port: number
  host: string
  dataDir: string
  /** 32 bytes that encrypt secrets at rest (signing keys, plugin secrets). */
  secretKey: Buffer
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
  otlpEndpoint?: string
  /** Public URL the kernel is reached at; printed on start and used as the token issuer. */
  publicUrl: string
  /** Hosts, addresses and CIDRs outbound requests (webhooks) may reach although not public. */
  egressAllow: string[]
  /** Delay before each webhook retry, in ms; after the last one a delivery is dead-lettered. */
  webhookRetryScheduleMs: number[]
  /** Redis key prefix of the event queue (BullMQ). */
  queuePrefix: string
  /** Processed events older than this many days are purged from the outbox. */
  eventRetentionDays: number
  /** Finished webhook deliveries (and their attempts) older than this many days are purged. */
  deliveryRetentionDays: number
  /** HTTP server timeouts and the sign-in rate limit (defaults: DEFAULT_HTTP_LIMITS). */
  httpLimits?: HttpLimits
  /** Plugin invocation and transaction limits (TRELLIS_PLUGIN_*; unset ones take the host's defaults). */
  pluginLimits?: PluginLimits
  /** At most this many event-queue jobs per tenant (TRELLIS_QUEUE_TENANT_CAP); more waits in the outbox. */
  queueTenantCap?: number
  /** How often each audit chain's head is signed and published (TRELLIS_AUDIT_CHECKPOINT_INTERVAL); 0: only on demand. */
  auditCheckpointIntervalMs?: number
  /** Directory signed audit checkpoints are appended to (TRELLIS_AUDIT_CHECKPOINT_DIR), besides the event. */
  auditCheckpointDir?: string
  /** Outgoing mail (TRELLIS_SMTP_URL, TRELLIS_MAIL_FROM, TRELLIS_MAIL_LINK_URL); absent: no mail is sent. */
  mail?: MailConfig
  /** What this process runs (TRELLIS_ROLE): `all` (the embedded default), `api` (HTTP only) or `worker` (queues, sweepers, sealer). */
  role?: ProcessRole
  /** Which proxies' forwarded headers are believed for the client address (TRELLIS_TRUST_PROXY); false by default. */
  trustProxy?: TrustProxy
  /** How long a stopping process waits for in-flight requests and running jobs (TRELLIS_DRAIN_TIMEOUT); default 25 s. */
  drainTimeoutMs?: number
}

/** What one kernel process runs; see docs/operations.md (the role table). */
export type ProcessRole = 'all' | 'api' | 'worker'
export const PROCESS_ROLES: readonly ProcessRole[] = ['all', 'api', 'worker']

/** Fastify's `trustProxy`: nothing, every hop, a number of hops, or the proxies' addresses and CIDRs. */
export type TrustProxy = boolean | number | string[]

/** Parses TRELLIS_TRUST_PROXY: `false`/`true`, a hop count, or a comma-separated list of addresses and CIDRs. */
export function parseTrustProxy(value: string | undefined): TrustProxy {
  const v = value?.trim() ?? ''
  if (v === '' || v === 'false') return false
  if (v === 'true') return true
  if (/^\d+$/.test(v)) {
    if (Number(v) < 1 || Number(v) > 10) bad('TRELLIS_TRUST_PROXY', 'as a hop count is a whole number from 1 to 10')
    return Number(v)
  }
  const list = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  for (const entry of list)
    if (!/^[0-9a-fA-F.:]+(\/\d{1,3})?$/.test(entry) && !['loopback', 'linklocal', 'uniquelocal'].includes(entry))
      bad('TRELLIS_TRUST_PROXY', `${entry} is not an address, a CIDR, loopback, linklocal or uniquelocal`)
  return list
}

/** The Standard Webhooks retry schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h. */
export const DEFAULT_RETRY_SCHEDULE_MS = [5, 300, 1800, 7200, 18000, 36000, 36000].map((s) => s * 1000)

function parseDuration(variable: string, value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim())
  if (!m) bad(variable, 'is a comma-separated list of durations such as 5s,5m,2h')
  const n = Number(m[1])
  return Math.round(n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'])
}

function parseDays(variable: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value.trim() === '') return fallback
  if (!/^\d+$/.test(value.trim()) || Number(value) < 1 || Number(value) > 36_500)
    bad(variable, 'must be a whole number of days from 1 to 36500')
  return Number(value)
}

/** How long processed events and finished webhook deliveries are kept, by default. */
export const DEFAULT_RETENTION_DAYS = 30

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

function bad(variable: string, reason: string): never {
  throw KRN.CONFIG_INVALID({ variable, reason })
}

function parseUrl(variable: string, value: string, protocols: string[]): string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    bad(variable, 'is not a URL')
  }
  if (!protocols.includes(url.protocol)) bad(variable, `must start with ${protocols.map((p) => `${p}//`).join(' or ')}`)
  return value
}

function parseSecretKey(value: string): Buffer {
  const key = /^[0-9a-f]{64}$/i.test(value) ? Buffer.from(value, 'hex') : Buffer.from(value, 'base64')
  if (key.length !== 32) bad('TRELLIS_SECRET_KEY', 'must be 32 bytes, as 64 hex characters or base64')
  return key
}

/**
 * Reads and validates the kernel's configuration from the environment. On the embedded default a
 * missing TRELLIS_SECRET_KEY is generated once into the data directory; with DATABASE_URL it is
 * required, because several processes must share it.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<KernelConfig> = {}): KernelConfig {
  const databaseUrl = env.DATABASE_URL
    ? parseUrl('DATABASE_URL', env.DATABASE_URL, ['postgres:', 'postgresql:'])
    : undefined
  const databaseAdminUrl = env.DATABASE_ADMIN_URL
    ? parseUrl('DATABASE_ADMIN_URL', env.DATABASE_ADMIN_URL, ['postgres:', 'postgresql:'])
    : undefined
  if (databaseAdminUrl && !databaseUrl) bad('DATABASE_ADMIN_URL', 'needs DATABASE_URL as well')
  const redisUrl = env.REDIS_URL ? parseUrl('REDIS_URL', env.REDIS_URL, ['redis:', 'rediss:']) : undefined

  let port = 3000
  if (env.PORT !== undefined && env.PORT !== '') {
    if (!/^\d+$/.test(env.PORT) || Number(env.PORT) > 65535) bad('PORT', 'must be a whole number from 0 to 65535')
    port = Number(env.PORT)
  }
  const host = env.HOST || '127.0.0.1'
  const dataDir = resolve(env.TRELLIS_DATA_DIR || '.trellis')

  const logLevel = (env.LOG_LEVEL || 'info') as KernelConfig['logLevel']
  if (!LOG_LEVELS.includes(logLevel)) bad('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}`)

  let secretKey: Buffer
  if (env.TRELLIS_SECRET_KEY) secretKey = parseSecretKey(env.TRELLIS_SECRET_KEY)
  else if (databaseUrl)
    bad('TRELLIS_SECRET_KEY', 'is required when DATABASE_URL is set (generate one with: openssl rand -hex 32)')
  else secretKey = embeddedSecretKey(dataDir)

  const otlpEndpoint = env.OTEL_EXPORTER_OTLP_ENDPOINT
    ? parseUrl('OTEL_EXPORTER_OTLP_ENDPOINT', env.OTEL_EXPORTER_OTLP_ENDPOINT, ['http:', 'https:'])
    : undefined
  const publicUrl = env.TRELLIS_PUBLIC_URL
    ? parseUrl('TRELLIS_PUBLIC_URL', env.TRELLIS_PUBLIC_URL, ['http:', 'https:'])
    : `http://${host.includes(':') ? `[${host}]` : host}:${port}`
  const egressAllow = (env.TRELLIS_EGRESS_ALLOW ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  const webhookRetryScheduleMs = env.TRELLIS_WEBHOOK_RETRY_SCHEDULE
    ? env.TRELLIS_WEBHOOK_RETRY_SCHEDULE.split(',').map((v) => parseDuration('TRELLIS_WEBHOOK_RETRY_SCHEDULE', v))
    : DEFAULT_RETRY_SCHEDULE_MS
  if (webhookRetryScheduleMs.length > 20) bad('TRELLIS_WEBHOOK_RETRY_SCHEDULE', 'has at most 20 retries')
  const queuePrefix = env.TRELLIS_QUEUE_PREFIX || 'trellis'
  const eventRetentionDays = parseDays(
    'TRELLIS_EVENT_RETENTION_DAYS',
    env.TRELLIS_EVENT_RETENTION_DAYS,
    DEFAULT_RETENTION_DAYS,
  )
  const deliveryRetentionDays = parseDays(
    'TRELLIS_DELIVERY_RETENTION_DAYS',
    env.TRELLIS_DELIVERY_RETENTION_DAYS,
    DEFAULT_RETENTION_DAYS,
  )
  const httpLimits = parseHttpLimits(env)
  const pluginLimits = parsePluginLimits(env)
  const queueTenantCap = env.TRELLIS_QUEUE_TENANT_CAP?.trim() ? Number(env.TRELLIS_QUEUE_TENANT_CAP) : 1000
  if (!Number.isInteger(queueTenantCap) || queueTenantCap < 1 || queueTenantCap > 2_000_000)
    bad('TRELLIS_QUEUE_TENANT_CAP', 'must be a whole number from 1 to 2000000')
  const auditCheckpointIntervalMs = env.TRELLIS_AUDIT_CHECKPOINT_INTERVAL?.trim()
    ? parseDuration('TRELLIS_AUDIT_CHECKPOINT_INTERVAL', env.TRELLIS_AUDIT_CHECKPOINT_INTERVAL)
    : 3_600_000
  const auditCheckpointDir = env.TRELLIS_AUDIT_CHECKPOINT_DIR?.trim()
    ? resolve(env.TRELLIS_AUDIT_CHECKPOINT_DIR.trim())
    : undefined
  const role = (env.TRELLIS_ROLE?.trim() || 'all') as ProcessRole
  if (!PROCESS_ROLES.includes(role)) bad('TRELLIS_ROLE', `must be one of ${PROCESS_ROLES.join(', ')}`)
  if (role !== 'all' && !databaseUrl)
    bad('TRELLIS_ROLE', `${role} needs DATABASE_URL: separate processes share one PostgreSQL database`)
  if (role !== 'all' && !env.TRELLIS_PUBLIC_URL)
    bad(
      'TRELLIS_PUBLIC_URL',
      `is required with TRELLIS_ROLE=${role}: every process issues and accepts tokens for that one URL`,
    )
  const trustProxy = parseTrustProxy(env.TRELLIS_TRUST_PROXY)
  // Checked here so a bad value stops `trellis start` with one line, not the first sign-in.
  passwordCost(env)
  const drainTimeoutMs = env.TRELLIS_DRAIN_TIMEOUT?.trim()
    ? parseDuration('TRELLIS_DRAIN_TIMEOUT', env.TRELLIS_DRAIN_TIMEOUT)
    : 25_000
  return {
    databaseUrl,
    databaseAdminUrl,
    redisUrl,
    port,
    host,
    dataDir,
    secretKey,
    logLevel,
    otlpEndpoint,
    publicUrl,
    egressAllow,
    webhookRetryScheduleMs,
    queuePrefix,
    eventRetentionDays,
    deliveryRetentionDays,
    httpLimits,
    pluginLimits,
    queueTenantCap,
    auditCheckpointIntervalMs,
    auditCheckpointDir,
    mail: parseMailConfig(env),
    role,
    trustProxy,
    drainTimeoutMs,
    ...overrides,
  }
}

function embeddedSecretKey(dataDir: string): Buffer {
  const file = join(dataDir, 'secret.key')
  if (existsSync(file)) return parseSecretKey(readFileSync(file, 'utf8').trim())
  mkdirSync(dataDir, { recursive: true })
  const key = randomBytes(32)
  writeFileSync(file, `${key.toString('hex')}\n`, { mode: 0o600 })
  return key
}
