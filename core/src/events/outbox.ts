import { v7 as uuidv7 } from 'uuid'
import type { Static } from '@sinclair/typebox'
import type { Tx } from '../db/database.js'
import { EVT } from '../errors.js'
import { patternsMatching, type KERNEL_EVENTS, type KernelEventType } from './catalogue.js'

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

// What the outbox notes on a transaction, under symbols no one else uses: the pending events it
// wrote (orgTx hands them to the dispatcher after the commit, so it takes them by id instead of
// searching the outbox) and its binding (below). A property, not a WeakMap entry: a binding is
// made for every request, and a WeakMap's costs about 0.8 µs more, plus its ephemeron in the GC.
const EMITTED = Symbol('outbox.emitted')
const BOUND = Symbol('outbox.bound')
type Noted = Tx & { [EMITTED]?: string[]; [BOUND]?: { oracle: UnsubscribedOracle; org: string } }

export function markEmitted(tx: Tx, ids: readonly string[]): void {
  if (ids.length === 0) return
  const noted: Noted = tx
  const list = noted[EMITTED]
  if (list) list.push(...ids)
  else noted[EMITTED] = [...ids]
}

/** The ids of the pending events `tx` wrote to the outbox, if any. */
export function emittedBy(tx: Tx): readonly string[] | undefined {
  return (tx as Noted)[EMITTED]
}

/** What tells the outbox, at emit time, that nobody wants an event (see SubscriberIndex). */
export interface UnsubscribedOracle {
  unsubscribedGen(tenantId: string, type: string): string | undefined
  /** An event the cache let through was written pending: a subscriber it does not know wants it. */
  stale(tenantId: string): void
  /** This process changed the tenant's webhook endpoints (see {@link subscribersChanged}). */
  changed(tenantId: string, gen?: string, types?: readonly string[]): void
}

// Transactions whose organisation and subscriber index are known (orgTx binds them): their
// events nobody subscribes to are written already processed. Any other transaction writes
// every event pending, as the dispatcher has always taken them.
const bound = (tx: Tx) => (tx as Noted)[BOUND]

/** Lets `tx`, acting in `org`, write events nobody subscribes to as processed (ADR 0082). */
export function bindSubscribers(tx: Tx, oracle: UnsubscribedOracle, org: string): void {
  const noted: Noted = tx
  noted[BOUND] = { oracle, org }
}

/** The guard that makes an outbox row processed: the tenant and its subscription generation, or nulls. */
type Unsubscribed = { tenantId: string; gen: string } | undefined

function unsubscribed(tx: Tx, type: string, org?: string): Unsubscribed {
  const b = bound(tx)
  const tenantId = org ?? b?.org
  if (!b || !tenantId) return undefined
  const gen = b.oracle.unsubscribedGen(tenantId, type)
  return gen === undefined ? undefined : { tenantId, gen }
}

/**
 * Columns and values of one outbox row, for composing into a larger statement (the change and
 * its event in one round trip). tenant_id is left to the column default, the transaction's
 * tenant, and row-level security refuses any other. processed_at is set (to the transaction's
 * time) only when the emitter found nobody subscribed under a cached subscription generation C
 * and the statement itself, in its own snapshot, finds nobody new for the transaction's tenant:
 * the generation is still C, or what moved it since changed no installation and left no active
 * webhook endpoint stamped after C that wants the type (an index range of the endpoints changed
 * since C, ADR 0105). A subscription committed before the statement started leaves the event
 * pending for the dispatcher.
 */
export const EVENT_COLUMNS = '(id, type, source, subject, data, processed_at)'
export const EVENT_VALUES = `(?::uuid, ?, ?, ?, ?::jsonb, case when trellis_current_tenant() = ?::uuid and coalesce((
    select g.gen = ?::bigint or (g.installs_gen <= ?::bigint and not exists (select 1 from webhook_endpoints w
      where w.tenant_id = g.tenant_id and w.subscribers_gen > ?::bigint and w.status = 'active' and w.types && ?::text[]))
      from event_subscriber_gens g where g.tenant_id = trellis_current_tenant()), ?::bigint = 0) then now() end)`

