import type { TrellisEvent } from './catalogue.js'

/** An in-process kernel handler: runs at least once for each matching event, after commit. */
export type KernelEventHandler = (event: TrellisEvent) => Promise<void> | void

/** A plugin installed for a tenant and the event types it may receive (subscribed ∩ granted). */
export interface PluginSubscription {
  pluginId: string
  /** Patterns (`orders.order.placed`, `orders.*`) the plugin subscribed to and the tenant granted. */
  patterns: string[]
}

/**
 * What the plugin host implements so that plugins receive events. The kernel only ever asks it
 * about the event's own tenant and only hands it events matching what that tenant's install
 * subscribed to and was granted; delivery is at least once (a throw means "run again").
 */
export interface PluginEventSink {
  subscriptions(tenantId: string): Promise<PluginSubscription[]>
  deliver(tenantId: string, pluginId: string, event: TrellisEvent): Promise<void>
}
