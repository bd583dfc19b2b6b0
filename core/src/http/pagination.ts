import { Type, type TSchema } from '@sinclair/typebox'
import { KRN } from '../errors.js'
import type { Tx } from '../db/database.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export const PageQuery = {
  cursor: Type.Optional(
    Type.String({ maxLength: 200, description: "Opaque cursor from a previous page's nextCursor." }),
  ),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
}

export function pageOf<T extends TSchema>(item: T) {
  return Type.Object({ items: Type.Array(item), nextCursor: Type.Union([Type.String(), Type.Null()]) })
}

/** Cursors are opaque to clients: base64url of the last id seen, checked strictly on the way back in. */
export function encodeCursor(lastId: string): string {
  return Buffer.from(JSON.stringify({ k: lastId })).toString('base64url')
}

export function decodeCursor(cursor: string | undefined): string | null {
  if (cursor === undefined || cursor === '') return null
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { k?: unknown }
    if (typeof parsed.k === 'string' && UUID.test(parsed.k)) return parsed.k
  } catch {
    // fall through
  }
  throw KRN.INVALID_CURSOR()
}

/** Given limit+1 rows ordered by id, returns the page and the cursor for the next one. */
export function toPage<T extends { id: string }>(rows: T[], limit: number): { items: T[]; nextCursor: string | null } {
  const items = rows.slice(0, limit)
  return { items, nextCursor: rows.length > limit ? encodeCursor(items[items.length - 1]!.id) : null }
}

/** {@link toPage}, with each row of the page turned into what the API shows. */
export function toPageOf<T extends { id: string }, V>(
  rows: T[],
  limit: number,
  view: (row: T) => V,
): { items: V[]; nextCursor: string | null } {
  const page = toPage(rows, limit)
  return { items: page.items.map(view), nextCursor: page.nextCursor }
}

/**
 * One page of a list in id order, oldest first: `select` is the query up to its `where` (a
 * filter may follow, ending in `and`), `id` the id column it pages by. Reads limit+1 rows after
 * the query's cursor, the SQL every simple list route runs.
 */
export async function pageAfterCursor<T extends { id: string }, V>(
  tx: Pick<Tx, 'sql'>,
  list: { select: string; params?: unknown[]; id?: string },
  query: { cursor?: string; limit?: number },
  view: (row: T) => V,
): Promise<{ items: V[]; nextCursor: string | null }> {
  const after = decodeCursor(query.cursor)
  const limit = query.limit ?? 50
  const id = list.id ?? 'id'
  const rows = await tx.sql<T>(`${list.select} (?::uuid is null or ${id} > ?::uuid) order by ${id} limit ?`, [
    ...(list.params ?? []),
    after,
    after,
    limit + 1,
  ])
  return toPageOf(rows, limit, view)
}
