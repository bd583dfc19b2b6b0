/**
 * The contract between the SDK's Node-side tools (the test harness, `trellis-plugin dev`) and
 * the kernel: the composition root, `@trellis/platform`, exports `startDevKernel` implementing
 * {@link StartDevKernel}. The SDK depends on nothing of ours: the platform is an optional peer
 * dependency, loaded at run time only by the tools that run a plugin for real, so a plugin's
 * tests run against the real kernel, database and sandbox — nothing that could drift from
 * production.
 */
import { fileURLToPath } from 'node:url'
import type { JsonValue } from './context.js'
import { SDK } from './sdk-errors.js'

/** A built plugin: what `trellis-plugin build` writes. */
export interface DevBundle {
  /** The parsed `trellis.plugin.json`. */
  manifest: Record<string, unknown>
  /** `dist/plugin.js`. */
  code: string
  /** `dist/plugin.js.map`. */
  sourceMap?: string
}

/** An HTTP answer of the dev kernel. */
export interface DevResponse<B = unknown> {
  status: number
  headers: Record<string, string>
  /** Parsed JSON, or the text when the answer is not JSON, or null when empty. */
  body: B
}

/** One invocation record (as `GET /v1/installations/:id/invocations` shows it). */
export interface DevInvocation {
  id: string
  plugin: string
  version: string
  entryKind: string
  entryName: string
  callerKind: string
  outcome: 'ok' | 'error'
  errorCode: string | null
  wallMs: number
  cpuMs: number
  hostCalls: number
  logs: Array<{ level: string; message: string; fields?: Record<string, unknown>; time: string }>
}

/** A stored event (the outbox row). */
export interface DevEvent {
  id: string
  type: string
  source: string
  subject: string
  data: unknown
  time: string
}

/** A running kernel with one tenant, for one developer or one test file. */
export interface DevKernel {
  /** Base URL when listening (dev), otherwise undefined (tests use in-process requests). */
  url: string | undefined
  /** Where its database came from. */
  database: {
    kind: 'embedded' | 'postgres'
    /** The cached migrated database it was loaded from (embedded, unless `cacheDir` is false or unusable). */
    template?: string
    /** True when this start made that cache: the first start for this kernel's schema. */
    templateMade?: boolean
    /**
     * Set when this is a tenant of the warm kernel kept running between runs (see
     * `trellis-plugin dev-kernel`): its process and when it started.
     */
    warm?: { pid: number; startedAt: string; reused: boolean }
  }
  /** The development tenant and its admin (who holds every permission the plugin contributes). */
  tenant: { id: string; slug: string; adminEmail: string; adminPassword: string; token: string }
  /**
   * Registers the bundle and installs it for the tenant with every capability it requests (or
   * switches the installation to it when the plugin is installed already). A bundle whose
   * version is registered with other code gets a `+dev.N` build suffix.
   */
  install(
    bundle: DevBundle,
    options?: { settings?: Record<string, JsonValue> },
  ): Promise<{ installationId: string; version: string; mount: string }>
  /** A request through the whole HTTP stack as the tenant admin (or with `token`). */
  request(
    method: string,
    path: string,
    init?: { body?: unknown; headers?: Record<string, string>; token?: string },
  ): Promise<DevResponse>
  /** Runs an action or event entry of the installed plugin in the sandbox, in its own transaction. */
  invoke(plugin: string, kind: 'action' | 'event', name: string, input: unknown): Promise<unknown>
  /** Emits an event into the tenant (source `test`) and delivers it to the plugin's handler for it, if any. */
  emit(plugin: string, type: string, data: unknown, subject?: string): Promise<DevEvent>
  /** The plugin's records in the tenant, by collection. */
  records(plugin: string, collection: string): Promise<Array<Record<string, unknown>>>
  /** Events the plugin emitted in the tenant, oldest first. */
  events(plugin: string): Promise<DevEvent[]>
  /** The plugin's invocation records, newest first. */
  invocations(plugin: string): Promise<DevInvocation[]>
  /** Calls `listener` with every invocation of this tenant as it finishes; returns an unsubscribe function. */
  onInvocation(listener: (inv: DevInvocation) => void): () => void
  /**
   * Another tenant of the same kernel, with its own admin: what it installs, stores and emits is
   * its own. Closing the view it returns leaves the kernel running.
   */
  openTenant(options?: { slug?: string }): Promise<DevKernel>
  /** Stops the kernel (for a view from {@link DevKernel.openTenant}: lets go of that tenant only). */
  close(): Promise<void>
}

/** Options of {@link StartDevKernel}. */
export interface DevKernelOptions {
  /** Listen on this port (0: any free one); omit to not listen at all. */
  port?: number
  /** Host to listen on (default 127.0.0.1). */
  host?: string
  /** Slug of the development tenant (default `dev`). */
  tenantSlug?: string
  /** pino log level of the kernel (default `silent`). */
  logLevel?: string
  /** Hosts the plugin's `ctx.http.fetch` may reach although they are private (e.g. `127.0.0.1` for a local mock). */
  egressAllow?: string[]
  /**
   * A PostgreSQL database (URL) to run on instead of the throw-away embedded one — for suites
   * that run on both. The database should be empty: the kernel migrates it.
   */
  databaseUrl?: string
  /**
   * Where the embedded database migrated to this kernel's schema is kept, so that a start loads
   * it instead of creating and migrating a new one (made on the first start; one file per kernel
   * schema). Default `$TRELLIS_CACHE_DIR`, else `$XDG_CACHE_HOME/trellis`, else `~/.cache/trellis`;
   * `false` migrates a new database every time.
   */
  cacheDir?: string | false
}

/** What `@trellis/platform` exports as `startDevKernel`. */
export type StartDevKernel = (options?: DevKernelOptions) => Promise<DevKernel>

/** How {@link loadDevKernel} imports the platform; tests replace it to see a missing one. */
export type PlatformImport = () => Promise<{ startDevKernel?: unknown }>

const importPlatform: PlatformImport = () => import('@trellis/platform')

/**
 * Where `@trellis/platform` is installed (its entry module's path), without loading it; fails with
 * `SDK_ERR_KERNEL_NOT_INSTALLED` when it is not. The warm dev kernel is kept per platform install.
 */
export function platformEntry(): string {
  try {
    return fileURLToPath(import.meta.resolve('@trellis/platform'))
  } catch (err) {
    throw SDK.KERNEL_NOT_INSTALLED({ reason: (err as Error).message }, { cause: err })
  }
}

/**
 * Loads `startDevKernel` from `@trellis/platform`, an optional peer dependency of the SDK (build,
 * validate, pack and publish need no kernel). Fails with `SDK_ERR_KERNEL_NOT_INSTALLED`, saying
 * how to install it, when the platform is missing or too old to have one.
 */
export async function loadDevKernel(load: PlatformImport = importPlatform): Promise<StartDevKernel> {
  let mod: { startDevKernel?: unknown }
  try {
    mod = await load()
  } catch (err) {
    const code = (err as { code?: string }).code
    if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') throw err
    throw SDK.KERNEL_NOT_INSTALLED({ reason: (err as Error).message }, { cause: err })
  }
  if (typeof mod.startDevKernel !== 'function')
    throw SDK.KERNEL_NOT_INSTALLED({
      reason: 'the installed @trellis/platform has no startDevKernel: it is older than this SDK',
    })
  return mod.startDevKernel as StartDevKernel
}
