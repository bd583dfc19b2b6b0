// Supervision of the worker processes: the shared slots (the last one is the probation worker
// when there are two or more), cordon and retiring workers outside them, requests that await a
// worker's reply, and replacement of a worker that died (with a backoff for one that keeps
// dying at start).
import { SBX } from './errors.js'
import type { FromWorker, LoadReply, ToWorker, WireWorkerStats, WorkerConfig } from './protocol.js'
import { WorkerProcess } from './worker-process.js'

/** Replies a request may wait for. */
type Reply = LoadReply | { t: 'stats'; rid: number; stats: WireWorkerStats }

export interface SupervisorHooks {
  /** Messages about invocations (host calls and outcomes). */
  onInvocationMessage(worker: WorkerProcess, msg: FromWorker): void
  /** A worker ended: settle what it held before it is replaced. */
  onWorkerExit(worker: WorkerProcess): void
}

export interface SupervisorOptions {
  count: number
  config: WorkerConfig
  execArgv: string[]
  quiet?: boolean
}

interface Waiter {
  worker: WorkerProcess
  resolve: (reply: Reply | undefined) => void
}

export class Supervisor {
  /** The shared worker slots; a slot is empty while a crashed worker waits to be respawned. */
  readonly workers: Array<WorkerProcess | undefined>
  /** Workers outside the shared slots: cordon workers and recycled ones finishing their work. */
  private readonly extra = new Set<WorkerProcess>()
  private readonly replies = new Map<number, Waiter>()
  private nextRid = 1
  restarts = 0
  private recentCrashes = 0
  closed = false

  constructor(
    private readonly options: SupervisorOptions,
    private readonly hooks: SupervisorHooks,
  ) {
    const n = options.count
    if (!Number.isInteger(n) || n < 1) throw SBX.INVALID_REQUEST({ reason: 'workers must be a positive integer' })
    this.workers = Array.from({ length: n }, (_, i) => this.spawn(i))
  }

  /** Request ids are unique per sandbox, across invocations and requests. */
  rid(): number {
    return this.nextRid++
  }

  /** Resolves once every shared worker has said it is ready. */
  ready(): Promise<unknown> {
    return Promise.all(this.workers.map((w) => w && waitReady(w)))
  }

  live(): WorkerProcess[] {
    return this.workers.filter((w): w is WorkerProcess => w !== undefined && !w.dead)
  }

  /** Shared workers, cordon workers and retiring workers: everything that may hold a bundle. */
  all(): WorkerProcess[] {
    return [...this.live(), ...[...this.extra].filter((w) => !w.dead)]
  }

  /** The probation worker (the last shared slot) when there are two or more. */
  probation(): WorkerProcess | undefined {
    return this.workers.length >= 2 ? this.workers[this.workers.length - 1] : undefined
  }

  startCordonWorker(): WorkerProcess {
    const w = this.spawn(-1)
    w.cordon = true
    this.extra.add(w)
    return w
  }

  /** Gives a draining shared worker's slot a fresh worker; the old one finishes outside the slots. */
  replace(w: WorkerProcess): void {
    if (w.slot < 0 || this.workers[w.slot] !== w) return
    this.extra.add(w)
    this.workers[w.slot] = this.spawn(w.slot)
  }

  /** Sends a request and resolves with the worker's reply, or undefined if the worker ends first. */
  request<T extends Reply>(worker: WorkerProcess, build: (rid: number) => ToWorker): Promise<T | undefined> {
    return new Promise((resolve) => {
      const rid = this.rid()
      this.replies.set(rid, { worker, resolve: resolve as (r: Reply | undefined) => void })
      worker.send(build(rid))
    })
  }

  /** The worker's own figures, its resident memory read from /proc when possible. */
  async stats(worker: WorkerProcess, refresh?: boolean): Promise<WireWorkerStats | undefined> {
    const reply = await this.request<Reply & { t: 'stats' }>(worker, (rid) => ({ t: 'stats', rid, refresh }))
    return reply && { ...reply.stats, rssBytes: worker.rssBytes() ?? reply.stats.rssBytes }
  }

  async close(): Promise<void> {
    this.closed = true
    await Promise.all(
      this.all().map(
        (w) =>
          new Promise<void>((resolve) => {
            const force = setTimeout(() => w.kill('closing'), 2000)
            w.child.once('close', () => {
              clearTimeout(force)
              resolve()
            })
            w.send({ t: 'shutdown' })
          }),
      ),
    )
  }

  private spawn(slot: number): WorkerProcess {
    return new WorkerProcess(
      slot,
      this.options.config,
      this.options.execArgv,
      (w, msg) => this.onMessage(w, msg),
      (w) => this.onExit(w),
      this.options.quiet,
    )
  }

  private onMessage(worker: WorkerProcess, msg: FromWorker): void {
    switch (msg?.t) {
      case 'loaded':
      case 'loadFailed':
      case 'stats': {
        const waiter = this.replies.get(msg.rid)
        if (!waiter) return
        this.replies.delete(msg.rid)
        return waiter.resolve(msg)
      }
      case 'ready':
        return
      default:
        this.hooks.onInvocationMessage(worker, msg)
    }
  }

  private onExit(worker: WorkerProcess): void {
    this.hooks.onWorkerExit(worker)
    for (const [rid, w] of this.replies)
      if (w.worker === worker) {
        this.replies.delete(rid)
        w.resolve(undefined)
      }
    if (this.extra.delete(worker)) return
    if (this.closed || this.workers[worker.slot] !== worker) return
    this.restarts++
    // A worker that dies right after starting would otherwise be respawned in a tight loop.
    const early = Date.now() - worker.startedAt < 5000
    this.recentCrashes = early ? this.recentCrashes + 1 : 0
    const delay = early ? Math.min(5000, 50 * 2 ** Math.min(this.recentCrashes, 7)) : 0
    const respawn = () => {
      if (!this.closed) this.workers[worker.slot] = this.spawn(worker.slot)
    }
    if (delay) {
      this.workers[worker.slot] = undefined
      setTimeout(respawn, delay).unref()
    } else respawn()
  }
}

function waitReady(w: WorkerProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    const onMessage = (msg: { t?: string }) => {
      if (msg?.t !== 'ready') return
      w.child.off('message', onMessage)
      w.child.off('exit', onExit)
      resolve()
    }
    const onExit = () => reject(SBX.WORKER_LOST({ reason: `worker failed to start: ${w.deathReason}` }))
    w.child.on('message', onMessage)
    w.child.once('exit', onExit)
  })
}
