// The transaction object every scoped transaction hands its body (see Database.inOrg), and the
// kernel's SQL as named prepared statements.
import { createHash } from 'node:crypto'
import { KRN } from '../errors.js'
import { BEGIN, COMMIT, oneSync, type Statement, type SubmitConnection } from './one-sync.js'
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
  /**
   * The scoping statement of a transaction not yet begun ({@link scopedTx} with `opening`): sent
   * with `begin` ahead of the first statement, in its round trip; null once sent.
   */
  opening: Statement | null
  /** Why the opening refused the transaction (a suspended organisation): every later call fails with it. */
  refused?: Error
}

const LANE = Symbol('lane')

type ScopedTx = Tx & { readonly [LANE]: Lane }

async function onLane(lane: Lane, query: Parameters<RawConnection['query']>[0], params?: unknown[], last = false) {
  if (lane.busy) await new Promise<void>((resolve) => lane.waiting.push(resolve))
  else lane.busy = true
  try {
    if (lane.refused) throw lane.refused
    if (lane.committed) throw new Error('this transaction has committed with its last statement')
    const opening = lane.opening
    if (opening !== null) {
      lane.opening = null
      // A prepared statement takes `begin` and the scoping along; anything else (text that may
      // hold several statements) follows them in a round trip of their own.
      if (typeof query !== 'string') return await refusing(lane, inOneSync(lane, query, [BEGIN, opening], last))
      await refusing(lane, inOneSync(lane, opening, [BEGIN], false))
    }
    if (!last) return (await lane.conn.query(query, params)).rows
    return await inOneSync(lane, query as ReturnType<typeof prepared>, [], true)
  } finally {
    // The next caller in line gets the connection as it is (still busy); none: it is free.
    const next = lane.waiting.shift()
    if (next) next()
    else lane.busy = false
  }
}

async function inOneSync(lane: Lane, query: Statement, open: Statement[], commit: boolean) {
  const rows = await oneSync(lane.conn as unknown as SubmitConnection, query, { open, commit })
  // Committed: nothing more may run. A failed statement left the transaction failed instead (its
  // later statements fail, and the opener's `commit` ends it as a rollback).
  if (commit) lane.committed = true
  return rows
}

/** The opening's refusal of a suspended organisation, as the error the kernel answers with. */
const REFUSALS: Record<string, () => Error> = {
  TRS01: () => KRN.TENANT_SUSPENDED(),
  TRS02: () => KRN.PARTNER_SUSPENDED(),
}

async function refusing<T>(lane: Lane, sent: Promise<T>): Promise<T> {
  try {
    return await sent
  } catch (err) {
    const refusal = REFUSALS[(err as { code?: string }).code ?? '']
    if (!refusal) throw err
    lane.refused = refusal()
    throw lane.refused
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
  await onLane(this[LANE], `select set_config('app.tenant_id', $1, true)`, [next])
  ;(this.orgs as Set<string>).add(next)
}

/**
 * A transaction on `conn`. With `opening` (a scoping statement) it is not yet begun: `begin` and
 * `opening` go with its first statement (ADR 0112); without, the caller has begun it.
 */
export function scopedTx(conn: RawConnection, orgs: Set<string>, opening: Statement | null = null): Tx {
  const lane: Lane = { conn, busy: false, waiting: [], committed: false, opening }
  const tx: ScopedTx = { sql, sqlOnce, useOrg, orgs, [LANE]: lane }
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

/**
 * Ends `tx` once its body is done: sends `commit` unless its last statement carried it; a
 * transaction whose body sent nothing runs its opening alone (so a suspended organisation is
 * refused all the same); a refused one throws its refusal, even if the body caught it.
 */
export async function settle(tx: Tx): Promise<void> {
  const lane = (tx as ScopedTx)[LANE]
  if (lane.refused) throw lane.refused
  if (lane.committed) return
  if (lane.opening === null) {
    await oneSync(lane.conn as unknown as SubmitConnection, COMMIT, { open: [], commit: false })
    return
  }
  const opening = lane.opening
  lane.opening = null
  // Its own implicit transaction (one Sync, no `begin`): nothing is left open.
  lane.committed = true
  await refusing(lane, oneSync(lane.conn as unknown as SubmitConnection, opening, { open: [], commit: false }))
}

/**
 * After `err` ended the body of `tx` (or its settling): the error to answer with — the opening's
 * refusal when there was one, whatever the body made of it — and whether the transaction is
 * begun (its opener rolls it back).
 */
export function abandoned(tx: Tx, err: unknown): { err: unknown; begun: boolean } {
  const lane = (tx as ScopedTx)[LANE]
  return { err: lane.refused ?? err, begun: lane.opening === null && !lane.committed }
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

/**
 * Begins a transaction on `conn` with `scoping` (a statement returning one row) in one round trip,
 * both prepared once per connection; resolves with the scoping's row.
 */
export async function begin<T>(conn: RawConnection, scoping: Statement): Promise<T> {
  const rows = await oneSync(conn as unknown as SubmitConnection, scoping, { open: [BEGIN], commit: false })
  return rows[0] as T
}
