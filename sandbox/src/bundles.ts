// The bundles a sandbox knows: checked once, evaluated on the probation worker (their top level
// is untrusted code), compiled everywhere else for V8's code cache, and sent lazily to workers
// started later.
import { createHash } from 'node:crypto'
import type { SourceMap } from 'node:module'
import { SBX } from './errors.js'
import type { SandboxLimits } from './limits.js'
import type { LoadReply, WireBundle } from './protocol.js'
import type { Supervisor } from './supervisor.js'
import type { PluginBundle } from './types.js'
import type { WorkerProcess } from './worker-process.js'
import { bundleFilename, lazySourceMap, mapToSources } from './worker/stack-mapper.mjs'

const BUNDLE_ID = /^[@a-zA-Z0-9][@a-zA-Z0-9._/-]{0,213}$/
const BUNDLE_VERSION = /^[0-9A-Za-z][0-9A-Za-z.+-]{0,63}$/

export interface LoadedBundle {
  bundle: PluginBundle
  key: string
  sha256: string
  entries?: Record<string, string[]>
  loading: Promise<Record<string, string[]>>
  /**
   * Its source map when the parent maps the plugin's stacks (one of at most PARENT_MAP_MAX_CHARS,
   * parsed on the first stack that needs it); a larger one travels to the workers, which map them.
   */
  sourceMap: (() => SourceMap | null) | undefined
}

/**
 * A source map this long or shorter stays with the parent: sending it made a cold start's load
 * message several times longer (ADR 0103), and parsing it here costs a few milliseconds once per
 * bundle. A longer one would cost the kernel's event loop more than that, so it goes to the
 * workers with the code, as it used to.
 */
const PARENT_MAP_MAX_CHARS = 512 * 1024

export function bundleKey(id: unknown, version: unknown): string {
  return `${String(id)}@${String(version)}`
}

export class Bundles {
  private readonly registry = new Map<string, LoadedBundle>()

  constructor(
    private readonly supervisor: Supervisor,
    /** The sandbox's default limits: a bundle's top level runs under them. */
    private readonly limits: SandboxLimits,
    private readonly maxBytes: number,
  ) {}

  get(id: unknown, version: unknown): LoadedBundle | undefined {
    return this.registry.get(bundleKey(id, version))
  }

  /** Verifies and compiles a bundle in every worker; returns the entries it declares. */
  async load(bundle: PluginBundle): Promise<{ entries: Record<string, string[]> }> {
    for (const field of ['id', 'version', 'code', 'sha256'] as const) {
      if (typeof bundle?.[field] !== 'string' || bundle[field] === '')
        throw SBX.INVALID_REQUEST({ reason: `bundle.${field} must be a non-empty string` })
    }
    if (bundle.sourceMap !== undefined && typeof bundle.sourceMap !== 'string')
      throw SBX.INVALID_REQUEST({ reason: 'bundle.sourceMap must be a string' })
    // Both end up in stack frames and log lines; nothing there may look like more than a name.
    if (!BUNDLE_ID.test(bundle.id) || !BUNDLE_VERSION.test(bundle.version))
      throw SBX.INVALID_REQUEST({ reason: 'bundle id or version has characters a package name or semver cannot have' })
    const { id, version } = bundle
    const digest = createHash('sha256').update(bundle.code).digest('hex')
    if (digest !== bundle.sha256.toLowerCase()) throw SBX.DIGEST_MISMATCH({ id, version })
    if (
      Buffer.byteLength(bundle.code) > this.maxBytes ||
      (bundle.sourceMap !== undefined && Buffer.byteLength(bundle.sourceMap) > this.maxBytes)
    ) {
      throw SBX.BUNDLE_INVALID({ id, version, reason: 'bundle exceeds the size limit' })
    }
    const key = bundleKey(id, version)
    const existing = this.registry.get(key)
    if (existing) {
      if (existing.sha256 !== digest) throw SBX.BUNDLE_CONFLICT({ id, version })
      return { entries: await existing.loading }
    }
    const loaded: LoadedBundle = {
      bundle: { ...bundle },
      key,
      sha256: digest,
      loading: undefined as never,
      sourceMap: (bundle.sourceMap?.length ?? 0) <= PARENT_MAP_MAX_CHARS ? lazySourceMap(bundle.sourceMap) : undefined,
    }
    loaded.loading = this.loadEverywhere(loaded).then(
      (entries) => (loaded.entries = entries),
      (err) => {
        this.registry.delete(key)
        for (const w of this.supervisor.live()) {
          w.bundles.delete(key)
          w.send({ t: 'unload', key })
        }
        throw err
      },
    )
    this.registry.set(key, loaded)
    return { entries: await loaded.loading }
  }

