import { v7 as uuidv7 } from 'uuid'
import type { Static } from '@sinclair/typebox'
import type { Tx } from '../db/database.js'
import { EVT } from '../errors.js'
import type { KERNEL_EVENTS, KernelEventType } from './catalogue.js'

const TYPE = /^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+){2,}$/

/** One event as its emitter describes it. The tenant is never part of it: it is the transaction's. */
export interface EmitInput {
  type: string
  subject: string
  data: Record<string, unknown>
  source?: string
}

/** A kernel event, typed by the catalogue. */
export function kernelEvent<T extends KernelEventType>(
  type: T,
  subject: string,
  data: Static<(typeof KERNEL_EVENTS)[T]['data']>,
): EmitInput {
  return { type, subject, data: data as Record<string, unknown> }
}

// Transactions that wrote to the outbox, and the events they wrote: orgTx hands these to the
// dispatcher after they commit, so it takes them by id instead of searching the outbox.
const emitted = new WeakMap<Tx, string[]>()

export function markEmitted(tx: Tx, ids: readonly string[]): void {
  const list = emitted.get(tx)
  if (list) list.push(...ids)
  else emitted.set(tx, [...ids])
}

/** The ids of the events `tx` wrote to the outbox, if any. */
export function emittedBy(tx: Tx): readonly string[] | undefined {
  return emitted.get(tx)
}

/**
 * Columns and values of one outbox row, for composing into a larger statement (the change and
 * its event in one round trip). tenant_id is left to the column default, the transaction's
 * tenant, and row-level security refuses any other.
 */
export const EVENT_COLUMNS = '(id, type, source, subject, data)'
export const EVENT_VALUES = '(?::uuid, ?, ?, ?, ?::jsonb)'

export function eventRow(e: EmitInput): unknown[] {
  if (!TYPE.test(e.type) || e.type.length > 200) throw EVT.EVENT_TYPE_INVALID({ type: e.type })
  if (typeof e.subject !== 'string' || e.subject.length === 0 || e.subject.length > 500)
    throw EVT.EVENT_INVALID({ reason: 'subject must be 1 to 500 characters' })
  return [uuidv7(), e.type, e.source ?? 'trellis/kernel', e.subject, JSON.stringify(e.data ?? {})]
}

/** Writes events to the outbox in the caller's transaction: they commit or roll back with it. */
export async function emitEvents(tx: Tx, ...events: EmitInput[]): Promise<string[]> {
  if (events.length === 0) return []
  const rows = events.map(eventRow)
  await tx.sql(`insert into events ${EVENT_COLUMNS} values ${events.map(() => EVENT_VALUES).join(', ')}`, rows.flat())
  const ids = rows.map((r) => r[0] as string)
  markEmitted(tx, ids)
  return ids
}

/**
 * Writes the same events to several organisations' outboxes in the caller's transaction: for
 * the few acts whose news belongs to more than one organisation (a tenant's suspension is the
 * tenant's own event and its partner's). `current` is the organisation the transaction acts
 * in; it is written first and is where the transaction is left. Each copy is its own event
 * (its own id) in its own organisation's stream.
 */
export async function emitEventsTo(
  tx: Tx,
  current: string,
  orgs: ReadonlyArray<string | null | undefined>,
  ...events: EmitInput[]
): Promise<void> {
  const targets = [...new Set(orgs.filter((o): o is string => typeof o === 'string' && o.length > 0))]
  if (targets.includes(current)) await emitEvents(tx, ...events)
  const others = targets.filter((o) => o !== current)
  if (others.length === 0) return
  for (const org of others) {
    await tx.useOrg(org)
    await emitEvents(tx, ...events)
  }
  await tx.useOrg(current)
}
