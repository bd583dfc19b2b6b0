// Where an invocation runs: its tenant's cordon worker, the probation worker for keys without a
// track record, else the least busy shared worker (sticky per key, for warm isolates) that has
// room for its isolate's memory limit. Also what the sandbox has learnt about keys and bundles
// from outcomes and worker crashes.
import { SBX } from './errors.js'
import type { Cordons } from './cordons.js'
import type { WorkerProcess } from './worker-process.js'

const MAX_STICKY_KEYS = 100_000
const SUSPECT_MS = 15 * 60_000

/** What the parent has learnt about a key (or a bundle) from outcomes and worker crashes. */
interface Reputation {
  ok: number
  blame: number
  suspectUntil: number
}

export interface PlacementSettings {
  /** Sum of the memory limits of the isolates one worker may run invocations in at once. */
  workerIsolateMemoryMb: number
  /** Sum of the memory limits of one tenant's isolates with invocations in flight on the shared workers. */
  tenantIsolateMemoryMb: number
  /** Successful invocations after which a key leaves probation. */
  probationInvocations: number
}

export class Placement {
  private readonly sticky = new Map<string, number>()
  private readonly reputation = new Map<string, Reputation>()
  /** Isolate memory (MB) each tenant has in flight on the shared workers. */
  private readonly tenantCommitted = new Map<string, number>()
  /** Invocations in flight per worker and isolate key. */
  private readonly inflightIsolates = new WeakMap<WorkerProcess, Map<string, number>>()

  constructor(
    private readonly settings: PlacementSettings,
    readonly cordons: Cordons,
    /** The shared worker slots (the last is the probation worker when there are two or more). */
    private readonly shared: () => ReadonlyArray<WorkerProcess | undefined>,
    private readonly startCordonWorker: () => WorkerProcess,
  ) {}

  /**
   * Counts an invocation's isolate against its worker (and tenant, on a shared worker).
   * Concurrent invocations of one tenant's plugins (with one memory limit) share its isolate and
   * so one heap limit: the memory is counted once per isolate in flight, not once per invocation.
   */
  commit(w: WorkerProcess, tenantId: string, isolateKey: string, memoryMb: number): void {
    const isolates = this.isolatesOf(w)
    const n = isolates.get(isolateKey) ?? 0
    isolates.set(isolateKey, n + 1)
    if (n > 0) return
    w.committedMb += memoryMb
    if (!w.cordon) this.tenantCommitted.set(tenantId, (this.tenantCommitted.get(tenantId) ?? 0) + memoryMb)
  }

  release(w: WorkerProcess, tenantId: string, isolateKey: string, memoryMb: number): void {
    const isolates = this.isolatesOf(w)
    const n = isolates.get(isolateKey) ?? 0
    if (n > 1) {
      isolates.set(isolateKey, n - 1)
      return
    }
    isolates.delete(isolateKey)
    if (n === 0) return
    w.committedMb -= memoryMb
    if (w.cordon) return
    const left = (this.tenantCommitted.get(tenantId) ?? 0) - memoryMb
    if (left > 0) this.tenantCommitted.set(tenantId, left)
    else this.tenantCommitted.delete(tenantId)
  }

  private isolatesOf(w: WorkerProcess): Map<string, number> {
    let m = this.inflightIsolates.get(w)
    if (!m) {
      m = new Map()
      this.inflightIsolates.set(w, m)
    }
    return m
  }

  /** Memory an invocation of `isolateKey` adds on `w`: none when its isolate already runs there. */
  private extraMb(w: WorkerProcess, isolateKey: string, memoryMb: number): number {
    return this.inflightIsolates.get(w)?.has(isolateKey) ? 0 : memoryMb
  }

  private sharedLive(): WorkerProcess[] {
    return this.shared().filter((w): w is WorkerProcess => w !== undefined && !w.dead)
  }

