import type { Tx } from '../db/database.js'

/**
 * A transaction in one organisation (see `orgTx` in kernel-context.ts): refuses a suspended
 * organisation unless told otherwise, seals what it audited and dispatches what it emitted once
 * it has committed. The service nearly every route module is given.
 */
export type OrgTx = <T>(orgId: string, fn: (tx: Tx) => Promise<T>, opts?: { allowSuspended?: boolean }) => Promise<T>
