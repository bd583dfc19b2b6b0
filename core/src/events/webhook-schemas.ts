import { Type } from '@sinclair/typebox'
import { PageQuery } from '../http/pagination.js'
import { EVENT_PATTERN } from './catalogue.js'

// The shapes the webhook routes accept and answer: shared by the endpoint, secret and delivery routes.

export const Uuid = Type.String({ format: 'uuid' })
export const Types = Type.Array(Type.String({ pattern: EVENT_PATTERN, maxLength: 200 }), {
  minItems: 1,
  maxItems: 100,
  uniqueItems: true,
  description: 'Event types or patterns: `kernel.role.created`, `kernel.role.*`, `*`.',
})
export const Url = Type.String({
  minLength: 1,
  maxLength: 2000,
  description: 'http(s) URL; loopback, private and link-local addresses are refused unless allow-listed.',
})
export const Endpoint = Type.Object({
  id: Uuid,
  url: Type.String(),
  types: Type.Array(Type.String()),
  description: Type.String(),
  status: Type.String(),
  disabledReason: Type.Union([Type.String(), Type.Null()]),
  previousSecretExpiresAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
})
export const EndpointWithSecret = Type.Intersect([
  Endpoint,
  Type.Object({ secret: Type.String({ description: 'Shown once: `whsec_…`, the Standard Webhooks signing secret.' }) }),
])
const Attempt = Type.Object({
  attempt: Type.Integer(),
  at: Type.String({ format: 'date-time' }),
  statusCode: Type.Union([Type.Integer(), Type.Null()]),
  durationMs: Type.Integer(),
  error: Type.Union([Type.String(), Type.Null()]),
  response: Type.Union([Type.String(), Type.Null()]),
})
export const Delivery = Type.Object({
  id: Uuid,
  endpointId: Uuid,
  eventId: Uuid,
  eventType: Type.String(),
  status: Type.String({ description: 'pending, delivered, or failed (for good: see failureReason)' }),
  failureReason: Type.Union(
    [Type.Literal('dead_letter'), Type.Literal('gone'), Type.Literal('endpoint_disabled'), Type.Null()],
    {
      description:
        'Why a failed delivery failed: dead_letter (its last retry failed), gone (the receiver answered 410 Gone; the endpoint was disabled), endpoint_disabled (the endpoint was disabled while it waited)',
    },
  ),
  attempts: Type.Integer(),
  lastStatus: Type.Union([Type.Integer(), Type.Null()]),
  nextAttemptAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  log: Type.Array(Attempt),
})
export const IdParams = Type.Object({ id: Uuid })
const STATUS_FILTERS = [
  'pending',
  'retrying',
  'delivered',
  'failed',
  'dead_letter',
  'gone',
  'endpoint_disabled',
] as const
export const DeliveryQuery = {
  ...PageQuery,
  status: Type.Optional(
    Type.Union(
      STATUS_FILTERS.map((s) => Type.Literal(s)),
      {
        description:
          'pending (waiting for an attempt), retrying (pending after a failed attempt), delivered, failed (for good, whatever the reason), dead_letter (the last retry failed), gone (410 Gone), endpoint_disabled',
      },
    ),
  ),
  eventType: Type.Optional(Type.String({ maxLength: 200, description: 'Only deliveries of this event type.' })),
}

export interface DeliveryRow {
  id: string
  endpoint_id: string
  event_id: string
  event_type: string
  status: string
  failure_reason: 'dead_letter' | 'gone' | 'endpoint_disabled' | null
  attempts: number
  last_status: number | null
  next_attempt_at: Date | null
  log: Array<Record<string, unknown>>
}

export interface EndpointRow {
  id: string
  url: string
  types: string[]
  description: string
  status: string
  disabled_reason: string | null
  previous_secret_expires_at: Date | null
  created_at: Date
  updated_at: Date
}

export const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString())
export const view = (r: EndpointRow) => ({
  id: r.id,
  url: r.url,
  types: r.types,
  description: r.description,
  status: r.status,
  disabledReason: r.disabled_reason,
  previousSecretExpiresAt: iso(r.previous_secret_expires_at),
  createdAt: iso(r.created_at)!,
  updatedAt: iso(r.updated_at)!,
})
export const COLS =
  'id, url, types, description, status, disabled_reason, previous_secret_expires_at, created_at, updated_at'

export function deliveryView(d: DeliveryRow) {
  return {
    id: d.id,
    endpointId: d.endpoint_id,
    eventId: d.event_id,
    eventType: d.event_type,
    status: d.status,
    failureReason: d.status === 'failed' ? d.failure_reason : null,
    attempts: d.attempts,
    lastStatus: d.last_status,
    nextAttemptAt: d.status === 'pending' ? iso(d.next_attempt_at) : null,
    log: d.log.map((a) => ({
      attempt: a.attempt as number,
      at: iso(a.at as string)!,
      statusCode: (a.statusCode as number | null) ?? null,
      durationMs: a.durationMs as number,
      error: (a.error as string | null) ?? null,
      response: (a.response as string | null) ?? null,
    })),
  }
}