  /** Forgets a bundle and disposes its isolates. */
  unload(ref: { id: string; version: string }): void {
    const key = bundleKey(ref.id, ref.version)
    this.registry.delete(key)
    for (const w of this.supervisor.all()) {
      w.bundles.delete(key)
      w.send({ t: 'unload', key })
    }
  }

  /**
   * A plugin error's stack, which its worker reports in the bundle's own lines and columns,
   * mapped to the plugin's sources; the error is returned.
   */
  mapStack<E>(loaded: LoadedBundle, err: E): E {
    const e = err as E & { code?: unknown; stack?: string; details?: { stack?: unknown } }
    const frames = e?.code === SBX.PLUGIN_ERROR.code ? e.details?.stack : undefined
    if (typeof frames !== 'string' || frames === '' || !loaded.sourceMap) return err
    const mapped = mapToSources(frames, bundleFilename(loaded.key), loaded.sourceMap())
    e.details!.stack = mapped
    if (typeof e.stack === 'string' && e.stack.endsWith(frames)) e.stack = e.stack.slice(0, -frames.length) + mapped
    return err
  }

  /** Sends the bundle to a worker that does not have it yet (a replacement learns bundles lazily). */
  ensureOn(worker: WorkerProcess, loaded: LoadedBundle): void {
    if (worker.bundles.has(loaded.key)) return
    // IPC order guarantees the load arrives before the invocation that needs it.
    worker.bundles.add(loaded.key)
    worker.send({ t: 'load', rid: this.supervisor.rid(), bundle: wire(loaded), limits: this.limits, evaluate: false })
  }

  /**
   * Evaluates the bundle once, on the probation worker (its top level is untrusted code that
   * might kill a worker), then has every other worker compile it for its code cache only.
   */
  private async loadEverywhere(loaded: LoadedBundle): Promise<Record<string, string[]>> {
    const { id, version } = loaded.bundle
    const live = this.supervisor.live()
    const probation = this.supervisor.probation()
    const prober = probation && !probation.dead ? probation : live[0]
    if (!prober) throw SBX.WORKER_LOST({ reason: 'no worker is running' })
    const first = await this.loadOn(prober, loaded, true)
    if (!first) throw SBX.BUNDLE_INVALID({ id, version, reason: 'evaluating it killed its worker' })
    if (first.t === 'loadFailed') {
      const reason = typeof first.error?.details?.reason === 'string' ? first.error.details.reason : 'evaluation failed'
      throw SBX.BUNDLE_INVALID({ id, version, reason })
    }
    // Compile-only elsewhere; a worker that fails to compile it simply learns it again lazily.
    await Promise.all(live.filter((w) => w !== prober).map((w) => this.loadOn(w, loaded, false)))
    return first.entries
  }

  private async loadOn(worker: WorkerProcess, loaded: LoadedBundle, evaluate: boolean): Promise<LoadReply | undefined> {
    worker.bundles.add(loaded.key)
    const reply = await this.supervisor.request<LoadReply>(worker, (rid) => ({
      t: 'load',
      rid,
      bundle: wire(loaded),
      limits: this.limits,
      evaluate,
    }))
    if (reply?.t !== 'loaded') worker.bundles.delete(loaded.key)
    return reply
  }
}

function wire(loaded: LoadedBundle): WireBundle {
  const { id, version, code, sourceMap } = loaded.bundle
  return loaded.sourceMap || sourceMap === undefined
    ? { key: loaded.key, id, version, code }
    : { key: loaded.key, id, version, code, sourceMap }
}
