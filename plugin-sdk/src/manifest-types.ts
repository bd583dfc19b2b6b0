/**
 * Types of `trellis.plugin.json`, the plugin manifest. The JSON Schema that validates it is
 * published as `@trellis/plugin-sdk/schema/manifest.schema.json` and exported as
 * `manifestSchema`; `validateManifest()` applies it plus the checks JSON Schema cannot express.
 */
import type { ManifestPrompt } from './prompts.js'

/** A JSON Schema (draft 2020-12 keywords; validated when the manifest is). */
export type JsonSchema = { [keyword: string]: unknown } | boolean

/** HTTP methods a plugin route may use. */
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'

/** A permission the plugin contributes to the tenant's role editor. */
export interface ManifestPermission {
  /** Permission string, lower-case dotted, e.g. `orders.approve`. */
  name: string
  /** What holding it allows, for the tenant admin. */
  description: string
}

/** An index of a collection. */
export interface ManifestIndex {
  /** Indexed fields, in order. */
  fields: string[]
  /** Unique over the tenant's records. */
  unique?: boolean
}

/** A collection the plugin owns. */
export interface ManifestCollection {
  /**
   * JSON Schema of a record (without the kernel's `id`, `version`, `createdAt`, `updatedAt`).
   * Each top-level property may carry `classification` (`public`, `internal`, `confidential`,
   * `personal`, `sensitive-personal`); the kernel encrypts `personal` and `sensitive-personal`
   * fields at rest and answers only exact-match queries on them (docs/governance.md).
   */
  schema: JsonSchema
  /** Indexes the kernel creates. */
  indexes?: ManifestIndex[]
  /** Human description. */
  description?: string
}

/** An event type the plugin emits. */
export interface ManifestEmittedEvent {
  /** JSON Schema of the event's `data`. */
  schema: JsonSchema
  /** Human description. */
  description?: string
}

/** A route the plugin serves under `/v1/x/<plugin>`. */
export interface ManifestRoute {
  /** HTTP method. */
  method: HttpMethod
  /** Path pattern starting with `/`; `:name` segments are parameters. */
  path: string
  /** Permission the caller must hold (checked by the kernel before the plugin runs). */
  permission?: string
  /** Schemas the kernel validates against. */
  request?: { body?: JsonSchema; query?: JsonSchema; params?: JsonSchema }
  /** Response body schemas by status code (`"200"`, `"201"` …). */
  response?: Record<string, JsonSchema>
  /** Human description (OpenAPI summary). */
  description?: string
}

/** An action other plugins may call with `plugins:call:<this plugin>#<action>`. */
export interface ManifestAction {
  /** JSON Schema of the input. */
  input?: JsonSchema
  /** JSON Schema of the output. */
  output?: JsonSchema
  /** Human description. */
  description?: string
}

/** A workflow the plugin defines. */
export interface ManifestWorkflow {
  /** Step names: the first starts it; a plain return value leads to the next (compensation steps are skipped). */
  steps: string[]
  /** Human description. */
  description?: string
  /**
   * What starts an instance besides the API: tenant events, or a schedule — `everyMs`, or a
   * `cron` expression (five fields, or `@daily`, `@monthly`, …; `L` is the month's last day)
   * read in `timeZone` (IANA, default UTC), e.g. `{ cron: '0 2 * * *', timeZone: 'Europe/Berlin' }`.
   */
  start?: { events?: string[]; everyMs?: number; cron?: string; timeZone?: string }
  /** Event types its steps may wait for. */
  waitsFor?: string[]
  /** Retries of a failing step (default 2) and the first backoff (doubling). */
  retries?: { max?: number; backoffMs?: number }
  /** step → the step that undoes it when the workflow fails. */
  compensate?: Record<string, string>
}

