import type { TrellisError } from '@trellis/plugin-sdk'
import type { Database, Tx } from '../db/database.js'
import type { TenantTx } from './tenant-tx.js'
import { PLG } from '../errors.js'

const SUSPECT_MS = 60_000

/**
 * Caps how many plugin transactions one tenant holds at once, so the shared pool always keeps
 * connections for other tenants. A tenant's further invocations wait here, in the tenant's own
 * queue, not in the pool's queue in front of everybody else.
 */
export class TransactionGate {
  private readonly tenants = new Map<string, { held: number; queue: Array<() => void> }>()
  private readonly suspects = new Map<string, number>()

  constructor(readonly perTenant: number) {}

  /** Resolves to a release function once the tenant may open one more transaction. */
  async acquire(tenantId: string): Promise<() => void> {
    let s = this.tenants.get(tenantId)
    if (!s) {
      s = { held: 0, queue: [] }
      this.tenants.set(tenantId, s)
    }
    const slot = s
    if (slot.held >= this.perTenant) await new Promise<void>((resolve) => slot.queue.push(resolve))
    else slot.held++
    let released = false
    return () => {
      if (released) return
      released = true
      // The slot passes straight to the next waiter of the same tenant.
      const next = slot.queue.shift()
      if (next) return next()
      slot.held--
      if (slot.held === 0 && this.tenants.get(tenantId) === slot) this.tenants.delete(tenantId)
    }
  }

  /**
   * Marks a tenant whose plugin left a transaction idle past its limit: for a while, its idle
   * transactions give way to waiting work after the shorter, contended limit.
   */
  strike(tenantId: string, forMs = SUSPECT_MS): void {
    this.suspects.set(tenantId, Date.now() + forMs)
  }

  suspect(tenantId: string): boolean {
    const until = this.suspects.get(tenantId)
    if (until === undefined) return false
    if (until > Date.now()) return true
    this.suspects.delete(tenantId)
    return false
  }

  /** Transactions the tenant holds now (for tests and metrics). */
  held(tenantId: string): number {
    return this.tenants.get(tenantId)?.held ?? 0
  }
}

/** How long an open plugin transaction may sit unused: at all, and while others wait for a connection. */
export interface TransactionLimits {
  idleMs: number
  contendedIdleMs: number
}

/** What an invocation's transaction needs of the kernel. */
export interface InvocationTxDeps {
  tenantTx: TenantTx
  /** Whether others wait for a connection (an idle transaction then gives way sooner). */
  db: Pick<Database, 'waitingForConnection'>
}

/**
 * The tenant transaction of one invocation tree, opened on the first host call that needs the
 * database — not while the plugin merely runs — and kept until the invocation ends, so all its
 * writes and emitted events still commit together. While it is open, the plugin may spend at
 * most `idleMs` between database calls — `contendedIdleMs` while anybody waits for a connection,
 * if its tenant overran the limit lately — past
 * that the transaction is rolled back at once, its connection returns to the pool, and the
 * invocation fails with `PLG_ERR_TRANSACTION_IDLE`.
 */
export class InvocationTx {
  private opening: Promise<Tx> | undefined
  private tx: Tx | undefined
  private finish: ((value: unknown) => void) | undefined
  private fail: ((err: unknown) => void) | undefined
  private done: Promise<unknown> | undefined
  private busy = 0
  private timer: NodeJS.Timeout | undefined
  private ended: TrellisError | Error | undefined
  /** Calls of {@link use} running now, and the gate an {@link exclusive} run holds meanwhile. */
  private using = 0
  private drained: Array<() => void> = []
  private exclusiveHeld: Promise<void> | undefined

  constructor(
    private readonly k: InvocationTxDeps,
    private readonly tenantId: string,
    private readonly gate: TransactionGate,
    private readonly limits: TransactionLimits,
    /** Told when the idle limit ended the invocation (it rejects the invocation right away). */
    private readonly onIdle: (err: TrellisError) => void,
  ) {}

  /** The transaction once open (also after it ended): what it remembered, e.g. the personal values it read. */
  get current(): Tx | undefined {
    return this.tx
  }

  /** Whether the transaction was asked for (it may still be opening). */
  get started(): boolean {
    return this.opening !== undefined
  }

  /** Runs `fn` (kernel work for the plugin, not plugin code) without counting its time as idle. */
  async busyWhile<R>(fn: () => Promise<R>): Promise<R> {
    this.busy++
    clearTimeout(this.timer)
    try {
      return await fn()
    } finally {
      this.busy--
      this.arm()
    }
  }

  /** Runs `fn` with the transaction if one was asked for (as {@link use}), else with none. */
  async ifOpen<R>(fn: (tx: Tx | undefined) => Promise<R>): Promise<R> {
    return this.opening && !this.ended ? this.use(fn) : fn(undefined)
  }

