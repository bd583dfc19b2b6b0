/**
 * Metric declarations as a plugin's manifest holds them (`metrics` section) and the query a
 * caller asks of one. See docs/plugin-authoring.md, "Metrics and dashboards".
 */

/** A numeric expression over a record: a field, a number, or arithmetic of expressions. */
export type MetricExpr =
  | string
  | number
  | { mul: MetricExpr[] }
  | { add: MetricExpr[] }
  | { sub: [MetricExpr, MetricExpr] }
  | { div: [MetricExpr, MetricExpr] }

/** A condition comparing two values (fields or constants), or combining conditions. */
export type MetricCondition =
  | { gt: [MetricExpr, MetricExpr] }
  | { gte: [MetricExpr, MetricExpr] }
  | { lt: [MetricExpr, MetricExpr] }
  | { lte: [MetricExpr, MetricExpr] }
  | { eq: [MetricExpr, MetricExpr] }
  | { ne: [MetricExpr, MetricExpr] }
  | { present: string }
  | { absent: string }
  | { and: MetricCondition[] }
  | { or: MetricCondition[] }
  | { not: MetricCondition }

/** What is aggregated. `when` restricts the rows the aggregate sees. */
export type MetricMeasure =
  | { count: true; when?: MetricCondition }
  | { sum: MetricExpr; when?: MetricCondition }
  | { avg: MetricExpr; when?: MetricCondition }
  | { min: MetricExpr; when?: MetricCondition }
  | { max: MetricExpr; when?: MetricCondition }
  | { countDistinct: string; when?: MetricCondition }
  | { ratio: { numerator: MetricMeasure; denominator: MetricMeasure } }

/**
 * A dimension: a field of the row (`customer`, `line.sku`), or a field of a record of another
 * collection found by key (`{ via: 'customer', collection: 'customers', key: 'code', field:
 * 'country' }`). `collection` may name another plugin's collection as `@scope/name:collection`
 * when the declaring plugin holds `metrics:read:@scope/name`.
 */
export type MetricDimension = string | { via: string; collection: string; key: string; field: string }

/** One declared metric. */
export interface MetricDeclaration {
  title: string
  description?: string
  /** Permission of the source plugin a caller needs to see the metric. */
  permission: string
  /** Source collection (`orders`, or `@scope/name:collection` with consent). */
  collection: string
  /** Each element of this array field is one row, its fields named `<as>.<field>`. */
  unnest?: { field: string; as: string }
  measure: MetricMeasure
  /** Field holding the row's time (`YYYY-MM-DD…` text, or `createdAt`/`updatedAt`). */
  time: string
  dimensions?: Record<string, MetricDimension>
  /** SDK filter language over the source records: which records count. */
  filter?: Record<string, unknown>
  /** Decimal places of the answer (half away from zero); counts are integers. */
  decimals?: number
  /** `money`, `count`, `ratio`, `percent`, `days`, `number`: how a console shows it. */
  unit?: string
}

export const GRAINS = ['day', 'week', 'month', 'quarter', 'year'] as const
export type Grain = (typeof GRAINS)[number]

/** What a caller asks of a metric. */
export interface MetricQuery {
  /** Inclusive start (date or date-time). */
  from?: string
  /** Exclusive end. */
  to?: string
  grain?: Grain
  groupBy?: string[]
  /** Dimension → value or values. */
  filter?: Record<string, string | number | boolean | Array<string | number | boolean>>
  limit?: number
  /** Answer from the records even when a rollup could answer. */
  live?: boolean
}

/** One row of an answer: the period (when a grain is asked), the dimension values, the value. */
export interface MetricRow {
  period?: string
  dims: Record<string, string | null>
  value: number | string | null
}

/** A metric with the plugin that declares it. */
export interface ResolvedMetric {
  /** `<plugin-short-name>.<metric>`, e.g. `orders.net_sales`; unique per tenant. */
  name: string
  plugin: string
  metric: string
  declaration: MetricDeclaration
}