/** `trellis.plugin.json`. */
export interface PluginManifest {
  /** Optional `$schema` reference for editors. */
  $schema?: string
  /** Package name, `@scope/name` (lower-case, digits, `-`). */
  name: string
  /** Semantic version of this release. */
  version: string
  /** One-line description. */
  description?: string
  /** Marketplace categories (lower-case words, e.g. `erp`, `pricing`). */
  categories?: string[]
  /** Engine compatibility. */
  engines: {
    /** Semver range of Trellis kernels the plugin runs on. */
    trellis: string
  }
  /** Capabilities asked of the tenant at install (see docs/plugin-authoring.md). */
  capabilities: string[]
  /** Permissions the plugin contributes. */
  permissions?: ManifestPermission[]
  /** JSON Schema (type object) of the installation's settings; properties with `"secret": true` are secrets. */
  settings?: JsonSchema
  /** Collections the plugin owns, by name. */
  collections?: Record<string, ManifestCollection>
  /** Events emitted (with payload schemas) and subscribed to. */
  events?: {
    /** Event types emitted, with their payload schema. */
    emits?: Record<string, ManifestEmittedEvent>
    /** Event types handled. */
    subscribes?: string[]
  }
  /** Routes served. */
  routes?: ManifestRoute[]
  /** Actions exposed to other plugins. */
  actions?: Record<string, ManifestAction>
  /** Workflows defined. */
  workflows?: Record<string, ManifestWorkflow>
  /** Other plugins this one needs, with semver ranges. */
  dependencies?: Record<string, string>
  /** Prompt templates its AI calls use (`ctx.ai.complete({ prompt, slots })`), shown in the marketplace review. */
  prompts?: Record<string, ManifestPrompt>
  /** Metrics over its collections, computed by the kernel (see docs/plugin-authoring.md, "Metrics and dashboards"). */
  metrics?: Record<string, ManifestMetric>
  /** Dashboards: panels over metrics, described as data for the console. */
  dashboards?: Record<string, ManifestDashboard>
  /** Screens the console renders for the plugin, as data (see docs/plugin-authoring.md, "Console screens"). */
  console?: ManifestConsole
}

/** The manifest's `console` section: pages over the plugin's own routes (`"GET /orders"`). */
export interface ManifestConsole {
  pages?: Array<{
    id: string
    title: string
    /** Shown only to callers holding it. */
    permission?: string
    list: {
      route: string
      /** The item field that fills the detail and action routes' `:param` (default `id`). */
      key?: string
      columns: Array<{ field: string; label: string }>
      filters?: Array<{ param: string; label: string; options?: string[] }>
    }
    detail?: {
      route: string
      /** The item's fields shown, in order (without them the item is shown as JSON). */
      fields?: Array<{ field: string; label: string }>
      /** Array fields of the item shown as tables (an order's lines, its exceptions). */
      tables?: Array<{ field: string; label: string; columns: Array<{ field: string; label: string }> }>
      /** The tasks this plugin's workflows opened about the item: those whose data `field` is the item's key. */
      tasks?: { field: string; label: string }
    }
    /** The route's request body schema is the form. */
    create?: { label: string; route: string }
    actions?: Array<{ label: string; route: string; confirm?: string; when?: Record<string, unknown> }>
  }>
}

/** A metric declaration: a measure over a collection, by time and dimensions. */
export interface ManifestMetric {
  title: string
  description?: string
  /** Permission (of the source plugin) a caller needs to see the metric. */
  permission: string
  /** `collection`, or `@scope/name:collection` with the `metrics:read:@scope/name` capability. */
  collection: string
  /** Each element of this array field is one row, its fields named `<as>.<field>`. */
  unnest?: { field: string; as: string }
  /** `{count: true}`, `{sum|avg|min|max: expr}`, `{countDistinct: field}`, `{ratio: {numerator, denominator}}`, each with an optional `when`. */
  measure: Record<string, unknown>
  /** Field with the row's date (`YYYY-MM-DD…`), or `createdAt` / `updatedAt`. */
  time: string
  /** Dimension name → field, or `{via, collection, key, field}` through another collection. */
  dimensions?: Record<string, string | { via: string; collection: string; key: string; field: string }>
  /** Which records count, in the query filter language. */
  filter?: Record<string, unknown>
  /** Decimal places of the answer. */
  decimals?: number
  /** How a console shows the value: `money`, `count`, `ratio`, `percent`, `days`, `number`. */
  unit?: string
}

/** One panel of a dashboard. */
export interface ManifestPanel {
  /** `series` (over time), `table` (by dimensions) or `number` (one value, with its comparison). */
  kind: string
  title: string
  /** Metric name as `GET /v1/metrics` lists it (`orders.net_sales`). */
  metric: string
  /** `day`, `week`, `month`, `quarter` or `year`. */
  grain?: string
  groupBy?: string[]
  /** A relative window: `P12M`, `P90D`, `P5Y` (ISO 8601 period, ending today). */
  window?: string
  /** For `number`: compare with the previous window or the same window a year before. */
  compare?: string
  limit?: number
}

/** A dashboard: a titled list of panels. */
export interface ManifestDashboard {
  title: string
  description?: string
  panels: ManifestPanel[]
}

/**
 * A manifest as TypeScript sees `import manifest from '../trellis.plugin.json' with { type: 'json' }`
 * (string literals widened); what `definePlugin` accepts. `trellis-plugin validate` checks the file itself.
 */
export type PluginManifestJson = Omit<PluginManifest, 'routes'> & {
  /** Routes served (see {@link ManifestRoute}). */
  routes?: Array<
    Omit<ManifestRoute, 'method' | 'response'> & { method: string; response?: Record<string, JsonSchema | undefined> }
  >
}
