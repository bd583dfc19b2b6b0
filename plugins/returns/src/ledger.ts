// The quantities live return authorisations hold against an order's lines. One record per order
// (a unique index) is where concurrent returns of the same order meet: a version conflict reads
// it again and checks again, so together they never hold more than was shipped.
import type { Ctx, Ledger, Stored } from './types.js'

const isConflict = (err: unknown) => (err as { code?: string }).code === 'KRN_ERR_CONFLICT'

/**
 * Adds `delta` per line to the order's ledger when `fits` accepts the held quantities after it
 * (answers null when it does not; negative deltas release). Retries on concurrent changes.
 */
export async function hold(
  ctx: Ctx,
  order: string,
  delta: Array<{ line: number; quantity: number }>,
  fits: (held: Map<number, number>) => string | null,
): Promise<string | null> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const rec = (await ctx.data.ledgers.find({ where: { order }, limit: 1 })).items[0] as Stored<Ledger> | undefined
    const held = new Map((rec?.lines ?? []).map((l) => [l.line, l.quantity]))
    for (const d of delta) held.set(d.line, Math.max(0, (held.get(d.line) ?? 0) + d.quantity))
    const refused = fits(held)
    if (refused) return refused
    const lines = [...held].map(([line, quantity]) => ({ line, quantity }))
    try {
      if (rec) await ctx.data.ledgers.update(rec.id, { lines }, rec.version)
      else await ctx.data.ledgers.insert({ order, lines })
      return null
    } catch (err) {
      if (!isConflict(err)) throw err
    }
  }
  throw new Error(`the return ledger of order ${order} kept changing; try again`)
}
