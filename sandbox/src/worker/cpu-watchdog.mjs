// @ts-check
// Kills this worker as soon as plugin code overruns its CPU limit by more than a grace period.
// isolated-vm stops an isolate at its CPU limit by asking V8 to terminate it, and V8 only
// notices between bytecodes: some builtins run long loops without looking (Array.prototype
// join, toString, indexOf, lastIndexOf on a sparse array whose length is 2**32 - 1 spin for
// minutes), so a terminated isolate can keep running. Nothing but the end of the process stops
// it. Two watchers, because plugin code runs in two places:
// - synchronous runs execute on this process's main thread, which is then blocked: a thread of
//   our own (cpu-watchdog-thread.mjs) watches a shared counter and the main thread's CPU time;
// - asynchronous runs execute on isolated-vm's threads while the main thread stays free: a timer
//   here compares each running isolate's CPU time with its limit.
// Either writes a marker line on stderr (which the parent reads to blame the invocation, see
// worker-process.ts) and SIGKILLs the process: exiting normally would wait for the stuck isolate.
import { writeSync } from 'node:fs'
import { Worker } from 'node:worker_threads'

/**
 * Marker the parent recognises on a worker's stderr; followed by the request id (0: none) and
 * which limit was overrun (`cpu`, or `wall` when a synchronous run outlived the invocation's
 * deadline, which the blocked main thread could not enforce).
 */
export const OVERRUN_MARKER = 'trellis-sandbox: plugin code overran its CPU limit, rid='

// Slots of the shared state: a sequence number per synchronous run, its request id, its CPU
// limit, whether a run is in progress, and its invocation's deadline (ms after `epoch`).
const SEQ = 0
const RID = 1
const LIMIT = 2
const ACTIVE = 3
const DEADLINE = 4

/**
 * @param {number} rid
 * @param {'cpu' | 'wall'} [limit]
 * @returns {never}
 */
export function overrun(rid, limit = 'cpu') {
  try {
    writeSync(2, `\n${OVERRUN_MARKER}${rid} limit=${limit}\n`)
  } finally {
    process.kill(process.pid, 'SIGKILL')
  }
  // SIGKILL to ourselves does not return; the type checker cannot know that.
  throw new Error('unreachable')
}

/** @typedef {{ rid: number, cpuNs: () => bigint | null, start: bigint, limitMs: number }} WatchedRun */

export class CpuWatchdog {
  /** @param {{ graceMs?: number, pollMs?: number }} [options] */
  constructor({ graceMs = 250, pollMs = 25 } = {}) {
    this.graceMs = graceMs
    this.state = new Int32Array(new SharedArrayBuffer(20))
    this.epoch = Date.now()
    /** @type {Map<number, WatchedRun>} Asynchronous runs by token. */
    this.watched = new Map()
    this.nextToken = 1
    this.thread = new Worker(new URL('./cpu-watchdog-thread.mjs', import.meta.url), {
      workerData: { state: this.state, pid: process.pid, graceMs, pollMs, epoch: this.epoch },
    })
    this.thread.unref()
    this.timer = setInterval(() => this.checkAsync(), pollMs)
    this.timer.unref()
  }

  /** Around a synchronous run on this thread: a few stores, no message. `deadline` is a Date.now() value. */
  /**
   * @param {number} rid
   * @param {number} limitMs
   * @param {number} deadline
   */
  enterSync(rid, limitMs, deadline) {
    const s = this.state
    Atomics.store(s, RID, rid)
    Atomics.store(s, LIMIT, Math.ceil(limitMs))
    Atomics.store(s, DEADLINE, Math.min(0x7fffffff, Math.ceil(deadline - this.epoch)))
    Atomics.add(s, SEQ, 1)
    Atomics.store(s, ACTIVE, 1)
  }

  leaveSync() {
    Atomics.store(this.state, ACTIVE, 0)
  }

  /** Watches an asynchronous run; `cpuNs` reads the isolate's CPU time (bigint ns, or null once gone). */
  /**
   * @param {number} rid
   * @param {() => bigint | null} cpuNs
   * @param {number} limitMs
   * @returns {number} a token for unwatch, 0 when the isolate is already gone
   */
  watch(rid, cpuNs, limitMs) {
    const start = cpuNs()
    if (start === null) return 0
    const token = this.nextToken++
    this.watched.set(token, { rid, cpuNs, start, limitMs })
    return token
  }

  /** @param {number} token */
  unwatch(token) {
    this.watched.delete(token)
  }

  checkAsync() {
    for (const [token, w] of this.watched) {
      const now = w.cpuNs()
      if (now === null) {
        this.watched.delete(token)
        continue
      }
      if (Number(now - w.start) / 1e6 > w.limitMs + this.graceMs) overrun(w.rid)
    }
  }
}
