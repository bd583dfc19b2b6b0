// @ts-check
// Stretches of one invocation's plugin code: its entry, then each continuation after a
// host-call result. A stretch runs when the worker's fair scheduler gives its tenant a turn and
// the tenant's isolate is free (one stretch at a time per isolate, ADR 0080), either on this
// thread (synchronously, cheap, but blocking the event loop) or on one of isolated-vm's threads.
import { performance } from 'node:perf_hooks'

/** @typedef {import('./invocation.mjs').Invocation} Invocation */
/** @typedef {import('./plugin-context.mjs').PluginContext} PluginContext */
/** @typedef {import('isolated-vm').Reference<Function>} FunctionRef */
/** @typedef {{ ref: FunctionRef, args: unknown[], timeoutMs: number }} Stretch */

/**
 * isolated-vm arms a timer for every call made with a timeout, and a timer thread wakes when
 * its deadline passes even though the call ended long before: one thread wakeup per stretch, on
 * two cores a context switch per call. Deadlines rounded up to a grid share their wakeups (as
 * far as isolated-vm's whole milliseconds let them: one point of the grid still takes the timer
 * thread ten or more wakeups, its deadlines spread over a millisecond). The grid is 10 ms, or a
 * tenth of the limit up to 100 ms: a limit is enforced up to 10 ms or a tenth of it late, never
 * early.
 */
const GRID_MS = 10
const MAX_GRID_MS = 100

/** @param {number} ms */
function gridTimeout(ms) {
  const grid = Math.min(MAX_GRID_MS, Math.max(GRID_MS, Math.floor(ms / 10)))
  const now = Date.now()
  return Math.ceil((now + ms) / grid) * grid - now
}

/**
 * Runs one stretch of plugin code when the tenant's turn comes. `what` is asked then (the CPU
 * left may have changed while waiting); undefined means nothing is left to run.
 * @param {Invocation} inv
 * @param {() => Stretch | undefined} what
 */
export function enterStretch(inv, what) {
  inv.worker.scheduler.submit(inv.tenantId, (turn) => {
    const host = inv.iso?.host
    if (!host) return turn.end()
    // One stretch at a time in the tenant's isolate (only a stretch on a pool thread can be
    // running when another is granted).
    host.lock(() => {
      const run = inv.done || !inv.iso || inv.iso.disposed || host.disposed ? undefined : what()
      if (!run) {
        host.unlock()
        return turn.end()
      }
      inv.turn = turn
      if (inv.sync) {
        enterSync(inv, run.ref, run.args, run.timeoutMs)
        endTurn(inv)
        host.unlock()
      } else enterAsync(inv, run.ref, run.args, run.timeoutMs)
    }, inv)
  })
}

/** @param {Invocation} inv */
export function endTurn(inv) {
  const turn = inv.turn
  inv.turn = null
  turn?.end()
}

/**
 * Runs plugin code on this thread: about 80 µs cheaper per entry than handing the isolate to
 * a pool thread, at the price of blocking this worker's event loop for as long as the code
 * runs (bounded by the CPU limit). A key whose code runs long here twice within ten minutes, or
 * fails, is sent to the asynchronous path from then on, so a hostile tenant can stall a worker
 * twice, not always (event-loop-keys.mjs).
 * @param {Invocation} inv
 * @param {FunctionRef} ref
 * @param {unknown[]} args
 * @param {number} timeoutMs
 */
function enterSync(inv, ref, args, timeoutMs) {
  const iso = /** @type {PluginContext} */ (inv.iso)
  const worker = inv.worker
  // After a first long run, by this thread's own CPU clock too (not every key's: a read is a system call).
  const own0 = worker.timed(inv.isoKey) ? worker.threadCpuNs() : null
  const cpu0 = iso.cpuNs()
  const wall0 = performance.now()
  const watchdog = worker.watchdog
  const timeout = gridTimeout(timeoutMs)
  let result
  watchdog.enterSync(inv.rid, timeout, inv.deadline)
  try {
    ref.applySync(undefined, args, { timeout })
    result = iso.pollRef.applySync(undefined, [inv.token])
  } catch (err) {
    watchdog.leaveSync()
    worker.markSlow(inv.isoKey)
    countCpu(inv, cpu0)
    return inv.onIsolateError(err)
  }
  watchdog.leaveSync()
  // Long means both the isolate's CPU time and the wall clock: on a busy machine the OS may
  // pause this thread in the middle of a short run, and the isolate's clock also counts V8's
  // own tasks for it (GC, compilation) that isolated-vm's threads ran while this one waited for
  // the isolate; neither says anything about the code (and either sent keys to the slower path
  // on a loaded machine). Timed, this thread's own CPU time must be long too.
  const ran = countCpu(inv, cpu0)
  const slice = worker.syncSliceMs
  if (ran === null || (ran / 1e6 > slice && performance.now() - wall0 > slice)) {
    const own1 = own0 === null ? null : worker.threadCpuNs()
    worker.ranLong(inv.isoKey, own0 === null || own1 === null ? undefined : own1 - own0)
  }
  if (result !== undefined) inv.onResult(result)
}

/**
 * Runs plugin code on one of isolated-vm's threads, leaving this thread free; the turn ends
 * when the stretch does (the call returns once the isolate has nothing left to run until the
 * next host-call result), so an invocation awaiting its host calls holds no slot.
 * @param {Invocation} inv
 * @param {FunctionRef} ref
 * @param {unknown[]} args
 * @param {number} timeoutMs
 */
function enterAsync(inv, ref, args, timeoutMs) {
  const iso = /** @type {PluginContext} */ (inv.iso)
  const host = iso.host
  const cpu0 = iso.cpuNs()
  // Watched per stretch: the isolate's clock counts only this stretch while it holds the lock.
  const watchdog = inv.worker.watchdog
  inv.watching = watchdog.watch(inv.rid, () => host.cpuNs(), timeoutMs)
  const done = () => {
    host.onPool = false
    if (inv.watching) watchdog.unwatch(inv.watching)
    inv.watching = 0
    countCpu(inv, cpu0)
    endTurn(inv)
  }
  // Until it returns, this thread must not read the isolate: an invocation failed on its
  // deadline meanwhile (its stretch stuck in a builtin) would block here on its heap statistics,
  // and the watchdog's timer with it, until the parent gave up on the silent worker.
  host.onPool = true
  ref.apply(undefined, args, { timeout: gridTimeout(timeoutMs) }).then(
    () => {
      if (inv.done) {
        done()
        return host.unlock()
      }
      let result
      try {
        result = iso.pollRef.applySync(undefined, [inv.token])
      } catch (err) {
        done()
        host.unlock()
        return inv.onIsolateError(err)
      }
      done()
      host.unlock()
      if (result !== undefined) inv.onResult(result)
    },
    (err) => {
      done()
      host.unlock()
      inv.onIsolateError(err)
    },
  )
}

/**
 * Adds the isolate's CPU time since `cpu0` to the invocation's; returns it (ns), or null when
 * the isolate is gone.
 * @param {Invocation} inv
 * @param {bigint | null} cpu0
 */
function countCpu(inv, cpu0) {
  const cpu1 = inv.iso ? inv.iso.cpuNs() : null
  if (cpu0 === null || cpu1 === null) return null
  const ran = Number(cpu1 - cpu0)
  inv.cpuNs += ran
  return ran
}