// Types already checked, each with its patterns as a PostgreSQL array literal: an emitter writes
// the same few types over and over, so the check and the literal are made once per type. Bounded,
// as plugins name their own types: full, it starts again.
const checkedTypes = new Map<string, string>()
const CHECKED_TYPES_MAX = 1000

/** The patterns that match `type` as an array literal; throws if `type` is not an event type. */
function typePatterns(type: string): string {
  let literal = checkedTypes.get(type)
  if (literal === undefined) {
    if (!TYPE.test(type) || type.length > 200) throw EVT.EVENT_TYPE_INVALID({ type })
    literal = `{${patternsMatching(type).join(',')}}`
    if (checkedTypes.size >= CHECKED_TYPES_MAX) checkedTypes.clear()
    checkedTypes.set(type, literal)
  }
  return literal
}

/** The values of one outbox row; `none` when the emitter knows nobody subscribes (see {@link EVENT_VALUES}). */
export function eventRow(e: EmitInput, none?: { tenantId: string; gen: string }): unknown[] {
  const patterns = typePatterns(e.type)
  if (typeof e.subject !== 'string' || e.subject.length === 0 || e.subject.length > 500)
    throw EVT.EVENT_INVALID({ reason: 'subject must be 1 to 500 characters' })
  const gen = none?.gen ?? null
  return [
    uuidv7(),
    e.type,
    e.source ?? 'trellis/kernel',
    e.subject,
    JSON.stringify(e.data ?? {}),
    none?.tenantId ?? null,
    gen,
    gen,
    gen,
    none ? patterns : null,
    gen,
  ]
}

/** Outbox rows for `tx`'s organisation (or `org`), each written processed when nobody subscribes. */
export function outboxRows(tx: Tx, events: readonly EmitInput[], org?: string): unknown[][] {
  return events.map((e) => eventRow(e, unsubscribed(tx, e.type, org)))
}

/**
 * After the statement that wrote `rows`: the pending ones go to the dispatcher once the
 * transaction commits; a row meant to be processed that came back pending means the tenant's
 * subscriptions changed since they were cached, so they are read again.
 */
export function settleOutbox(tx: Tx, rows: readonly unknown[][], pending: readonly string[]): void {
  markEmitted(tx, pending)
  const stale = rows.find((r) => r[5] !== null && pending.includes(r[0] as string))
  if (stale) bound(tx)?.oracle.stale(stale[5] as string)
}

/**
 * Tells the subscriber index of `tx`'s process that `tx` changed its organisation's webhook
 * endpoints — call once it has committed. With the generation the change produced and the types
 * it subscribed, the index moves its entry on without a read when nothing else changed since;
 * otherwise it reads what changed (ADR 0105).
 */
export function subscribersChanged(tx: Tx | undefined, gen?: string | null, types?: readonly string[]): void {
  const b = tx && bound(tx)
  if (b) b.oracle.changed(b.org, gen ?? undefined, types)
}

/** Writes events to the outbox in the caller's transaction: they commit or roll back with it. */
export async function emitEvents(tx: Tx, ...events: EmitInput[]): Promise<string[]> {
  return emitIn(tx, undefined, events)
}

async function emitIn(tx: Tx, org: string | undefined, events: readonly EmitInput[]): Promise<string[]> {
  if (events.length === 0) return []
  const rows = outboxRows(tx, events, org)
  const out = await tx.sql<{ id: string; pending: boolean }>(
    `insert into events ${EVENT_COLUMNS} values ${events.map(() => EVENT_VALUES).join(', ')} returning id::text, processed_at is null as pending`,
    rows.flat(),
  )
  settleOutbox(
    tx,
    rows,
    out.filter((r) => r.pending).map((r) => r.id),
  )
  return rows.map((r) => r[0] as string)
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
  if (targets.includes(current)) await emitIn(tx, current, events)
  const others = targets.filter((o) => o !== current)
  if (others.length === 0) return
  for (const org of others) {
    await tx.useOrg(org)
    await emitIn(tx, org, events)
  }
  await tx.useOrg(current)
}
