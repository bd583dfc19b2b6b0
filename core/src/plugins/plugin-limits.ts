import { KRN } from '../errors.js'

/**
 * Operator-settable limits of the plugin host (see docs/operations.md); each unset one takes its
 * default, which for the transaction limits depends on the database (embedded or PostgreSQL).
 */
export interface PluginLimits {
  /** Invocations one tenant may run at once in one process. */
  maxInvocationsPerTenant?: number
  /** Invocations one installation may run at once in one process. */
  maxInvocationsPerInstallation?: number
  /** Longest an invocation may leave its open transaction unused before it is rolled back. */
  transactionIdleMs?: number
  /** The same, while others wait for a connection, for a tenant that overran the limit before. */
  transactionContendedIdleMs?: number
  /** Plugin transactions one tenant may hold at once in one process. */
  transactionsPerTenant?: number
}

const VARIABLES: Record<keyof PluginLimits, string> = {
  maxInvocationsPerTenant: 'TRELLIS_PLUGIN_MAX_INVOCATIONS_PER_TENANT',
  maxInvocationsPerInstallation: 'TRELLIS_PLUGIN_MAX_INVOCATIONS_PER_INSTALLATION',
  transactionIdleMs: 'TRELLIS_PLUGIN_TX_IDLE_MS',
  transactionContendedIdleMs: 'TRELLIS_PLUGIN_TX_CONTENDED_IDLE_MS',
  transactionsPerTenant: 'TRELLIS_PLUGIN_TX_PER_TENANT',
}

/** Defaults of the limits (the transactions a tenant may hold depend on the pool). */
export const PLUGIN_LIMIT_DEFAULTS = {
  maxInvocationsPerTenant: 32,
  maxInvocationsPerInstallation: 16,
  transactionIdleMs: 1000,
  transactionContendedIdleMs: 25,
} as const

/**
 * The limits in force: those given in code win over the operator's environment, then the
 * defaults (a tenant may hold half the pool's connections, at least one).
 */
export function resolvePluginLimits(
  fromEnv: PluginLimits | undefined,
  fromCode: PluginLimits,
  db: { embedded: boolean; poolMax: number },
): Required<PluginLimits> {
  const pick = <K extends keyof PluginLimits>(key: K): number | undefined => fromCode[key] ?? fromEnv?.[key]
  return {
    maxInvocationsPerTenant: pick('maxInvocationsPerTenant') ?? PLUGIN_LIMIT_DEFAULTS.maxInvocationsPerTenant,
    maxInvocationsPerInstallation:
      pick('maxInvocationsPerInstallation') ?? PLUGIN_LIMIT_DEFAULTS.maxInvocationsPerInstallation,
    transactionIdleMs: pick('transactionIdleMs') ?? PLUGIN_LIMIT_DEFAULTS.transactionIdleMs,
    transactionContendedIdleMs: pick('transactionContendedIdleMs') ?? PLUGIN_LIMIT_DEFAULTS.transactionContendedIdleMs,
    transactionsPerTenant: pick('transactionsPerTenant') ?? Math.max(1, Math.floor(db.poolMax / 2)),
  }
}

/** Reads the plugin host's limits from the environment; each is a whole number from 1 up. */
export function parsePluginLimits(env: NodeJS.ProcessEnv): PluginLimits {
  const limits: PluginLimits = {}
  for (const [field, variable] of Object.entries(VARIABLES) as Array<[keyof PluginLimits, string]>) {
    const value = env[variable]?.trim()
    if (value === undefined || value === '') continue
    if (!/^\d{1,9}$/.test(value) || Number(value) < 1)
      throw KRN.CONFIG_INVALID({ variable, reason: 'must be a whole number from 1 up' })
    limits[field] = Number(value)
  }
  return limits
}
