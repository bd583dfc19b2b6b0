// The transaction object every scoped transaction hands its body (see Database.inOrg), and the
// kernel's SQL as named prepared statements.
import { createHash } from 'node:crypto'
import { KRN } from '../errors.js'
import { queryThenCommit, type SubmitConnection } from './commit-with.js'
import type { Tx } from './database.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** A pooled pg connection, as the pools hand it out. */
export interface RawConnection {
  query(
    text: string | { name: string; text: string; values: unknown[] },
    params?: unknown[],
  ): Promise<{ rows: unknown[] }>
  __knex__disposed?: unknown
}

/**
 * The connection of one transaction. It runs one query at a time: calls made concurrently (a
 * plugin's parallel host calls) wait here, in call order, rather than in the driver (which
 * deprecates queueing). A call that finds the connection free runs at once.
 */
interface Lane {
  conn: RawConnection
  busy: boolean
  waiting: Array<() => void>
  /** Its last statement went with `commit` ({@link sqlThenCommit}): nothing more runs on it. */
  committed: boolean
}

const LANE = Symbol('lane')

type ScopedTx = Tx & { readonly [LANE]: Lane }

async function onLane(lane: Lane, query: Parameters<RawConnection['query']>[0], params?: unknown[], last = false) {
  if (lane.busy) await new Promise<void>((resolve) => lane.waiting.push(resolve))
  else lane.busy = true
  try {
    if (lane.committed) throw new Error('this transaction has committed with its last statement')
    if (!last) return (await lane.conn.query(query, params)).rows
    lane.committed = true
    return await queryThenCommit(lane.conn as unknown as SubmitConnection, query as ReturnType<typeof prepared>)
  } finally {
    // The next caller in line gets the connection as it is (still busy); none: it is free.
    const next = lane.waiting.shift()
    if (next) next()
    else lane.busy = false
  }
}

// The transaction's methods are shared by every transaction (its state rides on the object):
// a transaction is one small object, not a set of closures made for each request.
function sql(this: ScopedTx, text: string, params: unknown[] = []) {
  return onLane(this[LANE], prepared(text, params)) as Promise<never>
}
function sqlOnce(this: ScopedTx, text: string, params: unknown[] = []) {
  return onLane(this[LANE], positional(text), params) as Promise<never>
}
async function useOrg(this: ScopedTx, next: string) {
  if (!UUID.test(next)) throw KRN.NOT_FOUND({ what: 'organisation' })
  await this[LANE].conn.query(`select set_config('app.tenant_id', $1, true)`, [next])
  ;(this.orgs as Set<string>).add(next)
}

export function scopedTx(conn: RawConnection, orgs: Set<string>): Tx {
  const tx: ScopedTx = { sql, sqlOnce, useOrg, orgs, [LANE]: { conn, busy: false, waiting: [], committed: false } }
  return tx
}

/**
 * Runs `text` as the last statement of `tx` and commits `tx` in the same round trip (ADR 0111):
 * nothing may run on `tx` afterwards, and an error the caller throws after it no longer rolls the
 * statement back. If the statement fails, the transaction is rolled back as after any failed
 * statement. A transaction not opened by {@link scopedTx} (an owner transaction) runs it as
 * {@link Tx.sql} and commits as usual.
 */
export function sqlThenCommit<T>(tx: Tx, text: string, params: unknown[] = []): Promise<T[]> {
  const lane = (tx as Partial<ScopedTx>)[LANE]
  if (!lane) return tx.sql<T>(text, params)
  return onLane(lane, prepared(text, params), undefined, true) as Promise<T[]>
}

/** Whether `tx` committed with its last statement (its opener then sends no `commit`). */
export function committedWithLast(tx: Tx): boolean {
  return (tx as Partial<ScopedTx>)[LANE]?.committed === true
}

const statements = new Map<string, { name: string; text: string }>()

/**
 * The kernel's SQL is a fixed set of texts, so each becomes a named prepared statement: parsed
 * and planned once per connection instead of on every request.
 */
function prepared(text: string, values: unknown[]): { name: string; text: string; values: unknown[] } {
  let s = statements.get(text)
  if (!s) {
    s = { name: `t_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`, text: positional(text) }
    statements.set(text, s)
  }
  return { name: s.name, text: s.text, values }
}

/** `?` placeholders to PostgreSQL's `$n`, leaving quoted text alone. */
export function positional(text: string): string {
  let out = ''
  let n = 0
  let quoted = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (c === "'") quoted = !quoted
    out += c === '?' && !quoted ? `$${++n}` : c
  }
  return out
}
