/**
 * The isolate-safe part of the SDK: what a plugin bundle may contain. When `trellis-plugin
 * build` bundles a plugin, `@trellis/plugin-sdk` resolves to this file, so Node-only parts
 * (manifest validation, the CLI) never end up in a bundle.
 */
export {
  defineErrors,
  TrellisError,
  isTrellisError,
  problemOf,
  problemResponse,
  problem,
  problemFromError,
  rowsProblem,
  PROBLEM_TYPE_PREFIX,
  worded,
} from './errors.js'
export type {
  ErrorSpec,
  ErrorFactory,
  ErrorCatalog,
  Problem,
  ProblemResponse,
  RowProblem,
  WordedDetails,
  WordedError,
} from './errors.js'
export { definePlugin, collection, isPlugin, PLUGIN_MARK, ROUTE_KEY } from './define-plugin.js'
export { flow, defineWorkflow } from './workflow.js'
export { agentStep } from './agent-step.js'
export type { AgentAnswer, AgentDecision, AgentOutcome, AgentSpec } from './agent-step.js'
export type { StepDirective, HumanTaskSpec, TaskResult, WaitResult } from './workflow.js'
export type {
  ActionHandler,
  CollectionRef,
  EventHandler,
  Plugin,
  PluginDefinition,
  RouteHandler,
  WorkflowDefinition,
  WorkflowStepHandler,
} from './define-plugin.js'
export type {
  Caller,
  Collection,
  CollectionTypes,
  EmitOptions,
  FieldCondition,
  Filter,
  HttpRequestInit,
  HttpResponse,
  JsonValue,
  KnowledgeSearchOptions,
  Logger,
  Page,
  PluginContext,
  Query,
  RecordMeta,
  RouteRequest,
  RouteResponse,
  SettingsShape,
  SortKey,
  Stored,
  TenantInfo,
  TrellisEvent,
  WorkflowStarted,
  WorkflowStartOptions,
} from './context.js'
export type {
  AiCompleteAnswer,
  AiCompleteArgs,
  AiGenerateArgs,
  AiGenerationEventData,
  BundleEntries,
  BundleExports,
  EntryKind,
  HostOp,
  HostOps,
  LogLevel,
  PluginInvocationContext,
  RouteInput,
  RouteOutput,
  SandboxHost,
} from './protocol.js'
export { HOST_OPS } from './protocol.js'
export type {
  KnowledgeAnswer,
  KnowledgeAskArgs,
  KnowledgeCitation,
  KnowledgeDocument,
  KnowledgePassage,
  KnowledgeSearchArgs,
  KnowledgeSearchResult,
  KnowledgeWriteArgs,
} from './knowledge-types.js'
export type {
  MetricAnswer,
  MetricFilter,
  MetricForecast,
  MetricForecastArgs,
  MetricForecastOptions,
  MetricGrain,
  MetricQueryArgs,
  MetricQueryOptions,
} from './metrics-types.js'
export type {
  HttpMethod,
  JsonSchema,
  ManifestAction,
  ManifestCollection,
  ManifestEmittedEvent,
  ManifestIndex,
  ManifestPermission,
  ManifestRoute,
  ManifestWorkflow,
  PluginManifest,
  PluginManifestJson,
} from './manifest-types.js'
export { createBundle, createContext, bundleFromModule, entriesOf, checkQuery } from './runtime.js'
export { matchesEventPattern, hostAllowed, parseCapability } from './capabilities.js'
export type { Capability } from './capabilities.js'
export { SDK } from './sdk-errors.js'
