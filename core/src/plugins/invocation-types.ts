import type { Tx } from '../db/database.js'
import type { InvocationTree } from './host-calls.js'
import type { Installation } from './installations.js'

export type EntryKind = 'route' | 'event' | 'action' | 'workflowStep'

/** One invocation as the kernel asks for it. */
export interface InvokeInput {
  tenantId: string
  installation: Installation
  entry: { kind: EntryKind; name: string }
  input: unknown
  caller: InvocationTree['caller']
  /** Run this version instead of the installation's current one (a workflow instance finishes on the version it started on). */
  versionId?: string
}

/** Work done in the invocation's own transaction, around the plugin (the workflow runtime records a step with its writes). */
export interface InvokeHooks<T> {
  /** Before the plugin runs; `false` skips the invocation (the transaction commits nothing of it). */
  before?(tx: Tx): Promise<boolean>
  /** After the plugin returned, before commit; what it returns is what `invoke` resolves to. */
  after?(tx: Tx, output: unknown): Promise<T>
}

/** What `invoke` resolves to when a `before` hook skipped the invocation. */
export const SKIPPED: unique symbol = Symbol('trellis.invocation.skipped')
