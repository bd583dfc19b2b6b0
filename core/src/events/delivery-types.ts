/** Why a delivery failed for good. */
export type FailureReason = 'dead_letter' | 'gone' | 'endpoint_disabled'

/** The type of the event that tells a tenant one of its deliveries failed for good. */
export const DELIVERY_FAILED = 'kernel.webhook.delivery_failed'

/** A webhook delivery claimed for one attempt, with its endpoint and its event. */
export interface ClaimedDelivery {
  id: string
  attempts: number
  endpoint_id: string
  url: string
  endpoint_status: string
  secret_enc: string
  previous_secret_enc: string | null
  previous_secret_expires_at: Date | null
  event_id: string
  type: string
  source: string
  subject: string
  /** The event's number in its subject's stream. */
  seq: number | string | null
  time: Date | string
  data: Record<string, unknown>
  tenant_id: string
}

/** The outcome of one attempt. */
export interface RecordInput {
  status: 'delivered' | 'failed' | 'pending'
  statusCode?: number | null
  response?: string | null
  /** What the tenant is shown (never the resolver's or the socket's own text). */
  error?: string | null
  durationMs: number
  retryInMs?: number
  disableEndpoint?: boolean
  failureReason?: FailureReason
}

/** The job that makes attempt `attempt` of a delivery. */
export function deliverJob(
  deliveryId: string,
  tenantId: string,
  attempt: number,
): { id: string; name: string; data: Record<string, unknown> } {
  return { id: `dlv_${deliveryId}_${attempt}`, name: 'deliver', data: { deliveryId, tenantId, attempt } }
}

export const webhookSecretAd = (endpointId: string) => `webhook-secret:${endpointId}`
