import type { Logger } from 'pino'
import { matchesEventPattern } from '@trellis/plugin-sdk'
import type { TransactionSource } from '../db/database.js'
import { matchesAny } from './catalogue.js'

/** What a tenant's subscribers want, as of one subscription generation (ADR 0082). */
interface Entry {
  /** The tenant's row in event_subscriber_gens when read ('0': it never had a subscriber). */
  gen: string
  /** Webhook endpoints' types (kernel pattern syntax: `*`, `a.b.*`). */
  hooks: string[]
  /**
   * Patterns active installations' manifests subscribe to (either syntax): their handlers'
   * (`events.subscribes`) and their workflows' (`start.events`, `waitsFor` — a workflow may wait
   * only for what it declares, directives.ts) — what the fan-out offers an installation
   * (PluginEventDelivery.subscriptions with WorkflowEvents.wants), before grants (ADR 0110).
   */
  plugins: string[]
  loadedAt: number
}

/** The JSON array at `path` of a manifest, or an empty one (a manifest is checked at publish, not here). */
const elements = (path: string) => `case when jsonb_typeof(${path}) = 'array' then ${path} else '[]'::jsonb end`
/** A version's workflows, one row each. */
const WORKFLOWS = `jsonb_each(case when jsonb_typeof(v.manifest -> 'workflows') = 'object' then v.manifest -> 'workflows' else '{}'::jsonb end)`

export interface SubscriberIndexOptions {
  /** A cached tenant is read again after this long, in the background (default 10 s). */
  refreshMs?: number
  /** A change this process made is read at most this soon after it (default 50 ms). */
  changesDelayMs?: number
  /** Tenants kept (default 10,000; the least recently loaded go first). */
  maxTenants?: number
  now?: () => number
}

/**
 * Which event types a tenant's subscribers want — its webhook endpoints, its installations'
 * subscriptions and workflows, this process's kernel handlers — cached per tenant with the
 * tenant's subscription generation, so that an event nobody wants is written already processed
 * (one row write, no dispatch). The cache only ever decides "nobody wants it" together with a
 * generation that the insert statement checks against the database (see `EVENT_VALUES`): a
 * cache older than a subscription makes the event pending, never lost. A tenant not cached yet
 * gets pending events while it is read in the background.
 *
 * An entry is moved on by what changed since its generation (ADR 0105): the endpoints stamped
 * after it, and the installations' subscriptions when one of them changed — never a re-read of
 * every endpoint of the tenant, except every `refreshMs`, which also forgets deleted endpoints.
 * A change this process made moves the entry without any read when nothing else changed since.
 */
export class SubscriberIndex {
  private readonly entries = new Map<string, Entry>()
  private readonly loading = new Map<string, Promise<void>>()
  /** Tenants whose changes are read once the running read is done. */
  private readonly again = new Set<string>()
  /** Tenants with a read of their changes scheduled (at most one per `changesDelayMs`). */
  private readonly scheduled = new Map<string, NodeJS.Timeout>()
  private readonly refreshMs: number
  private readonly changesDelayMs: number
  private readonly maxTenants: number
  private readonly now: () => number
  private closed = false

  constructor(
    private readonly db: TransactionSource,
    /** Patterns of this process's kernel handlers (always wanted). */
    private readonly handlerPatterns: () => readonly string[],
    opts: SubscriberIndexOptions = {},
    private readonly logger?: Logger,
  ) {
    this.refreshMs = opts.refreshMs ?? 10_000
    this.changesDelayMs = opts.changesDelayMs ?? 50
    this.maxTenants = opts.maxTenants ?? 10_000
    this.now = opts.now ?? Date.now
  }

  /**
   * The generation under which nobody wanted an event of `type` in `tenantId`, or undefined when
   * someone does or the tenant is not known yet (the event is then written pending).
   */
  unsubscribedGen(tenantId: string, type: string): string | undefined {
    const e = this.entries.get(tenantId)
    if (!e || this.now() - e.loadedAt > this.refreshMs) this.load(tenantId)
    if (!e) return undefined
    if (matchesAny(type, this.handlerPatterns()) || matchesAny(type, e.hooks)) return undefined
    for (const p of e.plugins) if (matchesAny(type, [p]) || matchesEventPattern(p, type)) return undefined
    return e.gen
  }

  /** An event the entry let through came back pending: read what changed since it, now. */
  stale(tenantId: string): void {
    this.readChanges(tenantId)
  }

