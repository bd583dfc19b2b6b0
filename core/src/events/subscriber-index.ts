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
  /** Patterns active installations' manifests subscribe to (either syntax). */
  plugins: string[]
  /** An active installation declares workflows: whatever they wait for, every event is wanted. */
  all: boolean
  loadedAt: number
}

export interface SubscriberIndexOptions {
  /** A cached tenant is read again after this long, in the background (default 10 s). */
  refreshMs?: number
  /** Tenants kept (default 10,000; the least recently loaded go first). */
  maxTenants?: number
  now?: () => number
}

/**
 * Which event types a tenant's subscribers want — its webhook endpoints, its installations'
 * subscriptions and workflows, this process's kernel handlers — cached per tenant with the
 * tenant's subscription generation, so that an event nobody wants is written already processed
 * (one row write, no dispatch). The cache only ever decides "nobody wants it" together with a
 * generation that the insert statement checks against the database (see `unsubscribedGen`): a
 * cache older than a subscription makes the event pending, never lost. A tenant not cached yet
 * gets pending events while it is read in the background.
 */
export class SubscriberIndex {
  private readonly entries = new Map<string, Entry>()
  private readonly loading = new Map<string, Promise<void>>()
  private readonly refreshMs: number
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
    if (e.all || matchesAny(type, this.handlerPatterns()) || matchesAny(type, e.hooks)) return undefined
    for (const p of e.plugins) if (matchesAny(type, [p]) || matchesEventPattern(p, type)) return undefined
    return e.gen
  }

  /** Drops the tenant's entry and reads it again (an insert found the generation moved on). */
  forget(tenantId: string): void {
    this.entries.delete(tenantId)
    this.load(tenantId)
  }

  /** Reads the tenant's subscribers (at most one read per tenant at a time); resolves when cached. */
  load(tenantId: string): Promise<void> {
    const running = this.loading.get(tenantId)
    if (running || this.closed) return running ?? Promise.resolve()
    const p = this.read(tenantId)
      .then((e) => {
        if (this.closed) return
        this.entries.delete(tenantId)
        if (this.entries.size >= this.maxTenants) this.entries.delete(this.entries.keys().next().value!)
        this.entries.set(tenantId, e)
      })
      .catch((err) => this.logger?.debug({ err, tenantId }, 'reading event subscribers failed; events stay pending'))
      .finally(() => this.loading.delete(tenantId))
    this.loading.set(tenantId, p)
    return p
  }

  // Generation first, then what it stands for, in one statement (one snapshot): the pair is
  // consistent — a subscription committed later moves the generation past the one cached.
  private async read(tenantId: string): Promise<Entry> {
    const loadedAt = this.now()
    const [row] = await this.db.inOrg(
      tenantId,
      (tx) =>
        tx.sql<{ gen: string; hooks: string[]; plugins: string[]; everything: boolean }>(
          `select coalesce((select g.gen from event_subscriber_gens g where g.tenant_id = ?::uuid), 0)::text as gen,
                  array(select distinct t from webhook_endpoints w, unnest(w.types) t where w.status = 'active') as hooks,
                  array(select distinct s from plugin_installations i join plugin_versions v on v.id = i.version_id,
                        jsonb_array_elements_text(case when jsonb_typeof(v.manifest -> 'events' -> 'subscribes') = 'array' then v.manifest -> 'events' -> 'subscribes' else '[]'::jsonb end) s
                         where i.tenant_id = ?::uuid and i.status = 'active') as plugins,
                  exists (select 1 from plugin_installations i join plugin_versions v on v.id = i.version_id
                           where i.tenant_id = ?::uuid and i.status = 'active' and coalesce(v.manifest -> 'workflows', '{}'::jsonb) not in ('{}'::jsonb, 'null'::jsonb)) as everything`,
          [tenantId, tenantId, tenantId],
        ),
      'trellis_events',
    )
    return { gen: row!.gen, hooks: row!.hooks, plugins: row!.plugins, all: row!.everything, loadedAt }
  }

  close(): void {
    this.closed = true
    this.entries.clear()
  }
}
