import { defineErrors } from '@trellis/plugin-sdk'

/** Metric and insight errors: unknown metrics, bad queries, malformed declarations. */
export const MET = defineErrors('MET', {
  NOT_FOUND: {
    status: 404,
    title: 'Metric not found',
    message: (d: { name: string }) => `no metric ${d.name} is available to you (GET /v1/metrics lists those that are)`,
  },
  QUERY_INVALID: {
    status: 400,
    title: 'Metric query did not validate',
    message: (d: { field: string; reason: string; allowed?: string[] }) =>
      `${d.field}: ${d.reason}${d.allowed ? ` (allowed: ${d.allowed.join(', ') || 'none'})` : ''}`,
  },
  DECLARATION_INVALID: {
    status: 500,
    title: 'Metric declaration is malformed',
    message: (d: { at: string; reason: string }) => `the metric's declaration at ${d.at}: ${d.reason}`,
  },
  SOURCE_UNAVAILABLE: {
    status: 409,
    title: 'Metric source unavailable',
    message: (d: { name: string; reason: string }) => `${d.name} cannot be answered: ${d.reason}`,
  },
  SERIES_TOO_SHORT: {
    status: 422,
    title: 'Series too short',
    message: (d: { need: number; have: number; method: string }) =>
      `${d.method} needs at least ${d.need} complete periods; the series has ${d.have}`,
  },
  RULE_INVALID: {
    status: 400,
    title: 'Alert rule did not validate',
    message: (d: { field: string; reason: string; allowed?: string[] }) =>
      `${d.field}: ${d.reason}${d.allowed ? ` (allowed: ${d.allowed.join(', ')})` : ''}`,
  },
  RULE_NOT_FOUND: {
    status: 404,
    title: 'Alert rule not found',
    message: (d: { id: string }) => `no alert rule ${d.id} on a metric you may read`,
  },
  ROLLUP_NOT_FOUND: {
    status: 404,
    title: 'Rollup not found',
    message: (d: { id: string }) => `no rollup ${d.id} of a metric you may read`,
  },
  ROLLUP_EXISTS: {
    status: 409,
    title: 'Rollup exists',
    message: (d: { id: string }) => `the same series is already materialised by rollup ${d.id}`,
  },
  ROLLUP_UNSUPPORTED: {
    status: 422,
    title: 'Metric cannot be materialised',
    message: (d: { name: string; reason: string }) => `${d.name} cannot be rolled up: ${d.reason}`,
  },
})
