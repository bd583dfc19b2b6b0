import type { Logger } from 'pino'
import {
  isTrellisError,
  matchesEventPattern,
  type Capability,
  type PluginManifest,
  type TrellisEvent,
} from '@trellis/plugin-sdk'
import type { TransactionSource } from '../db/database.js'
import type { PluginEventSink, PluginSubscription } from '../events/subscribers.js'
import type { Installation } from './installations.js'
import type { InvokeInput } from './invocation-types.js'
import type { TenantInstallations } from './tenant-installations.js'
import type { PluginVersion, PluginVersions } from './versions.js'

/**
 * Something besides a plugin's own event handlers that acts on the events an installation
 * receives — the workflow runtime starts and resumes workflows with them. Registered with
 * {@link PluginEventDelivery.addConsumer} (the plugin host's `onPluginEvent`).
 */
export interface PluginEventConsumer {
  /** Event types or patterns the version wants for this consumer, besides its handlers' (granted ones are delivered). */
  wants(manifest: PluginManifest): string[]
  /** Called first for every event delivered to an active installation, before its handler runs. */
  deliver(tenantId: string, inst: Installation, version: PluginVersion, event: TrellisEvent): Promise<void>
}

export interface PluginEventDeps {
  /** Where the look for subscribing installations runs: the background pool (ADR 0055). */
  db: TransactionSource
  logger: Logger
  /** The event system: the host becomes its plugin sink once any installation subscribes. */
  events: { setPluginSink(sink: PluginEventSink): void }
  installations: TenantInstallations
  versions: PluginVersions
  caps(inst: Installation): Capability[]
  invoke(req: InvokeInput): Promise<unknown>
}

// Errors that mean the platform, not the plugin, failed: event deliveries are retried on these.
// A tenant over its concurrency cap is told to come back later: its deliveries wait too.
const INFRASTRUCTURE = new Set([
  'SBX_ERR_WORKER_LOST',
  'SBX_ERR_SANDBOX_CLOSED',
  'KRN_ERR_DATABASE_UNAVAILABLE',
  'KRN_ERR_INTERNAL',
  'PLG_ERR_TOO_MANY_INVOCATIONS',
])

/** Delivers the tenant's events to the installations that subscribed to them and were granted them. */
export class PluginEventDelivery implements PluginEventSink {
  private readonly consumers = new Set<PluginEventConsumer>()
  private sinkTimer: NodeJS.Timeout | undefined
  private sinkSet = false
  private closed = false
  private looking: Promise<void> | undefined
  private again: Promise<void> | undefined

  constructor(private readonly deps: PluginEventDeps) {}

  /** Adds a consumer of delivered events; returns the function that removes it. */
  addConsumer(consumer: PluginEventConsumer): () => void {
    this.consumers.add(consumer)
    return () => this.consumers.delete(consumer)
  }

  private granted(inst: Installation): string[] {
    return this.deps.caps(inst).flatMap((c) => (c.kind === 'events:subscribe' ? [c.pattern] : []))
  }

  /**
   * Installations of the tenant and the event types each subscribed to and was granted. What the
   * caches no longer hold is read on the background pool, as all of the event pipeline's work.
   */
  async subscriptions(tenantId: string): Promise<PluginSubscription[]> {
    const { byId } = await this.deps.installations.of(tenantId, undefined, this.deps.db)
    const out: PluginSubscription[] = []
    for (const inst of byId.values()) {
      if (inst.status !== 'active') continue
      const version = await this.deps.versions.get(tenantId, inst.versionId, this.deps.db)
      if (version?.status !== 'approved') continue
      const granted = this.granted(inst)
      const wanted = [
        ...(version.manifest.events?.subscribes ?? []),
        ...[...this.consumers].flatMap((c) => c.wants(version.manifest)),
      ]
      const patterns = [...new Set(wanted.filter((s) => granted.some((g) => matchesEventPattern(g, s) || g === s)))]
      if (patterns.length) out.push({ pluginId: inst.id, patterns })
    }
    return out
  }

  /** Runs the installation's handler for the event; plugin failures are recorded, platform failures retried. */
  async deliver(tenantId: string, installationId: string, event: TrellisEvent): Promise<void> {
    const inst = (await this.deps.installations.of(tenantId, undefined, this.deps.db)).byId.get(installationId)
    if (inst?.status !== 'active') return
    const version = await this.deps.versions.get(tenantId, inst.versionId, this.deps.db)
    if (!version) return
    if (!this.granted(inst).some((g) => matchesEventPattern(g, event.type))) return
    for (const c of this.consumers) await c.deliver(tenantId, inst, version, event)
    const name = (version.manifest.events?.subscribes ?? []).find(
      (s) => s === event.type || matchesEventPattern(s, event.type),
    )
    if (!name) return
    try {
      await this.deps.invoke({
        tenantId,
        installation: inst,
        entry: { kind: 'event', name },
        input: event,
        caller: { kind: 'event', id: event.id, permissions: [] },
      })
    } catch (err) {
      if (isTrellisError(err) && !INFRASTRUCTURE.has(err.code)) {
        this.deps.logger.warn(
          { tenantId, plugin: inst.plugin, eventId: event.id, code: err.code },
          'plugin event handler failed',
        )
        return
      }
      throw err
    }
  }

  /**
   * Hands the event system this sink as soon as any installation subscribes to events (in any
   * process). A call made while a look is under way — whose snapshot may predate the caller's
   * commit — gets one more look after it, shared with the other calls made meanwhile.
   */
  watch(): Promise<void> {
    if (this.closed || this.sinkSet) return Promise.resolve()
    if (!this.looking) {
      this.looking = this.look().finally(() => (this.looking = undefined))
      return this.looking
    }
    this.again ??= this.looking.then(() => {
      this.again = undefined
      return this.watch()
    })
    return this.again
  }

  private async look(): Promise<void> {
    const rows = await this.deps.db
      .inOrg(
        null,
        (tx) =>
          tx.sql<{ any: boolean }>(
            `select exists (select 1 from plugin_installations i join plugin_versions v on v.id = i.version_id
              where i.status = 'active' and (jsonb_array_length(coalesce(v.manifest -> 'events' -> 'subscribes', '[]'::jsonb)) > 0 or v.manifest -> 'workflows' is not null)) as any`,
          ),
        'trellis_events',
      )
      .catch(() => [{ any: false }])
    if (rows[0]?.any) {
      this.deps.events.setPluginSink(this)
      this.sinkSet = true
      clearInterval(this.sinkTimer)
      this.sinkTimer = undefined
    } else if (!this.sinkTimer) {
      // Another process may install one: look again now and then.
      this.sinkTimer = setInterval(() => void this.watch(), 5000)
      this.sinkTimer.unref()
    }
  }

  close(): void {
    this.closed = true
    clearInterval(this.sinkTimer)
  }
}
