import type { TransactionSource } from '../../src/db/database.js'

/** What {@link parkTransactions} holds: how many transactions hold a connection, and the way out. */
export interface Parked {
  /** Transactions that got a connection and wait, parked, in it. */
  count(): number
  /** Lets every parked transaction end, and waits for all of them (the ones still queued too). */
  release(): Promise<void>
}

/**
 * Opens `open` transactions on `pool` (the request pool, or `db.background`) that keep their
 * connections until `release()`, and resolves once `holding` of them hold one — so a test can
 * show what still works while that pool has no connection to give.
 */
export async function parkTransactions(
  pool: Pick<TransactionSource, 'inOrg'>,
  orgId: string | null,
  open: number,
  holding = open,
): Promise<Parked> {
  let release!: () => void
  const released = new Promise<void>((r) => {
    release = r
  })
  let parked = 0
  const holders = Array.from({ length: open }, () =>
    pool.inOrg(orgId, async () => {
      parked++
      await released
    }),
  )
  while (parked < holding) await new Promise((r) => setImmediate(r))
  return {
    count: () => parked,
    release: async () => {
      release()
      await Promise.all(holders)
    },
  }
}
