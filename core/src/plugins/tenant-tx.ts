import type { Tx } from '../db/database.js'

/**
 * A transaction in a tenant (or any organisation) that refuses a suspended one, seals what it
 * audited and dispatches what it emitted once it has committed — the kernel's `orgTx`, handed
 * to the plugin host and the workflow runtime as a service instead of the whole kernel context.
 */
export type TenantTx = <T>(orgId: string, fn: (tx: Tx) => Promise<T>) => Promise<T>