  /**
   * This process changed the tenant's webhook endpoints (committed). Given the generation the
   * change produced and the types it subscribed, an entry one generation behind takes them
   * without a read; otherwise what changed is read shortly, at most once per `changesDelayMs`
   * (until then the insert's own check covers the endpoints changed since the entry).
   */
  changed(tenantId: string, gen?: string, types?: readonly string[]): void {
    const e = this.entries.get(tenantId)
    if (e && gen !== undefined && types && Number(gen) === Number(e.gen) + 1) {
      this.entries.set(tenantId, { ...e, gen, hooks: [...new Set([...e.hooks, ...types])] })
      return
    }
    if (!e || this.scheduled.has(tenantId) || this.closed) return
    const timer = setTimeout(() => {
      this.scheduled.delete(tenantId)
      this.readChanges(tenantId)
    }, this.changesDelayMs)
    timer.unref()
    this.scheduled.set(tenantId, timer)
  }

  /** Reads the tenant's subscribers whole (at most one read per tenant at a time); resolves when cached. */
  load(tenantId: string): Promise<void> {
    return this.run(tenantId, false)
  }

  /** Reads what changed since the tenant's entry (the whole entry when there is none). */
  private readChanges(tenantId: string): void {
    if (this.loading.has(tenantId)) this.again.add(tenantId)
    else void this.run(tenantId, true)
  }

  private run(tenantId: string, changes: boolean): Promise<void> {
    const running = this.loading.get(tenantId)
    if (running || this.closed) return running ?? Promise.resolve()
    const base = changes ? this.entries.get(tenantId) : undefined
    const p = this.read(tenantId, base)
      .then((e) => {
        if (this.closed) return
        const current = this.entries.get(tenantId)
        // Generations only move on: a read older than the entry (another read won) is dropped.
        if (current && Number(current.gen) > Number(e.entry.gen)) return
        let next: Entry = e.entry
        if (base) {
          // What changed since `base`, added to an entry at or past `base`: a superset of what
          // the tenant's subscribers want at e.gen, which is all that skipping dispatch needs.
          if (!current || Number(current.gen) < Number(base.gen)) return
          next = {
            gen: e.entry.gen,
            hooks: [...new Set([...current.hooks, ...e.entry.hooks])],
            plugins: e.installsChanged ? e.entry.plugins : current.plugins,
            loadedAt: current.loadedAt,
          }
        }
        this.entries.delete(tenantId)
        if (this.entries.size >= this.maxTenants) this.entries.delete(this.entries.keys().next().value!)
        this.entries.set(tenantId, next)
      })
      .catch((err) => this.logger?.debug({ err, tenantId }, 'reading event subscribers failed; events stay pending'))
      .finally(() => {
        this.loading.delete(tenantId)
        if (this.again.delete(tenantId)) this.readChanges(tenantId)
      })
    this.loading.set(tenantId, p)
    return p
  }

  // Generation first, then what it stands for, in one statement (one snapshot): the pair is
  // consistent — a subscription committed later moves the generation past the one read. Given
  // `base`, only the endpoints stamped after its generation are read, and the installations'
  // subscriptions only when one changed since (ADR 0105).
  private async read(tenantId: string, base?: Entry): Promise<{ entry: Entry; installsChanged: boolean }> {
    const loadedAt = this.now()
    const since = base?.gen ?? null
    const [row] = await this.db.inOrg(
      tenantId,
      (tx) =>
        tx.sql<{ gen: string; installs_changed: boolean; hooks: string[]; plugins: string[] }>(
          `with g as (select coalesce((select g.gen from event_subscriber_gens g where g.tenant_id = ?::uuid), 0)::text as gen,
                             coalesce((select g.installs_gen from event_subscriber_gens g where g.tenant_id = ?::uuid), 0) > coalesce(?::bigint, -1) as installs_changed)
           select g.gen, g.installs_changed,
                  array(select distinct t from webhook_endpoints w, unnest(w.types) t
                         where w.tenant_id = ?::uuid and w.status = 'active' and (?::bigint is null or w.subscribers_gen > ?::bigint)) as hooks,
                  case when g.installs_changed then array(select distinct s from plugin_installations i join plugin_versions v on v.id = i.version_id,
                        lateral (select jsonb_array_elements_text(${elements("v.manifest -> 'events' -> 'subscribes'")})
                                 union all select jsonb_array_elements_text(${elements("w.value -> 'start' -> 'events'")}) from ${WORKFLOWS} w
                                 union all select jsonb_array_elements_text(${elements("w.value -> 'waitsFor'")}) from ${WORKFLOWS} w) x(s)
                         where i.tenant_id = ?::uuid and i.status = 'active') else '{}' end as plugins
             from g`,
          [tenantId, tenantId, since, tenantId, since, since, tenantId],
        ),
      'trellis_events',
    )
    const { gen, hooks, plugins } = row!
    return { entry: { gen, hooks, plugins, loadedAt }, installsChanged: row!.installs_changed }
  }

  close(): void {
    this.closed = true
    for (const t of this.scheduled.values()) clearTimeout(t)
    this.scheduled.clear()
    this.entries.clear()
  }
}
