/**
 * `@trellis/plugin-sdk/testing`: test a plugin against the **real** kernel. The harness builds
 * the plugin, starts a kernel on a throw-away embedded database, installs the bundle for a
 * tenant in the real sandbox, and gives typed helpers to call its routes and actions, deliver
 * events to it, and read what it wrote and emitted. One harness per test file. Under
 * `trellis-plugin test` (`TRELLIS_DEV_KERNEL=warm`) it opens a new tenant of the warm kernel kept
 * running between runs instead of starting a kernel (docs/adr/0092-warm-dev-kernel.md).
 *
 * @example
 * ```ts
 * const h = await startPluginHarness()            // the plugin in the current directory
 * after(() => h.close())
 * const res = await h.route('POST', '/items', { body: { name: 'bolt', qty: 3 } })
 * assert.equal(res.status, 201)
 * assert.deepEqual((await h.emitted()).map((e) => e.type), ['hello.item.created'])
 * ```
 */
import { readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { buildPlugin } from './build.js'
import type { JsonValue } from './context.js'
import {
  loadDevKernel,
  type DevEvent,
  type DevInvocation,
  type DevKernel,
  type DevKernelOptions,
  type DevResponse,
} from './dev-kernel.js'
import { openWarmTenant, warmWanted } from './dev-warm.js'

export { createTestHost } from './testing.js'
export type { TestHost, TestHostOptions, RecordedHostCall } from './testing.js'
export type { DevEvent, DevInvocation, DevResponse } from './dev-kernel.js'

/** Options of {@link startPluginHarness}. */
export interface HarnessOptions extends Pick<DevKernelOptions, 'egressAllow' | 'logLevel'> {
  /** The plugin directory (with trellis.plugin.json); default the current directory. */
  dir?: string
  /** Entry module, relative to `dir`; default `src/index.ts`. */
  entry?: string
  /** Installation settings, secrets included. */
  settings?: Record<string, JsonValue>
  /**
   * Use the warm kernel (a tenant of its own in the kernel kept running between runs) rather than
   * start one in this process. Default: `TRELLIS_DEV_KERNEL=warm`, which `trellis-plugin test`
   * sets unless run with `--no-warm`; a `logLevel` asks for the kernel's logs, so for a kernel here.
   */
  warm?: boolean
}

/** The running harness. */
export interface PluginHarness {
  /** The plugin's name, `@scope/name`. */
  readonly plugin: string
  /** Where its routes are mounted: `/v1/x/<mount>`. */
  readonly basePath: string
  /** The tenant it is installed for. */
  readonly tenantId: string
  /** The kernel itself, for anything the helpers do not cover. */
  readonly kernel: DevKernel
  /** Calls one of the plugin's routes (`path` relative to its mount) as the tenant admin, through the kernel's HTTP stack. */
  route<B = any>(
    method: string,
    path: string,
    init?: { body?: unknown; headers?: Record<string, string> },
  ): Promise<DevResponse<B>>
  /** Calls one of its actions (as another plugin would, but without a capability check). */
  action<O = unknown>(name: string, input?: unknown): Promise<O>
  /** Emits an event into the tenant and runs the plugin's handler for it, if it subscribed. */
  deliver(type: string, data: unknown, subject?: string): Promise<DevEvent>
  /** The plugin's records of a collection, oldest first. */
  records<T = Record<string, unknown>>(collection: string): Promise<T[]>
  /** Events the plugin emitted, oldest first. */
  emitted(): Promise<DevEvent[]>
  /** Its invocation records (duration, host calls, outcome, log lines), newest first. */
  invocations(): Promise<DevInvocation[]>
  /** Rebuilds the plugin and installs the new bundle (e.g. after changing a file). */
  reinstall(): Promise<void>
  close(): Promise<void>
}

/** Builds the plugin, starts a kernel with it installed, and returns the helpers. */
export async function startPluginHarness(options: HarnessOptions = {}): Promise<PluginHarness> {
  const dir = resolve(options.dir ?? '.')
  const manifestOf = async () =>
    JSON.parse(await readFile(join(dir, 'trellis.plugin.json'), 'utf8')) as Record<string, unknown>
  const warm = options.warm ?? (warmWanted() && !options.logLevel)
  const kernel = warm
    ? await openWarmTenant(options.egressAllow ? { egressAllow: options.egressAllow } : {})
    : await (await loadDevKernel())({
        ...(options.egressAllow ? { egressAllow: options.egressAllow } : {}),
        ...(options.logLevel ? { logLevel: options.logLevel } : {}),
      })
  try {
    const install = async () => {
      const built = await buildPlugin({ dir, write: false, ...(options.entry ? { entry: options.entry } : {}) })
      return kernel.install(
        { manifest: await manifestOf(), code: built.code, sourceMap: built.sourceMap },
        { settings: options.settings ?? {} },
      )
    }
    const installed = await install()
    const plugin = String((await manifestOf()).name)
    const basePath = `/v1/x/${installed.mount}`
    return {
      plugin,
      basePath,
      tenantId: kernel.tenant.id,
      kernel,
      route: (method, path, init = {}) =>
        kernel.request(method, basePath + (path.startsWith('/') ? path : `/${path}`), init) as never,
      action: (name, input) => kernel.invoke(plugin, 'action', name, input ?? null) as never,
      deliver: (type, data, subject) => kernel.emit(plugin, type, data, subject),
      records: (collection) => kernel.records(plugin, collection) as never,
      emitted: () => kernel.events(plugin),
      invocations: () => kernel.invocations(plugin),
      reinstall: async () => void (await install()),
      close: () => kernel.close(),
    }
  } catch (err) {
    await kernel.close()
    throw err
  }
}