  /**
   * The worker an invocation runs on: its tenant's cordon worker while the tenant is cordoned,
   * else a shared one (see pick) with room for its isolate's memory limit.
   */
  place(tenantId: string, isolateKey: string, trusted: boolean, memoryMb: number): WorkerProcess {
    const cordon = this.cordons.active(tenantId)
    if (cordon) {
      let w = cordon.worker
      if (!w || w.dead || w.draining) {
        w = this.cordons.mayStartWorker() ? undefined : this.cordons.leastBusyWorker()
        w ??= this.startCordonWorker()
        cordon.worker = w
      }
      this.assertRoom(w, this.extraMb(w, isolateKey, memoryMb))
      return w
    }
    const w = this.pick(isolateKey, trusted, memoryMb)
    if (!w) throw SBX.WORKER_LOST({ reason: 'no worker is running' })
    const extra = this.extraMb(w, isolateKey, memoryMb)
    const cap = this.settings.tenantIsolateMemoryMb
    const mine = this.tenantCommitted.get(tenantId) ?? 0
    if (extra > 0 && mine > 0 && mine + extra > cap)
      throw SBX.AT_CAPACITY({ reason: `the tenant's isolates in flight may use ${cap} MB of memory` })
    this.assertRoom(w, extra)
    return w
  }

  private hasRoom(w: WorkerProcess, memoryMb: number): boolean {
    return w.inflight.size === 0 || w.committedMb + memoryMb <= this.settings.workerIsolateMemoryMb
  }

  private assertRoom(w: WorkerProcess, memoryMb: number): void {
    if (!this.hasRoom(w, memoryMb))
      throw SBX.AT_CAPACITY({
        reason: `a worker may run invocations with ${this.settings.workerIsolateMemoryMb} MB of isolate memory at once`,
      })
  }

  /**
   * isolated-vm does not stop every memory bomb (hash-table growth kills the whole process),
   * so a worker crash is a matter of when. To keep its blast radius on the untrusted: keys on
   * probation (new, or blamed for a crash) run on the last worker; trusted keys run
   * elsewhere, and on that worker only while it holds no probation work.
   */
  private pick(key: string, trusted: boolean, memoryMb: number): WorkerProcess | undefined {
    const slots = this.shared()
    const all = this.sharedLive().filter((w) => !w.draining)
    const roomy = all.filter((w) => this.hasRoom(w, this.extraMb(w, key, memoryMb)))
    const live = roomy.length ? roomy : all
    if (live.length === 0) return undefined
    const probation = slots.length >= 2 ? slots[slots.length - 1] : undefined
    if (!trusted && probation && !probation.dead) return probation
    const probationBusy = probation !== undefined && probation.untrusted > 0
    const eligible = live.filter((w) => w !== probation || (!probationBusy && trusted))
    const pool = eligible.length ? eligible : live
    let least: WorkerProcess | undefined
    for (const w of pool) {
      // The probation worker counts as busier than it is, so trusted keys spill onto it only under load.
      const load = w.inflight.size + (w === probation ? 2 : 0)
      if (!least || load < least.inflight.size + (least === probation ? 2 : 0)) least = w
    }
    const slot = this.sticky.get(key)
    const preferred = slot === undefined ? undefined : slots[slot]
    if (preferred && !preferred.dead && pool.includes(preferred) && preferred.inflight.size <= least!.inflight.size + 2)
      return preferred
    if (slot !== undefined) this.sticky.delete(key)
    else if (this.sticky.size >= MAX_STICKY_KEYS) this.sticky.delete(this.sticky.keys().next().value!)
    this.sticky.set(key, least!.slot)
    return least
  }

  isTrusted(key: string, bundle: string): boolean {
    if (this.shared().length < 2) return true
    const now = Date.now()
    const b = this.reputation.get(bundle)
    if (b && b.suspectUntil > now) return false
    const k = this.reputation.get(key)
    return k !== undefined && k.suspectUntil <= now && k.ok >= this.settings.probationInvocations
  }

  /** A successful invocation counts towards the key's track record. */
  succeeded(key: string): void {
    this.repute(key).ok++
  }

  private repute(key: string): Reputation {
    let r = this.reputation.get(key)
    if (!r) {
      if (this.reputation.size >= MAX_STICKY_KEYS) this.reputation.delete(this.reputation.keys().next().value!)
      r = { ok: 0, blame: 0, suspectUntil: 0 }
      this.reputation.set(key, r)
    }
    return r
  }

  /** Shares the blame for a crash among the invocations that could have caused it. */
  blame(suspects: Array<{ isoKey: string; bundleKey: string }>): void {
    const now = Date.now()
    for (const p of suspects) {
      for (const key of [p.isoKey, p.bundleKey]) {
        const r = this.repute(key)
        r.blame += 1 / suspects.length
        if (r.blame >= 1) {
          r.suspectUntil = now + SUSPECT_MS
          r.ok = 0
          r.blame = 0
        }
      }
    }
  }
}