  /** Runs `fn` in the invocation's transaction, opening it first if needed; time spent in `fn` is not idle time. */
  async use<R>(fn: (tx: Tx) => Promise<R>): Promise<R> {
    while (this.exclusiveHeld) await this.exclusiveHeld
    return this.enter(fn)
  }

  /**
   * Runs `fn` in the transaction with nothing else of the invocation running in it meanwhile:
   * waits for the calls already in it, and holds later ones until `fn` is done — for kernel
   * work that switches the transaction's organisation (the AI service's budgets on the
   * embedded database), which a concurrent host call must never observe.
   */
  async exclusive<R>(fn: (tx: Tx) => Promise<R>): Promise<R> {
    while (this.exclusiveHeld) await this.exclusiveHeld
    let open!: () => void
    this.exclusiveHeld = new Promise<void>((resolve) => (open = resolve))
    try {
      if (this.using > 0) await new Promise<void>((resolve) => this.drained.push(resolve))
      return await this.enter(fn)
    } finally {
      this.exclusiveHeld = undefined
      open()
    }
  }

  private async enter<R>(fn: (tx: Tx) => Promise<R>): Promise<R> {
    if (this.ended) throw this.ended
    this.busy++
    this.using++
    clearTimeout(this.timer)
    try {
      return await fn(await this.open())
    } finally {
      this.busy--
      if (--this.using === 0) for (const resolve of this.drained.splice(0)) resolve()
      this.arm()
    }
  }

  /**
   * Ends the invocation successfully: runs `final` in the transaction (opening it only if
   * `needsTx`), then commits. Without an open transaction and nothing to write, costs nothing.
   */
  async commit<R>(final: ((tx: Tx) => Promise<R>) | undefined, needsTx: boolean): Promise<R | undefined> {
    if (this.ended) throw this.ended
    if (!this.opening && !needsTx) {
      this.ended = new Error('invocation ended')
      return undefined
    }
    this.busy++
    clearTimeout(this.timer)
    let result: R | undefined
    try {
      const tx = await this.open()
      result = final ? await final(tx) : undefined
    } catch (err) {
      this.busy--
      await this.rollback(err)
      throw err
    }
    this.ended = new Error('invocation ended')
    this.finish!(undefined)
    await this.done
    return result
  }

  /** Ends the invocation unsuccessfully: whatever it wrote is rolled back and the connection released. */
  async rollback(reason: unknown): Promise<void> {
    this.ended ??= reason instanceof Error ? reason : new Error('invocation failed')
    clearTimeout(this.timer)
    // Still waiting for a connection: the opening sees `ended` and lets go by itself.
    if (!this.fail) return
    this.fail(this.ended)
    await this.done!.catch(() => undefined)
  }

  private open(): Promise<Tx> {
    this.opening ??= (async () => {
      const release = await this.gate.acquire(this.tenantId)
      if (this.ended) {
        release()
        throw this.ended
      }
      return new Promise<Tx>((resolve, reject) => {
        this.done = this.k.tenantTx(this.tenantId, (tx) => {
          if (this.ended) return Promise.reject(this.ended)
          this.tx = tx
          const settled = new Promise((res, rej) => {
            this.finish = res
            this.fail = rej
          })
          resolve(tx)
          return settled
        })
        this.done.then(release, (err: unknown) => {
          release()
          reject(err)
        })
      })
    })()
    return this.opening
  }

  private arm(): void {
    if (this.busy > 0 || !this.tx || this.ended) return
    clearTimeout(this.timer)
    const since = performance.now()
    const { idleMs, contendedIdleMs } = this.limits
    const tick = () => {
      if (this.busy > 0 || this.ended) return
      const idle = performance.now() - since
      // A tenant whose plugins already left a transaction idle too long gives way after the
      // shorter limit while others wait for a connection (the pool is exhausted, or it is the
      // embedded database's only one). Others keep the whole limit, so a plugin that is merely
      // slow to finish on a busy machine, or a tenant's own concurrent work, is not cut off.
      const contended =
        idle >= contendedIdleMs && this.gate.suspect(this.tenantId) && this.k.db.waitingForConnection() > 0
      if (idle >= idleMs || contended) {
        const err = PLG.TRANSACTION_IDLE({ limitMs: contended ? contendedIdleMs : idleMs })
        this.gate.strike(this.tenantId)
        this.onIdle(err)
        void this.rollback(err)
        return
      }
      this.timer = setTimeout(tick, Math.min(contendedIdleMs, Math.max(1, idleMs - idle)))
      this.timer.unref()
    }
    this.timer = setTimeout(tick, Math.min(contendedIdleMs, idleMs))
    this.timer.unref()
  }
}
