import type { Tx } from '../db/database.js'
import { sqlThenCommit } from '../db/scoped-tx.js'
import {
  EVENT_COLUMNS,
  EVENT_VALUES,
  type EmitInput,
  emitEventsTo,
  outboxRows,
  settleOutbox,
} from '../events/outbox.js'
import { AUDIT_COLUMNS, AUDIT_VALUES, type AuditRecord, auditRow } from './audit-log.js'

const PENDING = 'trellis_pending_events'

/** One audited change as its route describes it. */
export interface AuditedChange {
  /**
   * The row write: one `insert`, `update` or `delete … returning …` with `?` placeholders.
   * When it returns no row, nothing else is written either (the caller answers 404 or 409).
   * Omitted for acts that change no row of their own (a sign-in, a redelivery).
   */
  write?: { sql: string; params: unknown[] }
  /** The organisation whose audit chain records the act (the transaction's, as a rule). */
  auditOrg: string
  audit: AuditRecord | AuditRecord[]
  /** Events for the transaction's organisation's outbox. */
  events?: EmitInput[]
  /**
   * The same events also go to these organisations' outboxes (the few acts whose news belongs
   * to more than one, e.g. a tenant's suspension is its partner's news too): `current` is the
   * transaction's organisation.
   */
  alsoTo?: { current: string; orgs: ReadonlyArray<string | null | undefined> }
  /**
   * This write is the last statement of its transaction: its `commit` goes in the same round
   * trip (ADR 0111), and nothing may run on the transaction afterwards. Ignored with `alsoTo`
   * (events for other organisations may take statements more).
   */
  last?: boolean
}

/**
 * The one path every audited kernel write takes: the row write, its audit entries and its
 * events in ONE statement (a data-modifying CTE), run as a named prepared statement — so an
 * audited write costs one round trip between `begin` and `commit`, whichever route makes it.
 * The audit and event inserts are conditional on the write having touched a row, so a write
 * that found nothing leaves no trace. Returns the write's rows.
 */
export async function auditedWrite<T = Record<string, unknown>>(tx: Tx, change: AuditedChange): Promise<T[]> {
  const records = Array.isArray(change.audit) ? change.audit : [change.audit]
  const events = change.events ?? []
  const inHere = !change.alsoTo || change.alsoTo.orgs.includes(change.alsoTo.current)
  const local = inHere ? events : []
  const eventRows = outboxRows(tx, local, change.alsoTo?.current)
  const text = statementText(change.write?.sql, records.length, eventRows.length)
  // The write's parameters, then each audit entry's, then each event's (in the text's order).
  const params = change.write ? change.write.params.slice() : []
  for (const r of records) append(params, auditRow(change.auditOrg, r))
  for (const row of eventRows) append(params, row)
  const rows = await (change.last && !change.alsoTo ? sqlThenCommit<T>(tx, text, params) : tx.sql<T>(text, params))
  const wrote = !change.write || rows.length > 0
  if (!wrote) return []
  if (eventRows.length) {
    settleOutbox(
      tx,
      eventRows,
      ((rows[0] as unknown as Record<string, unknown>)[PENDING] as string[] | undefined) ?? [],
    )
    for (const r of rows) delete (r as unknown as Record<string, unknown>)[PENDING]
  }
  if (change.alsoTo && events.length) {
    const others = change.alsoTo.orgs.filter((o) => o !== change.alsoTo!.current)
    await emitEventsTo(tx, change.alsoTo.current, others, ...events)
  }
  return change.write ? rows : []
}

function append(to: unknown[], values: readonly unknown[]): void {
  for (let i = 0; i < values.length; i++) to.push(values[i])
}

// Each statement's text, built once per shape (the write, how many audit entries and events):
// the same string every time, so the lookup of its prepared statement needs no hashing of a
// newly built text on every request.
const texts = new Map<string, Map<number, string>>()

function statementText(write: string | undefined, audits: number, events: number): string {
  let byShape = texts.get(write ?? '')
  if (!byShape) texts.set(write ?? '', (byShape = new Map()))
  const shape = audits * 65_536 + events
  let text = byShape.get(shape)
  if (text === undefined) byShape.set(shape, (text = buildText(write, audits, events)))
  return text
}

function buildText(write: string | undefined, audits: number, events: number): string {
  const when = write ? ' where exists (select 1 from w)' : ''
  const parts: string[] = []
  if (write) parts.push(`w as (${write})`)
  if (audits)
    parts.push(
      `a as (insert into audit_log ${AUDIT_COLUMNS} select * from (values ${Array(audits).fill(AUDIT_VALUES).join(', ')}) v${when})`,
    )
  if (events)
    parts.push(
      `e as (insert into events ${EVENT_COLUMNS} select * from (values ${Array(events).fill(EVENT_VALUES).join(', ')}) v${when} returning id, processed_at)`,
    )
  // The events left pending (for the dispatcher) come back beside the write's own rows.
  const pending = events
    ? `, (select coalesce(array_agg(e.id::text), '{}') from e where e.processed_at is null) as ${PENDING}`
    : ''
  return `with ${parts.join(', ')} ${write ? `select w.*${pending} from w` : `select 1${pending}`}`
}
