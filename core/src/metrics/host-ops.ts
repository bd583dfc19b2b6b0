/**
 * The `metrics.query` and `metrics.forecast` host operations: a plugin reads the tenant's
 * metrics through the same catalog, query and forecast the HTTP routes use, in the invocation's
 * transaction (its tenant, under row-level security). A plugin reads its own metrics with
 * `metrics:read`, another plugin's with `metrics:read:<plugin>`; the capability is checked once
 * the metric, and so its plugin, is known.
 */
import type { Capability, HostOps } from '@trellis/plugin-sdk'
import type { Tx } from '../db/database.js'
import type { Installation } from '../plugins/installations.js'
import type { PluginVersion } from '../plugins/versions.js'
import { forecastMetric } from '../insights/forecast.js'
import { answerMetric } from './answer.js'
import { availableMetrics } from './catalog.js'
import { MET } from './errors.js'
import { parseMetricQuery } from './query.js'

/** What the host operations read the tenant's installations from, in a transaction. */
export interface MetricsHostSource {
  installed(tenantId: string, tx: Tx): Promise<{ byPlugin: Map<string, Installation> }>
  versionOf(tx: Tx, inst: Installation): Promise<PluginVersion>
}

/** The calling plugin's invocation, as the metric host operations need it. */
export interface MetricsCaller {
  plugin: string
  tenantId: string
  caps: readonly Capability[]
  inTx<R>(fn: (tx: Tx) => Promise<R>): Promise<R>
  /** Refuses the call (audited), throwing `KRN_ERR_CAPABILITY_DENIED`. */
  deny(target: string, reason: string): never
  /** Records the capability's use (audited). */
  use(target: string): void
}

export type MetricsOp = 'metrics.query' | 'metrics.forecast'

/** Whether the plugin holds any `metrics:read` capability (checked before the arguments are valid). */
export function mayReadMetrics(caps: readonly Capability[]): boolean {
  return caps.some((c) => c.kind === 'metrics:read')
}

/** The query string the HTTP routes read, from a host call's arguments: one validation for both. */
function queryString(a: HostOps['metrics.query']['args'] | HostOps['metrics.forecast']['args']) {
  const raw: Record<string, string> = {}
  if (a.grain !== undefined) raw.grain = a.grain
  if (a.from !== undefined) raw.from = a.from
  if (a.to !== undefined) raw.to = a.to
  if (a.filter !== undefined) raw.filter = JSON.stringify(a.filter)
  if ('groupBy' in a && a.groupBy !== undefined) raw.groupBy = a.groupBy.join(',')
  if ('limit' in a && a.limit !== undefined) raw.limit = String(a.limit)
  return raw
}

/** Runs a validated metrics host call for `caller`. */
export async function metricsCall(
  source: MetricsHostSource,
  caller: MetricsCaller,
  op: MetricsOp,
  args: HostOps['metrics.query']['args'] | HostOps['metrics.forecast']['args'],
): Promise<unknown> {
  const all = await availableMetrics(
    {
      installed: (tenantId) => caller.inTx((tx) => source.installed(tenantId, tx)),
      currentVersion: (_tenantId, inst) => caller.inTx((tx) => source.versionOf(tx, inst)),
    },
    caller.tenantId,
  )
  const m = all.get(args.metric)
  const owner = m?.plugin
  const granted = caller.caps.some(
    (c) =>
      c.kind === 'metrics:read' &&
      (c.plugin === owner || (owner === caller.plugin && c.plugin === undefined) || owner === undefined),
  )
  if (!granted) caller.deny(args.metric, `${caller.plugin} may not read metrics of ${owner}`)
  if (!m) throw MET.NOT_FOUND({ name: args.metric })
  caller.use(args.metric)
  const deps = {
    orgTx: <T>(_orgId: string, fn: (tx: Tx) => Promise<T>) => caller.inTx(fn),
    today: () => new Date().toISOString().slice(0, 10),
  }
  const query = parseMetricQuery(queryString(args), m.declaration)
  if (op === 'metrics.query') return answerMetric(deps, caller.tenantId, m, query)
  const a = args as HostOps['metrics.forecast']['args']
  const rest: Record<string, unknown> = {}
  if (a.horizon !== undefined) rest.horizon = String(a.horizon)
  if (a.season !== undefined) rest.season = String(a.season)
  return forecastMetric(deps, caller.tenantId, m, { ...query, grain: a.grain }, rest)
}
