import type { Database, Tx } from '../db/database.js'

/**
 * A transaction as `trellis_signin`: the only role that may look up what sign-in needs before
 * an organisation is known (an account by its exact e-mail, an API key or an invitation by id,
 * a refresh token by its hash). No organisation is in force, so every tenant row stays hidden.
 */
export function signInTx<T>(db: Database, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return db.inOrg(null, (tx) => fn(tx), 'trellis_signin')
}

export interface Account {
  id: string
  password_hash: string | null
  status: string
}

/** The account with exactly this e-mail (case-insensitive), for verifying a password; never a list. */
export async function accountByEmail(tx: Tx, email: string): Promise<Account | undefined> {
  const [row] = await tx.sql<Account>('select id, password_hash, status from trellis_signin_account(?)', [email])
  return row
}
