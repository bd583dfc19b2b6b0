// Record and replay the SQL a plugin request causes: every statement on every pg connection is
// captured while one request runs; its tenant transaction (the one that wrote the audit log) is
// kept, with what is the request's own replaced by placeholders; a native route replays it —
// the same statements, text and parameters, in order, in one tenant transaction — with fresh ids
// and fresh unique strings. This is the baseline "the same SQL run natively" that the ERP
// benchmarks compare the plugin path with.
import { createRequire } from 'node:module'
import { v7 as uuidv7 } from 'uuid'
import type { Tx } from '../../core/src/db/database.js'

export interface Statement {
  text: string
  /** Named statements are replayed named (prepared), unnamed ones unnamed, as recorded. */
  named: boolean
  values: unknown[]
}

const pg = createRequire(import.meta.url)('pg') as {
  Client: { prototype: { query: (...a: unknown[]) => unknown } }
}
const query = pg.Client.prototype.query
let recording: Map<object, Statement[]> | undefined
pg.Client.prototype.query = function (this: object, config: unknown, values?: unknown, cb?: unknown) {
  if (recording) {
    const c = config as
      | { text?: string; name?: string; values?: unknown[]; around?: { open: Statement[]; commit: boolean } }
      | string
    const list = recording.get(this) ?? []
    const add = (text: string, named: boolean, v: unknown) =>
      list.push({ text, named, values: JSON.parse(JSON.stringify(v ?? [])) })
    // A transaction's opening, statement and commit sent in one round trip (ADR 0112): each on its own.
    if (typeof c === 'object') for (const o of c.around?.open ?? []) add(o.text, true, o.values)
    add(
      typeof c === 'string' ? c : (c.text ?? ''),
      typeof c === 'object' && c.name !== undefined,
      (typeof c === 'object' ? c.values : undefined) ?? values,
    )
    if (typeof c === 'object' && c.around?.commit) add('commit', true, [])
    recording.set(this, list)
  }
  return query.call(this, config, values, cb)
}

const SCOPING = "select set_config('role'"

/** A connection's statements, cut into transactions (each from its BEGIN), without their scoping. */
function transactions(list: Statement[]): Statement[][] {
  const out: Statement[][] = []
  for (const s of list) {
    if (s.text === 'begin' || s.text.startsWith('begin;')) out.push([])
    if (!s.text.startsWith(SCOPING)) out.at(-1)?.push(s)
  }
  return out
}

/**
 * Runs `request` while recording and answers the statements of the tenant transaction that wrote
 * its audit entry, between BEGIN (and scoping) and COMMIT, without the kernel's own re-reads of
 * plugin versions (or what `keep` keeps). In their values, each of `own` (strings unique to this request: a receipt or
 * credit-note number) becomes `§S<i>§`, and each UUIDv7 made after recording began `§U<n>§`.
 */
export async function record(
  request: () => Promise<unknown>,
  own: string[],
  keep: (s: Statement) => boolean = (s) => !s.text.includes('plugin_versions'),
): Promise<Statement[]> {
  const since = Date.now()
  const mine = new Map<object, Statement[]>()
  recording = mine
  try {
    await request()
  } finally {
    recording = undefined
  }
  const writes = (t: Statement[]) =>
    t.some((s) => s.text.includes('plugin_records')) && t.some((s) => s.text.includes('audit_log'))
  const tx = [...mine.values()].flatMap(transactions).find(writes)
  if (!tx) throw new Error('the request transaction was not recorded')
  const body = tx
    .slice(
      1,
      tx.findIndex((s) => s.text === 'commit'),
    )
    .filter(keep)
  // One placeholder per id across the whole transaction: an id made once is the same id everywhere.
  const fresh = new Map<string, string>()
  return body.map((s) => ({ ...s, values: generalise(s.values, own, since, fresh) }))
}

function generalise(values: unknown[], own: string[], since: number, fresh: Map<string, string>): unknown[] {
  let text = JSON.stringify(values).replace(/[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}/g, (u) => {
    if (Number.parseInt(u.replace(/-/g, '').slice(0, 12), 16) < since - 5) return u
    if (!fresh.has(u)) fresh.set(u, `§U${fresh.size}§`)
    return fresh.get(u)!
  })
  // Longest first, so that a string containing another is replaced whole.
  for (const [i, s] of [...own.entries()].sort((a, b) => b[1].length - a[1].length))
    text = text.split(s).join(`§S${i}§`)
  return JSON.parse(text)
}

const UPDATE_RECORD = 'update plugin_records r set data'
const INSERT_EVENT = 'insert into events'

/**
 * Replays a recording in `tx` with fresh ids and `own[i]` for each `§S<i>§`; each record update's
 * expected version comes from what the statements before it returned (as the plugin reads a
 * record, then updates it at that version). Answers the ids of the events it wrote pending (those
 * the dispatcher takes; an event nobody subscribes to is written processed, ADR 0082).
 */
export async function replay(tx: Tx, statements: Statement[], own: string[]): Promise<string[]> {
  const ids = new Map<string, string>()
  const versions = new Map<string, number>()
  const events: string[] = []
  for (const s of statements) {
    const values = JSON.parse(
      JSON.stringify(s.values)
        .replace(/§U(\d+)§/g, (_, n: string) => {
          if (!ids.has(n)) ids.set(n, uuidv7())
          return ids.get(n)!
        })
        .replace(/§S(\d+)§/g, (_, i: string) => own[Number(i)]!),
    ) as unknown[]
    // The record update's parameters: plugin, collection, id, patch, time, plugin, collection, id, version, patch.
    if (s.text.includes(UPDATE_RECORD)) values[8] = versions.get(values[2] as string) ?? values[8]
    const rows = await (s.named ? tx.sql(s.text, values) : tx.sqlOnce(s.text, values))
    for (const r of rows as Array<{ id?: unknown; version?: unknown; new_version?: unknown; pending?: boolean }>) {
      if (s.text.startsWith(INSERT_EVENT) && r.pending) events.push(r.id as string)
      const v = r.new_version ?? r.version
      if (typeof r.id === 'string' && typeof v === 'number') versions.set(r.id, v)
    }
  }
  return events
}
