/**
 * The services an extension may ask the kernel for. Each is narrow and typed; an extension
 * declares the ones it uses (see {@link defineExtension}) and is given exactly those.
 */
import type { Logger } from 'pino'
import type { PluginManifest } from '@trellis/plugin-sdk'
import type { AuditRecord } from '../audit/audit-log.js'
import type { EmitInput } from '../events/outbox.js'
import type { InternalFetchTarget } from '@trellis/plugin-sdk'
import type { VersionRegistry } from './version-registry.js'
import type { MembershipService, OrganisationService } from './organisations.js'

/** A transaction as an extension sees it: parameterised SQL (`?` placeholders) and the organisation switch. */
export interface ExtensionTx {
  sql<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>
  /** Acts in another organisation from here on (row-level security follows); switch back when done. */
  useOrg(orgId: string): Promise<void>
}

/** The tenant transaction: row-level security set for the organisation, audit sealed and events dispatched once it commits. */
export interface TransactionService {
  /** Runs `fn` in `orgId`'s transaction; refuses a suspended organisation unless `allowSuspended`. */
  run<T>(orgId: string, fn: (tx: ExtensionTx) => Promise<T>, opts?: { allowSuspended?: boolean }): Promise<T>
  /** A transaction for reading only (nothing to seal or dispatch afterwards). */
  read<T>(orgId: string, fn: (tx: ExtensionTx) => Promise<T>): Promise<T>
}

/** Appends to an organisation's hash-chained audit log, inside the caller's transaction. */
export interface AuditService {
  append(tx: ExtensionTx, orgId: string, ...records: AuditRecord[]): Promise<void>
}

/** Writes events to the outbox, inside the caller's transaction (delivered once it commits). */
export interface EventService {
  /** Into the transaction's current organisation's stream; returns the event ids. */
  emit(tx: ExtensionTx, ...events: EmitInput[]): Promise<string[]>
  /** A copy into each of `orgs` (the transaction is left acting in `current`). */
  emitTo(
    tx: ExtensionTx,
    current: string,
    orgs: ReadonlyArray<string | null | undefined>,
    ...events: EmitInput[]
  ): Promise<void>
}

/** What an install asks for (an approved version, the consent, settings). */
export interface InstallRequest {
  plugin: string
  version: string
  capabilities: string[]
  settings: Record<string, unknown>
  mount?: string
  installedBy: string
}

/** The plugin host, as far as an extension needs it. */
export interface PluginService {
  /** Loads a bundle in the sandbox and returns the entries it declares (throws when it does not load). */
  probe(bundle: {
    id: string
    version: string
    code: string
    sha256: string
    sourceMap?: string
  }): Promise<Record<string, string[]>>
  /** The plugins installed in a tenant, by name. */
  installedPlugins(tenantId: string): Promise<ReadonlySet<string>>
  /** Installs an approved version for a tenant exactly as the install route does (every policy, consent, audit, event). */
  install(
    tenantId: string,
    req: InstallRequest,
    meta: Pick<AuditRecord, 'actor' | 'ip' | 'requestId'>,
  ): Promise<{ id: string }>
  /** Whether the operator's egress allow-list lets a plugin reach an internal `http:fetch` target. */
  egressAllows(target: InternalFetchTarget): boolean
}

/** A version as an install policy sees it. */
export interface PolicyVersion {
  id: string
  name: string
  version: string
  manifest: PluginManifest
}

/** A typed reference to a service; an extension lists the ones it needs in `deps`. */
export interface ServiceRef<T> {
  readonly id: string
  /** Type carrier only (never set). */
  readonly __type?: T
}

const ref = <T>(id: string): ServiceRef<T> => Object.freeze({ id }) as ServiceRef<T>

/** The services the kernel provides. */
export const coreServices = Object.freeze({
  transactions: ref<TransactionService>('core.transactions'),
  audit: ref<AuditService>('core.audit'),
  events: ref<EventService>('core.events'),
  versions: ref<VersionRegistry>('core.versions'),
  plugins: ref<PluginService>('core.plugins'),
  organisations: ref<OrganisationService>('core.organisations'),
  memberships: ref<MembershipService>('core.memberships'),
  logger: ref<Logger>('core.logger'),
})

/** The service a reference stands for. */
export type ServiceOf<R> = R extends ServiceRef<infer T> ? T : never
